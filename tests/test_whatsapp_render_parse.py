"""The WhatsApp channel's two pure halves: webhook bodies read as Cloud API payloads come, and
replies rendered within WhatsApp's limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.channels.base import Channel
from bot.channels.whatsapp.channel import WhatsAppChannel
from bot.channels.whatsapp.parse import Inbound, Status, Unreadable, events, typed
from bot.channels.whatsapp.render import (
    BODY_LIMIT,
    TEXT_LIMIT,
    render,
    short_titles,
    split_text,
)
from handlers.messages import Option, Reply
from locales import FSI, PDI, translator
from tests.fakes.whatsapp_cloud import FakeCloudApi

EN = translator("en")


def test_each_message_type_is_read_as_the_cloud_api_sends_it() -> None:
    api = FakeCloudApi()
    user = api.user("212600000001", "Amal")
    user.text("  Menu. ")
    user.image(b"jpeg", caption="site")
    user.location(33.57, -7.59)
    user.other("sticker")
    user.other("unsupported")
    found = [event for delivery in list(api.queue) for event in events(_json(delivery.body))]
    text, image, place, sticker, unsupported = found
    assert isinstance(text, Inbound) and text.incoming.text == "/menu"
    assert text.incoming.sender_name == "Amal" and text.incoming.update_id
    assert isinstance(image, Inbound) and image.media_id and image.incoming.text == "site"
    assert isinstance(place, Inbound) and place.incoming.location is not None
    assert place.incoming.location.latitude == 33.57
    assert isinstance(sticker, Unreadable) and sticker.kind == "sticker"
    assert isinstance(unsupported, Unreadable) and unsupported.kind == "unsupported"


def _json(body: bytes) -> dict[str, object]:
    return dict(json.loads(body))


def test_button_and_list_replies_and_template_buttons_are_choices() -> None:
    api = FakeCloudApi()
    payload = {"messaging_product": "whatsapp", "to": "1", "type": "interactive"}
    for interactive in (
        {"type": "button", "button_reply": {"id": "ab12:yes", "title": "Yes"}},
        {"type": "list_reply", "list_reply": {"id": "ab12:paper", "title": "Paper"}},
    ):
        value = {
            "contacts": [{"profile": {"name": "A"}, "wa_id": "1"}],
            "messages": [
                {
                    "from": "1",
                    "id": "wamid.X",
                    "timestamp": "1",
                    **payload,
                    "interactive": interactive,
                }
            ],
        }
        interactive["type"] = "button_reply" if "button_reply" in interactive else "list_reply"
        [event] = events(api.envelope(value))
        assert isinstance(event, Inbound) and event.incoming.choice in ("ab12:yes", "ab12:paper")
    button = {"from": "1", "id": "wamid.Y", "timestamp": "1", "type": "button"}
    button["button"] = {"payload": "go:recycling", "text": "Report now"}  # type: ignore[assignment]
    [event] = events(api.envelope({"messages": [button]}))
    assert isinstance(event, Inbound) and event.incoming.choice == "go:recycling"


def test_status_reports_carry_their_error_codes() -> None:
    api = FakeCloudApi()
    value = {
        "statuses": [
            {
                "id": "wamid.Z",
                "status": "failed",
                "timestamp": "1",
                "recipient_id": "1",
                "errors": [{"code": 131047, "title": "Re-engagement message"}],
            }
        ]
    }
    [status] = events(api.envelope(value))
    assert status == Status("wamid.Z", "failed", "1", (131047,), "131047: Re-engagement message")


def test_commands_and_codes_typed_as_people_type_them() -> None:
    assert typed("start K7MP2QRX") == "/start K7MP2QRX"
    assert typed("/start K7MP2QRX") == "/start K7MP2QRX"
    assert typed("k7mp2qrx") == "/start K7MP2QRX"
    assert typed("payments") == "payments"  # code letters, but no digit: a word
    assert typed("رجوع") == "/back"
    assert typed("إلغاء") == "/cancel"
    assert typed("Annuler !") == "/cancel"
    assert typed("القائمة") == "/menu"
    assert typed("mes rapports") == "/myreports"
    assert typed("help me with this") == "help me with this"
    assert typed("٣٥") == "٣٥"


@pytest.mark.parametrize(
    ("words", "command"),
    [
        (("invite", "دعوة", "Inviter"), "/invite"),
        (("people", "الأشخاص", "personnes"), "/people"),
        (("export", "تصدير", "exporter"), "/export"),
        (("broadcast", "تعميم", "diffuser"), "/broadcast"),
        (("broadcasts", "التعاميم", "diffusions"), "/broadcasts"),
        (("digest", "الملخص", "synthèse"), "/digest"),
        (("status", "الحالة", "état"), "/status"),
        (("remind", "تذكير", "relancer"), "/remind"),
        (("correct", "تصحيح", "corriger"), "/correct"),
        (("review", "مراجعة", "revoir"), "/review"),
        (("history", "السجل", "historique"), "/history"),
        (("language", "اللغة", "langue"), "/language"),
        (("my reports", "تقاريري", "mes rapports"), "/myreports"),
    ],
)
def test_every_command_is_a_word_in_english_arabic_and_french(
    words: tuple[str, str, str], command: str
) -> None:
    for word in words:
        assert typed(word) == command, word
        assert typed(f" {word.upper()} !") == command, word
        assert typed(word, answer_expected=True) == word  # a text question's answer
    assert typed(command, answer_expected=True) == command  # with its "/", always a command


def test_the_way_out_works_even_while_a_text_answer_is_expected() -> None:
    for word, command in [("cancel", "/cancel"), ("إلغاء", "/cancel"), ("Retour", "/back")]:
        assert typed(word, answer_expected=True) == command
    assert typed("القائمة", answer_expected=True) == "/menu"
    assert typed("aide", answer_expected=True) == "/help"


def test_a_report_reference_may_follow_the_commands_that_take_one() -> None:
    assert typed("correct REC-12") == "/correct REC-12"
    assert typed("تصحيح rec-١٢") == "/correct REC-12"
    assert typed("Historique BEN7") == "/history BEN-7"
    assert typed("مراجعة CHK-3") == "/review CHK-3"
    assert typed("correct the paper figure") == "correct the paper figure"
    assert typed("status REC-12") == "status REC-12"  # /status takes no reference
    assert typed("invite REC-12") == "invite REC-12"
    assert typed("the status") == "the status"  # a word counts only as the whole message


def test_one_to_three_options_are_buttons_four_to_ten_a_list_more_numbered() -> None:
    three = tuple(Option(f"Option {n}", f"t:{n}") for n in range(3))
    [buttons] = render(Reply("Pick", three), EN)
    assert buttons.payload["interactive"]["type"] == "button"
    ten = tuple(Option(f"Option {n}", f"t:{n}") for n in range(10))
    [listing] = render(Reply("Pick", ten), EN)
    assert listing.payload["interactive"]["type"] == "list"
    assert listing.payload["interactive"]["action"]["button"] == "Choose"
    twelve = tuple(Option(f"Option {n}", f"t:{n}") for n in range(12))
    [numbered] = render(Reply("Pick", twelve), EN)
    assert numbered.payload["type"] == "text"
    assert "12. Option 11" in numbered.payload["text"]["body"]
    assert numbered.numbered[11] == "t:11"


def test_long_labels_are_shortened_without_losing_what_tells_them_apart() -> None:
    labels = [
        "Recycling output, week of 23 November",
        "Recycling output, week of 30 November",
        "Beneficiary counts",
    ]
    titles = short_titles(labels, 20)
    assert all(len(t) <= 20 for t in titles)
    assert len(set(titles)) == 3
    assert "23" in titles[0] and "30" in titles[1]
    [message] = render(
        Reply("Which?", tuple(Option(label, f"v{n}") for n, label in enumerate(labels))), EN
    )
    body = message.payload["interactive"]["body"]["text"]
    assert all(label in body for label in labels)  # shortened buttons: full labels in the body
    rows = [Option(f"{label} (again)", f"r{n}") for n, label in enumerate(labels * 2)]
    [listing] = render(Reply("Which?", tuple(rows)), EN)
    for row in listing.payload["interactive"]["action"]["sections"][0]["rows"]:
        assert len(row["title"]) <= 24 and len(row.get("description", "")) <= 72


def test_long_text_is_split_outside_words_numbers_and_isolates_buttons_last() -> None:
    name = f"{FSI}جمعية نهضة فتيات الريف{PDI}"
    text = " ".join(f"{name} 12345.67" for _ in range(400))
    parts = split_text(text, TEXT_LIMIT, last_limit=BODY_LIMIT)
    assert "".join(parts).replace(" ", "") == text.replace(" ", "")
    assert all(len(p) <= TEXT_LIMIT for p in parts) and len(parts[-1]) <= BODY_LIMIT
    for part in parts:
        assert part.count(FSI) == part.count(PDI)
        assert part.split()[-1].endswith(("12345.67", PDI))
    sent = render(Reply(text, (Option("OK", "ok"),)), EN)
    assert [m.payload["type"] for m in sent][-1] == "interactive"
    assert all(m.payload["type"] == "text" for m in sent[:-1])


def test_a_location_question_asks_for_a_location_and_a_photo_is_uploaded(tmp_path: Path) -> None:
    sent = render(Reply("Where?", (Option("Skip", "skip"),), expect="location"), EN)
    assert sent[0].payload["interactive"]["type"] == "location_request_message"
    assert sent[1].payload["interactive"]["type"] == "button"
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"png")
    [photo] = render(Reply("Digest", photo=chart), EN)
    assert photo.upload == chart and photo.payload["image"]["caption"] == "Digest"


def test_whatsapp_is_a_channel_of_the_seam() -> None:
    channel = WhatsAppChannel(client=None, language="fr")
    assert isinstance(channel, Channel)
    api = FakeCloudApi()
    api.user("212600000001").text("retour")
    incoming = channel.parse(json.loads(api.queue.pop().body))
    assert incoming is not None and incoming.text == "/back"
    [listing] = channel.render(Reply("?", tuple(Option(str(n), f"v{n}") for n in range(5))))
    assert listing.payload["interactive"]["action"]["button"] == "Choisir"
