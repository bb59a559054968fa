"""The Graph API client against the fake Cloud API: uploads, downloads, and each error in the
outbox's neutral terms; and what a typed number stands for after numbered options."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.app import Sanad
from bot.channels.whatsapp import CHANNEL
from bot.channels.whatsapp.client import CloudClient, MediaRefused, WindowClosed
from bot.channels.whatsapp.numbered import NumberedChoices
from bot.channels.whatsapp.render import Outgoing
from handlers.messages import Incoming
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


def photo_message(path: Path, caption: str = "") -> Outgoing:
    image: dict[str, str] = {"id": "", **({"caption": caption} if caption else {})}
    return Outgoing({"type": "image", "image": image}, upload=path)


async def test_a_photo_is_uploaded_once_and_sent_by_its_media_id_to_everyone(
    graph: tuple[FakeCloudApi, CloudClient], tmp_path: Path
) -> None:
    api, client = graph
    poster = tmp_path / "poster.jpg"
    poster.write_bytes(b"\xff\xd8poster")
    people = [f"2126000001{n:02d}" for n in range(40)]
    for person in people:
        api.last_inbound[person] = api.clock()
    await asyncio.gather(*(client.send(p, photo_message(poster, "Meeting")) for p in people))
    assert api.uploads == [("image/jpeg", 8)]  # concurrent sends shared one upload
    assert client.uploads == 1
    [media_id] = {m.payload["image"]["id"] for m in api.sent}
    assert api.media[media_id][0] == b"\xff\xd8poster"
    poster.write_bytes(b"\xff\xd8another poster")  # a changed file is a new upload
    await client.send(TO, photo_message(poster))
    assert len(api.uploads) == 2


async def test_a_media_id_meta_no_longer_has_is_uploaded_again_once(
    graph: tuple[FakeCloudApi, CloudClient], tmp_path: Path
) -> None:
    api, client = graph
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"\x89PNG chart")
    await client.send(TO, photo_message(chart))
    api.media.clear()  # Meta dropped it (30 days)
    await client.send(TO, photo_message(chart))
    assert [kind for kind, _ in api.uploads] == ["image/png", "image/png"]
    assert len(api.sent) == 2


async def test_the_fake_keeps_metas_media_types_and_sizes(
    graph: tuple[FakeCloudApi, CloudClient], tmp_path: Path
) -> None:
    api, client = graph
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + b"0" * (5 * 1024 * 1024))  # a little over 5 MB
    with pytest.raises(MediaRefused, match="131053"):
        await client.send(TO, photo_message(big))
    gif = tmp_path / "moving.gif"
    gif.write_bytes(b"GIF89a")
    with pytest.raises(MediaRefused, match="image/gif"):
        await client.upload(gif)
    table = tmp_path / "recycling.csv"  # CSV is no type WhatsApp lists: it goes as text
    table.write_text("ref,paper_kg\nREC-1,12.5\n")
    csv_id = await client.upload(table)
    assert api.media[csv_id][1] == "text/plain"
    with pytest.raises(MediaRefused, match="not an image"):  # an image message names an image
        await client.send(TO, Outgoing({"type": "image", "image": {"id": csv_id}}))
    assert api.uploads == [("text/plain", 24)]


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


def _read(sanad: Sanad, numbered: NumberedChoices, text: str, typed: str | None = None) -> Incoming:
    """`text` from TO as `numbered` reads it in an update's transaction."""
    with sanad.engine.begin() as connection:
        return numbered.interpret(connection, Incoming(CHANNEL, TO, TO, text=text), typed)


def test_a_typed_number_stands_for_the_numbered_option_shown_last(sanad: Sanad) -> None:
    numbered = NumberedChoices(sanad.engine)
    numbered.shown(TO, tuple(f"t:{n}" for n in range(12)))
    twelve = _read(sanad, NumberedChoices(sanad.engine), " 12 ")  # another process too
    assert (twelve.choice, twelve.text) == ("t:11", None)
    assert _read(sanad, numbered, "13").choice is None
    assert _read(sanad, numbered, "twelve").choice is None
    numbered.shown(TO, ())  # a later question without numbered options
    assert _read(sanad, NumberedChoices(sanad.engine), "3").choice is None


def test_a_command_word_is_the_answer_while_a_typed_answer_is_awaited(sanad: Sanad) -> None:
    numbered = NumberedChoices(sanad.engine)
    assert _read(sanad, numbered, "/status", typed="status").text == "/status"
    numbered.shown(TO, (), typed=True)  # a form's text question
    assert _read(sanad, NumberedChoices(sanad.engine), "/status", typed="status").text == "status"
    assert _read(sanad, numbered, "/menu", typed="menu").text == "/menu"  # a way out still is
