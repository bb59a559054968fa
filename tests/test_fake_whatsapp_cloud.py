"""The fake Cloud API enforces what Meta enforces, over HTTP, and plays Meta's webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.telegram_bot_server import serving_asgi
from tests.fakes.whatsapp_cloud import FakeCloudApi, serving_cloud

PERSON = "212600000001"
TEMPLATE = {
    "name": "sanad_notice",
    "language": "en",
    "category": "UTILITY",
    "components": [
        {
            "type": "BODY",
            "text": "Hello {{1}}, you have news.",
            "example": {"body_text": [["Amal"]]},
        },
        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Show"}]},
    ],
}


class Graph:
    def __init__(self, client: httpx.AsyncClient, base: str, api: FakeCloudApi) -> None:
        self.client, self.base, self.api = client, base, api

    async def send(self, payload: dict[str, Any], token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.api.token}"}
        body = {"messaging_product": "whatsapp", "to": PERSON, **payload}
        return await self.client.post(
            f"{self.base}/{self.api.phone_number_id}/messages", json=body, headers=headers
        )


@pytest.fixture
async def graph() -> AsyncIterator[Graph]:
    api = FakeCloudApi(clock=lambda: 1_000_000.0)
    api.statuses = False
    api.last_inbound[PERSON] = 1_000_000.0 - 60
    async with serving_cloud(api) as base, httpx.AsyncClient() as client:
        yield Graph(client, base, api)


def code(answer: httpx.Response) -> int:
    return int(answer.json()["error"]["code"])


def buttons(*titles: str) -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Choose"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": f"b{n}", "title": t}}
                    for n, t in enumerate(titles)
                ]
            },
        },
    }


def listing(rows: list[dict[str, str]], button: str = "Options") -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": "Choose"},
            "action": {"button": button, "sections": [{"title": "All", "rows": rows}]},
        },
    }


async def test_a_text_within_the_limits_is_accepted_with_a_message_id(graph: Graph) -> None:
    answer = await graph.send({"type": "text", "text": {"body": "x" * 4096}})
    assert answer.status_code == 200
    assert answer.json()["messages"][0]["id"].startswith("wamid.")
    assert code(await graph.send({"type": "text", "text": {"body": "x" * 4097}})) == 131009


async def test_a_wrong_token_is_refused(graph: Graph) -> None:
    answer = await graph.send({"type": "text", "text": {"body": "hi"}}, token="nope")
    assert answer.status_code == 401 and code(answer) == 190


async def test_reply_buttons_are_one_to_three_titles_of_twenty_characters(graph: Graph) -> None:
    assert (await graph.send(buttons("Yes", "No", "Maybe"))).status_code == 200
    assert code(await graph.send(buttons("1", "2", "3", "4"))) == 100
    assert code(await graph.send(buttons("x" * 21))) == 131009
    assert code(await graph.send(buttons("Same", "Same"))) == 100


async def test_a_list_has_at_most_ten_rows_with_short_titles(graph: Graph) -> None:
    rows = [{"id": f"r{n}", "title": f"Row {n}", "description": "d" * 72} for n in range(10)]
    assert (await graph.send(listing(rows))).status_code == 200
    eleven = rows + [{"id": "r10", "title": "Row 10"}]
    assert code(await graph.send(listing(eleven))) == 100
    assert code(await graph.send(listing([{"id": "a", "title": "t" * 25}]))) == 131009
    long_description = [{"id": "a", "title": "t", "description": "d" * 73}]
    assert code(await graph.send(listing(long_description))) == 131009
    assert code(await graph.send(listing(rows[:2], button="b" * 21))) == 131009


async def test_a_location_request_is_understood(graph: Graph) -> None:
    payload = {
        "type": "interactive",
        "interactive": {
            "type": "location_request_message",
            "body": {"text": "Where are you?"},
            "action": {"name": "send_location"},
        },
    }
    assert (await graph.send(payload)).status_code == 200


async def test_templates_must_be_approved_and_take_their_parameters(graph: Graph) -> None:
    graph.api.approve(TEMPLATE)

    def template(*values: str, name: str = "sanad_notice", language: str = "en") -> dict[str, Any]:
        parameters = [{"type": "text", "text": v} for v in values]
        return {
            "type": "template",
            "template": {
                "name": name,
                "language": {"code": language},
                "components": [{"type": "body", "parameters": parameters}],
            },
        }

    assert (await graph.send(template("Amal"))).status_code == 200
    assert graph.api.sent[-1].text == "Hello Amal, you have news."
    assert code(await graph.send(template("Amal", language="fr"))) == 132001
    assert code(await graph.send(template("Amal", name="unknown"))) == 132001
    assert code(await graph.send(template())) == 132000
    assert code(await graph.send(template("two\nlines"))) == 132018
    assert code(await graph.send(template("too     many spaces"))) == 132018


def test_a_template_starting_with_a_variable_is_not_approved() -> None:
    api = FakeCloudApi()
    bad = json.loads(json.dumps(TEMPLATE))
    bad["components"][0]["text"] = "{{1}} has news."
    with pytest.raises(Exception, match="start or end"):
        api.approve(bad)


async def test_throughput_and_pair_rate_are_enforced(graph: Graph) -> None:
    graph.api.messages_per_second = 3
    graph.api.pair_burst = 2
    text = {"type": "text", "text": {"body": "hi"}}
    assert (await graph.send(text)).status_code == 200
    assert (await graph.send(text)).status_code == 200
    assert code(await graph.send(text)) == 131056  # a third to one person within 6 s
    graph.api.last_inbound["212600000002"] = 1_000_000.0
    other = {**text, "to": "212600000002"}
    assert (await graph.send(other)).status_code == 200
    assert code(await graph.send(other)) == 130429  # a fourth in one second


async def test_injected_failures_come_first(graph: Graph) -> None:
    graph.api.fail_next(status=503, code=131000)
    answer = await graph.send({"type": "text", "text": {"body": "hi"}})
    assert answer.status_code == 503 and code(answer) == 131000
    assert (await graph.send({"type": "text", "text": {"body": "hi"}})).status_code == 200


async def test_media_is_uploaded_looked_up_and_downloaded_with_the_token(graph: Graph) -> None:
    headers = {"Authorization": f"Bearer {graph.api.token}"}
    uploaded = await graph.client.post(
        f"{graph.base}/{graph.api.phone_number_id}/media",
        data={"messaging_product": "whatsapp", "type": "image/png"},
        files={"file": ("chart.png", b"PNGDATA", "image/png")},
        headers=headers,
    )
    media_id = uploaded.json()["id"]
    found = (await graph.client.get(f"{graph.base}/{media_id}", headers=headers)).json()
    assert found["mime_type"] == "image/png"
    assert (await graph.client.get(found["url"])).status_code == 401
    assert (await graph.client.get(found["url"], headers=headers)).content == b"PNGDATA"
    image = {"type": "image", "image": {"id": media_id, "caption": "c" * 1024}}
    assert (await graph.send(image)).status_code == 200
    image["image"]["caption"] = "c" * 1025
    assert code(await graph.send(image)) == 131009


class Receiver:
    """A webhook endpoint that checks signatures and can refuse the first tries."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.bodies: list[dict[str, Any]] = []
        self.refuse = 0

    def app(self) -> Starlette:
        async def take(request: Request) -> Response:
            body = await request.body()
            expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            assert request.headers["X-Hub-Signature-256"] == expected
            if self.refuse:
                self.refuse -= 1
                return Response(status_code=500)
            self.bodies.append(json.loads(body))
            return Response(status_code=200)

        return Starlette(routes=[Route("/whatsapp", take, methods=["POST"])])


def message_ids(bodies: list[dict[str, Any]]) -> list[str]:
    return [
        message["id"]
        for body in bodies
        for entry in body["entry"]
        for change in entry["changes"]
        for message in change["value"].get("messages", [])
    ]


async def test_webhooks_are_signed_retried_repeated_dropped_and_reordered() -> None:
    api = FakeCloudApi()
    receiver = Receiver(api.app_secret)
    async with serving_asgi(receiver.app()) as root:
        api.webhook_url = f"{root}/whatsapp"
        first = api.user(PERSON).text("one")
        receiver.refuse = 1
        await api.push()
        assert message_ids(receiver.bodies) == [first]  # posted again after the 500
        api.repeat_next()
        second = api.user(PERSON).text("two")
        await api.push()
        assert message_ids(receiver.bodies) == [first, second, second]
        api.drop_next()
        third = api.user(PERSON).text("three")
        fourth = api.user(PERSON).text("four")
        await api.push()
        assert message_ids(receiver.bodies)[3:] == [fourth, third]  # the lost one came later
        api.reorder()
        sent = {api.user(PERSON).text(str(n)) for n in range(10)}
        await api.push()
        assert set(message_ids(receiver.bodies)[5:]) == sent


async def test_free_form_outside_the_window_is_reported_failed_with_131047() -> None:
    api = FakeCloudApi(clock=lambda: 1_000_000.0)
    api.last_inbound[PERSON] = 1_000_000.0 - 25 * 3600
    receiver = Receiver(api.app_secret)
    async with serving_cloud(api) as base, serving_asgi(receiver.app()) as root:
        api.webhook_url = f"{root}/whatsapp"
        async with httpx.AsyncClient() as client:
            answer = await Graph(client, base, api).send({"type": "text", "text": {"body": "hi"}})
        assert answer.status_code == 200  # accepted, as Meta does ...
        await api.push()
    status = receiver.bodies[0]["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert status["status"] == "failed"  # ... then reported failed
    assert status["errors"][0]["code"] == 131047
