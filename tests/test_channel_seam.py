"""The channel seam: replies rendered within Telegram's limits as Telegram counts them (UTF-16
code units), one renderer for live replies and outbox messages, an outbox that holds what to say
and renders it at send time, and late copies of questions dropped."""

from __future__ import annotations

import io
from pathlib import Path

from sqlalchemy import inspect, text
from sqlmodel import select

from bot.app import Sanad
from bot.channels.base import Address, Channel, by_channel, split, utf16_units
from bot.channels.console import ConsoleChat
from bot.channels.telegram_delivery import TelegramChannel, render, telegram_deliver
from handlers.messages import Option, Reply
from outbox import intents as say
from outbox.intents import Intent, reply_for
from outbox.sender import Sender
from storage import outbox
from storage.db import alembic_config, make_engine, open_database, transaction
from storage.models import OutboxMessage, Report
from storage.people import add_address, addresses_of, find_person
from tests.conftest import Clock
from tests.fakes.telegram_bot_api import MAX_TEXT_LENGTH
from tests.harness import Telegram, plain, registered, report_recycling

FSI, PDI = "\u2068", "\u2069"


def emoji_rich_arabic(length: int) -> str:
    """Arabic words, Arabic-Indic numbers and runs of emoji (two UTF-16 units each), cut at a
    word end before `length` characters."""
    words = ["😀" * 24, "مطر", "🌧" * 24, "١٢"]
    out = ""
    number = 0
    while len(out) + len(words[number % len(words)]) + 1 <= length:
        out += words[number % len(words)] + " "
        number += 1
    return out.strip()


# --- splitting --------------------------------------------------------------------------------


def test_a_long_text_is_split_in_utf16_units_never_inside_a_word_number_or_isolate() -> None:
    line = f"الكمية {FSI}١٢٣ ٤٥٦ kg{PDI} 😀😀 وصلت ٧٨٩٠ "
    long = "\n".join(line * 12 for _ in range(40))
    assert len(long) < 4096 * 4 and utf16_units(long) > len(long)
    parts = split(long, 4096, utf16_units)
    assert len(parts) > 1
    assert "".join(parts) == long
    assert all(utf16_units(part) <= 4096 for part in parts)
    for part in parts[:-1]:
        assert part[-1].isspace(), f"cut inside a word: {part[-20:]!r}"
        assert part.count(FSI) == part.count(PDI), "cut inside a bidi isolate"


def test_only_a_word_longer_than_a_message_is_cut() -> None:
    assert split("😀" * 5, 4, utf16_units) == ["😀😀", "😀😀", "😀"]
    assert split("one two three", 8) == ["one two ", "three"]


def test_telegram_renders_options_on_the_last_part_and_a_long_caption_after_the_photo(
    tmp_path: Path,
) -> None:
    chart = tmp_path / "chart.png"
    reply = Reply("😀 " * 3000, (Option("OK", "ok"),), photo=chart)
    messages = render(reply)
    assert messages[0].photo == chart and messages[0].text == ""
    assert [m.markup is not None for m in messages] == [False, False, False, True]
    assert all(utf16_units(m.text) <= 4096 for m in messages)


def test_telegram_and_the_console_are_channels(sanad: Sanad, tmp_path: Path) -> None:
    console = ConsoleChat(sanad.dispatcher, "amal", tmp_path, out=open(tmp_path / "out", "w"))  # noqa: SIM115
    assert isinstance(console, Channel)
    assert isinstance(TelegramChannel(bot=None), Channel)  # type: ignore[arg-type]
    assert console.parse("hello") is not None and console.parse(42) is None


# --- live replies ------------------------------------------------------------------------------


async def test_a_long_emoji_rich_arabic_summary_is_split_with_its_buttons_on_the_last_part(
    sanad: Sanad,
) -> None:
    """A check-in whose answers are long Arabic texts full of emoji: the summary is longer
    than Telegram's 4096 UTF-16 units (shorter in characters). It arrives in parts, each
    within the limit, the buttons on the last; confirming saves every answer whole."""
    activity, place, challenges = (
        emoji_rich_arabic(200),
        emoji_rich_arabic(990),
        emoji_rich_arabic(990),
    )
    async with Telegram(sanad) as telegram:
        amal = await registered(telegram, "bh_rural_girls", 341, "Amal", "ar")
        await amal.says("/checkin")
        await amal.says("28/11")
        await amal.taps(amal.buttons[-1])  # another activity
        await amal.says(activity)
        await amal.says(place)
        await amal.says("٢٥")
        await amal.taps(amal.buttons[0])  # yes, there were challenges
        await amal.says(challenges)
        summary = await amal.taps(amal.buttons[0])  # no photo
        parts = amal.answers
        assert len(parts) >= 2, summary
        assert sum(len(m.text or "") for m in parts) < 4096  # in characters it would fit ...
        assert all(utf16_units(m.text or "") <= MAX_TEXT_LENGTH for m in parts)  # ... not so
        assert [bool(telegram.api.buttons(m)) for m in parts] == [False] * (len(parts) - 1) + [True]
        assert challenges in plain("".join(m.text or "" for m in parts))
        await amal.taps(amal.buttons[0])  # confirm
        assert "CHK-1" in amal.everything
    with transaction(sanad.engine) as session:
        [report] = session.exec(select(Report)).all()
    assert report.answers["place"] == {"text": place}
    assert report.answers["challenges"] == challenges


# --- the outbox ----------------------------------------------------------------------------------


async def test_a_late_copy_of_a_question_already_answered_is_dropped_not_sent(
    sanad: Sanad, clock: Clock
) -> None:
    """The question "Aluminium collected" does not reach Fatima and waits in the outbox. She
    types again, is asked to continue, gets the question, answers it. The copy, due now, is
    cancelled: answering it would have stored her next answer as the aluminium."""
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram, "bh_rural_girls", 342)
        await fatima.says("/recycling")
        await fatima.taps("week of 29 Nov")
        telegram.api.fail_next("sendMessage", status=502, description="Bad Gateway")
        assert await fatima.says("100") == [], "Telegram did not take 'Aluminium collected'"
        await fatima.says("hello?")
        await fatima.taps("Continue")
        assert "Aluminium collected" in fatima.last
        await fatima.says("20")
        assert "Plastic collected" in fatima.last
        sent_before = len(telegram.api.messages_to(342))
        sender = Sender(sanad.engine, telegram_deliver(telegram.app.bot), clock=clock)
        await sender.run_once()
        with transaction(sanad.engine) as session:
            [copy] = session.exec(select(OutboxMessage).where(OutboxMessage.kind == "reply"))
        assert copy.status == "cancelled"
        assert len(telegram.api.messages_to(342)) == sent_before
        await fatima.says("30")
        assert "Paper sold" in fatima.last or "sold" in fatima.last


async def test_an_outbox_message_is_translated_when_it_is_sent_in_the_language_of_that_moment(
    sanad: Sanad, clock: Clock
) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram, "bh_rural_girls", 343)
        with transaction(sanad.engine) as session:
            person = find_person(session, "telegram", "343")
            assert person is not None and person.id is not None
            outbox.enqueue(
                session,
                person_id=person.id,
                kind="reminder",
                dedupe_key="k",
                intent=Intent.of(say.gettext("Fill it now")),
                language="en",
                now=clock(),
            )
        await fatima.says("/language")
        await fatima.taps("Français")
        sender = Sender(sanad.engine, telegram_deliver(telegram.app.bot), clock=clock)
        assert await sender.run_once() == 1
        assert plain(telegram.api.last_to(343).text or "") == "Le remplir maintenant"


async def test_a_document_kept_in_the_outbox_is_sent_as_a_document(
    sanad: Sanad, clock: Clock, tmp_path: Path
) -> None:
    export = tmp_path / "reports.xlsx"
    export.write_bytes(b"PK\x03\x04 spreadsheet")
    async with Telegram(sanad) as telegram:
        await registered(telegram, "bh_rural_girls", 344)
        with transaction(sanad.engine) as session:
            person = find_person(session, "telegram", "344")
            assert person is not None and person.id is not None
            outbox.enqueue(
                session,
                person_id=person.id,
                kind="reply",
                dedupe_key="export",
                intent=Intent.of({"literal": "Your export"}, document=str(export)),
                now=clock(),
            )
        sender = Sender(sanad.engine, telegram_deliver(telegram.app.bot), clock=clock)
        assert await sender.run_once() == 1
        sent = telegram.api.last_to(344)
        assert (sent.method, sent.text, sent.file_bytes) == (
            "sendDocument",
            "Your export",
            b"PK\x03\x04 spreadsheet",
        )
        assert not export.exists(), "a sent export is not kept on the server"


# --- migration 0006 ------------------------------------------------------------------------------


def test_migration_0006_keeps_waiting_rows_as_literal_intents(database_url: str) -> None:
    from alembic import command

    engine = make_engine(database_url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
        connection.execute(
            text(
                "INSERT INTO dev_group (key, names, country, timezone, language, currency, "
                "week_start, targets, schedule, active) VALUES ('g', '{}', 'BH', 'Asia/Bahrain', "
                "'ar', 'BHD', 0, '{}', '{}', true)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO organization (key, group_id, kind, names, placeholder, active) "
                "VALUES ('o', 1, 'partner', '{}', false, true)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO person (channel, address, display_name, role, organization_id, "
                "active, reachable, created_at) VALUES ('telegram', '77', 'Huda', 'worker', 1, "
                "true, true, '2026-12-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO outbox (person_id, kind, dedupe_key, text, options, photo_path, "
                "status, attempts, resent, next_attempt_at, created_at) VALUES (1, 'reminder', "
                "'r1', 'Reminder: send it', '[[\"Fill it now\", \"go:recycling\"]]', "
                "'/tmp/chart.png', 'pending', 0, 0, '2026-12-01 00:00:00', "
                "'2026-12-01 00:00:00')"
            )
        )
    engine.dispose()
    engine = open_database(database_url)
    assert "person_address" in inspect(engine).get_table_names()
    with transaction(engine) as session:
        [row] = session.exec(select(OutboxMessage)).all()
        said = reply_for(row, "fr")
        addresses = session.execute(text("SELECT channel, address FROM person_address")).all()
    assert said.text == "Reminder: send it"
    assert said.options == (Option("Fill it now", "go:recycling"),)
    assert said.photo == Path("/tmp/chart.png")
    assert [tuple(a) for a in addresses] == [("telegram", "77")]
    engine.dispose()


# --- one person, several channels ----------------------------------------------------------------


async def test_a_person_reached_on_two_channels_is_one_person_reached_where_they_last_wrote(
    sanad: Sanad, tmp_path: Path
) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram, "bh_rural_girls", 351)
        await report_recycling(fatima)
        with transaction(sanad.engine) as session:
            person = find_person(session, "telegram", "351")
            assert person is not None and person.id is not None
            assert add_address(session, person.id, "console", "fatima-laptop")
            assert not add_address(session, person.id, "console", "fatima-laptop")
        out = io.StringIO()
        laptop = ConsoleChat(sanad.dispatcher, "fatima-laptop", tmp_path, out)
        laptop.send("/myreports")
        assert "REC-1" in out.getvalue()  # her reports, in her language, from the other channel
        with transaction(sanad.engine) as session:
            again = find_person(session, "console", "fatima-laptop")
            assert again is not None and again.id == person.id
            [where] = outbox.recipients(session, {person.id}).values()
            assert (where.channel, where.address, where.language) == (
                "console",
                "fatima-laptop",
                "en",
            )
            assert where.last_inbound_at is not None
            assert [(a.channel, a.address) for a in addresses_of(session, person.id)] == [
                ("telegram", "351"),
                ("console", "fatima-laptop"),
            ]
        await fatima.says("/help")
        with transaction(sanad.engine) as session:
            [where] = outbox.recipients(session, {person.id}).values()
        assert (where.channel, where.address) == ("telegram", "351")


async def test_the_outbox_of_a_process_with_several_channels_goes_through_each_recipients_channel(
    sanad: Sanad, clock: Clock
) -> None:
    went: list[tuple[str, str]] = []

    async def console(address: Address, message: OutboxMessage) -> None:
        went.append((address.channel, reply_for(message, address.language).text))

    async with Telegram(sanad) as telegram:
        await registered(telegram, "bh_rural_girls", 361)
        with transaction(sanad.engine) as session:
            person = find_person(session, "telegram", "361")
            assert person is not None and person.id is not None
            add_address(session, person.id, "console", "laptop")
            for number in (1, 2):
                outbox.enqueue(
                    session,
                    person_id=person.id,
                    kind="reminder",
                    dedupe_key=f"k{number}",
                    intent=Intent.plain(f"note {number}"),
                    now=clock(),
                )
        deliver = by_channel({"telegram": telegram_deliver(telegram.app.bot), "console": console})
        sender = Sender(sanad.engine, deliver, clock=clock)
        assert await sender.run_once() == 1
        assert plain(telegram.api.last_to(361).text or "") == "note 1"
        ConsoleChat(sanad.dispatcher, "laptop", Path("."), io.StringIO()).send("/help")
        clock.advance(seconds=2)
        assert await sender.run_once() == 1
        assert went == [("console", "note 2")]
