"""The Graph API client against the fake Cloud API: uploads, downloads, and each error in the
outbox's neutral terms; and what a typed number stands for after numbered options."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.app import Sanad
from bot.channels.whatsapp.client import CloudClient, WindowClosed
from bot.channels.whatsapp.numbered import NumberedChoices
from bot.channels.whatsapp.render import Outgoing
from outbox.sender import Rejected, RetryAfter, Transient, Unreachable
from tests.fakes.whatsapp_cloud import FakeCloudApi, serving_cloud

TO = "212600000001"
HELLO = Outgoing({"type": "text", "text": {"body": "hello"}})


@pytest.fixture
async def graph() -> AsyncIterator[tuple[FakeCloudApi, CloudClient]]:
    api = FakeCloudApi(token="EAAG-secret-token")
    api.last_inbound[TO] = api.clock()
    async with serving_cloud(api) as base:
        client = CloudClient(base, api.phone_number_id, SecretStr(api.token))
        yield api, client
        await client.aclose()


async def test_a_document_is_uploaded_then_sent_by_its_media_id(
    graph: tuple[FakeCloudApi, CloudClient], tmp_path: Path
) -> None:
    api, client = graph
    export = tmp_path / "reports.xlsx"
    export.write_bytes(b"PK-xlsx")
    outgoing = Outgoing(
        {"type": "document", "document": {"id": "", "filename": "reports.xlsx"}}, upload=export
    )
    ident = await client.send(TO, outgoing)
    [sent] = api.sent
    assert sent.id == ident
    assert api.media[sent.payload["document"]["id"]][0] == b"PK-xlsx"


async def test_received_media_is_fetched_with_the_token(
    graph: tuple[FakeCloudApi, CloudClient],
) -> None:
    api, client = graph
    media_id = api.upload(b"\xff\xd8photo", "image/jpeg")
    assert await client.download(media_id) == (b"\xff\xd8photo", "image/jpeg")


@pytest.mark.parametrize(
    ("status", "code", "raised"),
    [
        (400, 130429, RetryAfter),
        (400, 131056, Transient),
        (400, 131026, Unreachable),
        (400, 131047, WindowClosed),
        (500, 131000, Transient),
        (503, 2, Transient),
        (401, 190, Transient),
        (400, 131009, Rejected),
    ],
)
async def test_graph_errors_in_the_outbox_terms(
    graph: tuple[FakeCloudApi, CloudClient], status: int, code: int, raised: type[Exception]
) -> None:
    api, client = graph
    api.fail_next(status=status, code=code)
    with pytest.raises(raised) as error:
        await client.send(TO, HELLO)
    assert api.token not in str(error.value)
    if raised is Rejected:
        assert "131009" in str(error.value)


async def test_an_answer_longer_than_whatsapp_takes_is_rejected_not_retried(
    graph: tuple[FakeCloudApi, CloudClient],
) -> None:
    _, client = graph
    with pytest.raises(Rejected) as error:
        await client.send(TO, Outgoing({"type": "text", "text": {"body": "x" * 5000}}))
    assert "4096" in str(error.value)


def test_a_typed_number_stands_for_the_numbered_option_shown_last(sanad: Sanad) -> None:
    numbered = NumberedChoices(sanad.engine)
    numbered.shown(TO, tuple(f"t:{n}" for n in range(12)))
    assert NumberedChoices(sanad.engine).choice(TO, " 12 ") == "t:11"  # another process too
    assert numbered.choice(TO, "13") is None
    assert numbered.choice(TO, "twelve") is None
    numbered.shown(TO, ())  # a later question without numbered options
    assert NumberedChoices(sanad.engine).choice(TO, "3") is None
