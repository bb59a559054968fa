"""Sanad on WhatsApp, end to end over HTTP: the fake Cloud API posts signed webhooks to the
webhook, the bot answers through the Graph API, and the fake holds it to WhatsApp's limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from bot.app import Sanad
from bot.channels.telegram import build_telegram
from bot.channels.webhook import SECRET_HEADER, create_app
from bot.channels.whatsapp.service import assemble_whatsapp
from bot.metrics import Metrics
from forms.schema import FieldSpec, FormSpec
from locales import LANGUAGE_NAMES, LANGUAGES, translator
from storage.db import transaction
from storage.models import Conversation, Person, ProcessedUpdate, Report
from tests.conftest import Clock
from tests.fakes.telegram_bot_api import FakeBotApi
from tests.fakes.telegram_bot_server import serving_asgi
from tests.fakes.whatsapp_cloud import FakeCloudApi, serving_cloud
from tests.harness import invite
from tests.test_every_form import TYPED, planned, typed_numbers
from tests.whatsapp_harness import VERIFY_TOKEN, WhatsAppChat, WhatsAppPerson, with_whatsapp

WORKER = "97333000001"


@pytest.mark.parametrize("typed", ["start {code}", "/start {code}", "{code}", "Start {code}"])
async def test_registration_from_a_wa_me_link(sanad: Sanad, typed: str) -> None:
    code = invite(sanad, "bh_rural_girls")
    async with WhatsAppChat(sanad) as wa:
        worker = wa.person(WORKER, "Maryam")
        await worker.says(typed.format(code=code))
        assert worker.titles == ["العربية", "English", "Français"]
        await worker.taps("English")
        assert "What would you like to do?" in worker.everything
        assert wa.api.refused == []
    with transaction(sanad.engine) as session:
        person = session.exec(select(Person).where(Person.channel == "whatsapp")).one()
    assert (person.address, person.display_name, person.language) == (WORKER, "Maryam", "en")


JPEG = b"\xff\xd8\xff\xe0fake-jpeg-bytes"


async def answer(person: WhatsAppPerson, spec: FieldSpec, language: str, form: FormSpec) -> None:
    tr = translator(language)
    if spec.type in TYPED:
        await person.says(planned(form)[spec.name])
    elif spec.type == "choice":
        await person.taps(spec.choices[0].label.get(language))  # type: ignore[index]
    elif spec.type == "yesno":
        await person.taps(tr.gettext("Yes"))
    elif spec.type == "period":
        await person.taps(person.titles[0])
    elif spec.type == "location":
        request = person.answers[0].payload["interactive"]
        assert request["type"] == "location_request_message"
        await person.shares_location(26.2235, 50.5876)
    elif spec.type == "photo":
        await person.sends_photo(JPEG)
        await person.taps(tr.gettext("Done"))
    else:
        raise AssertionError(f"no way to answer a {spec.type} field")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("form_id", ["checkin", "beneficiaries", "recycling"])
async def test_each_form_in_each_language(sanad: Sanad, form_id: str, language: str) -> None:
    form = sanad.dispatcher.services.forms[form_id]
    code = invite(sanad, "bh_rural_girls")
    tr = translator(language)
    async with WhatsAppChat(sanad) as wa:
        worker = wa.person(WORKER, "Maryam")
        await worker.says(f"start {code}")
        await worker.taps(LANGUAGE_NAMES[language])
        await worker.taps(form.title.get(language))
        for spec in form.fields:
            if spec.when is not None and spec.when.field == "activity":
                continue  # the first choice (home visit) does not ask for a description
            assert spec.label.get(language) in worker.everything, spec.name
            await answer(worker, spec, language, form)
        await worker.taps(tr.gettext("Confirm and send"))
        assert f"{form.prefix}-1" in worker.everything
        assert wa.api.refused == []
        kinds = {m.payload["interactive"]["type"] for m in wa.api.sent if m.type == "interactive"}
        assert {"button", "list"} <= kinds
    with transaction(sanad.engine) as session:
        [report] = session.exec(select(Report)).all()
    numbers = {
        s.name: report.answers[s.name] for s in form.fields if s.type in ("integer", "decimal")
    }
    assert set(numbers.values()) <= typed_numbers(form)
    for spec in form.fields:
        if spec.type == "photo" and spec.name in report.answers:
            [photo] = report.answers[spec.name]
            kept = Path(photo["path"])
            assert kept.read_bytes() == JPEG
            assert kept.is_relative_to(sanad.settings.data_dir.resolve())
        if spec.type == "location" and spec.name in report.answers:
            assert "26.2235" in str(report.answers[spec.name])


async def registered(wa: WhatsAppChat, wa_id: str = WORKER, language: str = "en") -> WhatsAppPerson:
    worker = wa.person(wa_id, "Maryam")
    await worker.says(f"start {invite(wa.sanad, 'bh_rural_girls')}")
    await worker.taps(LANGUAGE_NAMES[language])
    return worker


def count(sanad: Sanad, model: type) -> int:
    with transaction(sanad.engine) as session:
        return len(session.exec(select(model)).all())


async def test_meta_verifies_the_webhook_with_the_verify_token(sanad: Sanad) -> None:
    async with WhatsAppChat(sanad) as wa, httpx.AsyncClient(base_url=wa.root) as client:
        query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "8a7"}
        answer = await client.get("/whatsapp", params=query)
        assert (answer.status_code, answer.text) == (200, "8a7")
        assert answer.headers["content-type"].startswith("text/plain")
        wrong = {**query, "hub.verify_token": "guess"}
        assert (await client.get("/whatsapp", params=wrong)).status_code == 403
        assert (await client.get("/whatsapp", params={**query, "hub.mode": "x"})).status_code == 403


async def test_a_delivery_without_the_right_signature_changes_nothing(sanad: Sanad) -> None:
    code = invite(sanad, "bh_rural_girls")
    async with WhatsAppChat(sanad) as wa, httpx.AsyncClient(base_url=wa.root) as client:
        wa.api.user(WORKER).text(f"start {code}")
        body = wa.api.queue.popleft().body
        for headers in ({}, {"X-Hub-Signature-256": "sha256=" + "0" * 64}):
            answer = await client.post("/whatsapp", content=body, headers=headers)
            assert answer.status_code == 401
        forged = json.loads(body)
        signed = wa.api.signature(body)
        forged["entry"][0]["id"] = "other"
        answer = await client.post(
            "/whatsapp", content=json.dumps(forged), headers={"X-Hub-Signature-256": signed}
        )
        assert answer.status_code == 401
        assert wa.api.sent == []
    assert count(sanad, Person) == 0


async def test_a_body_above_the_limit_is_refused_and_changes_nothing(sanad: Sanad) -> None:
    bounded = Sanad(
        sanad.settings.model_copy(update={"webhook_max_body_bytes": 4096}),
        sanad.engine,
        sanad.dispatcher,
    )
    code = invite(sanad, "bh_rural_girls")
    async with WhatsAppChat(bounded) as wa, httpx.AsyncClient(base_url=wa.root) as client:
        wa.api.user(WORKER).text(f"start {code} " + "x" * 5000)
        big = wa.api.queue.popleft().body
        signed = {"X-Hub-Signature-256": wa.api.signature(big)}
        answer = await client.post("/whatsapp", content=big, headers=signed)
        assert answer.status_code == 413  # declared by Content-Length

        async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: read up to the limit
            for _ in range(1024):
                yield b" " * 1024

        answer = await client.post("/whatsapp", content=streamed(), headers=signed)
        assert answer.status_code == 413
        assert wa.api.sent == [] and count(sanad, ProcessedUpdate) == 0
        worker = wa.person(WORKER, "Maryam")
        await worker.says(f"start {code}")  # a delivery below the limit is taken
        assert worker.titles == ["العربية", "English", "Français"]
    assert count(sanad, Person) == 1


async def test_repeated_dropped_and_reordered_deliveries_apply_once(sanad: Sanad) -> None:
    async with WhatsAppChat(sanad) as wa:
        worker = await registered(wa)
        await worker.taps("Recycling output")
        wa.api.repeat_next(3)
        await worker.taps(worker.titles[0])  # the week
        assert count(sanad, ProcessedUpdate) == 4  # start, English, the form, the week: ...
        replies_to_week = [m for m in wa.api.to(WORKER) if "paper" in m.text.lower()]
        assert len(replies_to_week) == 1  # ... the week applied once, answered once
        # Two typed answers delivered in the wrong order: each applies once, in its turn.
        wa.api.reorder()
        wa.api.drop_next()
        worker.user.text("100")
        worker.user.text("20")
        await wa.api.push()
    with transaction(sanad.engine) as session:
        applied = len(session.exec(select(ProcessedUpdate)).all())
    assert applied == 6
    assert wa.api.refused == []


async def test_commands_typed_as_words_in_each_language(sanad: Sanad) -> None:
    fr, ar = translator("fr"), translator("ar")
    async with WhatsAppChat(sanad) as wa:
        worker = await registered(wa, language="fr")
        await worker.taps("Production de recyclage")
        await worker.taps(worker.titles[0])  # the week
        await worker.says("100")
        await worker.says("Retour.")
        assert fr.gettext("This is the first question.") not in worker.everything
        await worker.says("Annuler")
        assert worker.texts[0].startswith(fr.gettext("Cancelled. Nothing was saved."))
        await worker.says("MENU")
        assert fr.gettext("What would you like to do?") in worker.everything
        await worker.says("aide")
        assert "/report" in worker.everything and "/cancel" in worker.everything
        arabic = await registered(wa, "97333000002", language="ar")
        await arabic.says("إلغاء")
        assert ar.gettext("There is nothing to cancel.") in arabic.everything
        await arabic.says("مساعدة")
        assert "/report" in arabic.everything and "/cancel" in arabic.everything


COMMAND_WORDS = {
    "en": {"invite": "invite", "people": "People", "export": "export", "status": "status",
           "broadcast": "broadcast", "review": "review", "myreports": "my reports"},
    "ar": {"invite": "دعوة", "people": "الأشخاص", "export": "تصدير", "status": "الحالة",
           "broadcast": "تعميم", "review": "مراجعة", "myreports": "تقاريري"},
    "fr": {"invite": "Inviter", "people": "personnes", "export": "exporter", "status": "état",
           "broadcast": "diffuser", "review": "revoir", "myreports": "mes rapports"},
}  # fmt: skip


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_coordinator_types_commands_as_words(
    sanad: Sanad, clock: Clock, language: str
) -> None:
    """Each word answers exactly as its command with "/" does."""
    async with WhatsAppChat(sanad) as wa:
        coordinator = wa.person("97333000009", "Huda")
        await coordinator.says(f"start {invite(sanad, 'bh_young_ladies')}")
        await coordinator.taps(LANGUAGE_NAMES[language])
        for command, word in COMMAND_WORDS[language].items():
            clock.advance(seconds=10)  # within WhatsApp's pair rate
            slashed = await coordinator.says(f"/{command}")
            await coordinator.says("/cancel")
            worded = await coordinator.says(word)
            await coordinator.says("/cancel")
            assert worded == slashed, (command, word)
            assert f"/{command}" not in "".join(worded)  # not unknown
        assert wa.api.refused == []


async def answer_up_to_notes(worker: WhatsAppPerson, form: FormSpec, language: str) -> None:
    """Open the recycling form and answer every question before its text question, notes."""
    await worker.taps(form.title.get(language))
    for spec in form.fields:
        if spec.name == "notes":
            return
        if spec.label.get(language) in worker.everything:
            await answer(worker, spec, language, form)
    raise AssertionError("the form has no notes question")


@pytest.mark.parametrize(
    ("language", "word"), [("en", "status"), ("ar", "الحالة"), ("fr", "Historique")]
)
async def test_a_text_question_takes_a_command_word_as_its_answer(
    sanad: Sanad, language: str, word: str
) -> None:
    form = sanad.dispatcher.services.forms["recycling"]
    tr = translator(language)
    async with WhatsAppChat(sanad) as wa:
        worker = await registered(wa, language=language)
        await answer_up_to_notes(worker, form, language)
        await worker.says(word)  # a text question: the word is the answer
        await worker.says(tr.gettext("Confirm and send"))  # not a text question: a word
        if f"{form.prefix}-1" not in worker.everything:
            await worker.taps(tr.gettext("Confirm and send"))
        assert f"{form.prefix}-1" in worker.everything
    with transaction(sanad.engine) as session:
        [report] = session.exec(select(Report)).all()
    assert report.answers["notes"] == word


@pytest.mark.parametrize(
    ("language", "word"), [("en", "cancel"), ("ar", "إلغاء"), ("fr", "Annuler")]
)
async def test_cancel_typed_as_a_word_during_a_text_question_cancels(
    sanad: Sanad, language: str, word: str
) -> None:
    form = sanad.dispatcher.services.forms["recycling"]
    tr = translator(language)
    async with WhatsAppChat(sanad) as wa:
        worker = await registered(wa, language=language)
        await answer_up_to_notes(worker, form, language)
        await worker.says(word)  # the way out, not an answer
        assert tr.gettext("Cancelled. Nothing was saved.") in worker.everything
        assert f"{form.prefix}-1" not in worker.everything
    with transaction(sanad.engine) as session:
        assert session.exec(select(Report)).all() == []
        [conversation] = session.exec(select(Conversation)).all()
    assert "draft" not in conversation.state  # the report was discarded, nothing stored


async def test_a_broadcast_text_may_be_a_command_word(sanad: Sanad) -> None:
    async with WhatsAppChat(sanad) as wa:
        coordinator = wa.person("97333000009", "Huda")
        await coordinator.says(f"start {invite(sanad, 'bh_young_ladies')}")
        await coordinator.taps("Français")
        await coordinator.says("diffuser")  # /broadcast, as a word
        await coordinator.says("Historique")  # the message: a word that names a command
        assert "Un texte par langue" in coordinator.titles  # the message was taken
        await coordinator.says("annuler")  # a choice, not a text question: the word is a command
        assert "Arrêté. Rien n’a été modifié." in coordinator.everything


@pytest.mark.parametrize(
    "kind", ["audio", "video", "sticker", "reaction", "document", "unsupported"]
)
async def test_what_the_bot_cannot_read_gets_a_short_answer(sanad: Sanad, kind: str) -> None:
    async with WhatsAppChat(sanad) as wa:
        worker = await registered(wa)
        with transaction(sanad.engine) as session:
            before = session.exec(select(Conversation)).one().version
        await worker.sends(kind)
        assert worker.texts == [
            "I can only read text, buttons, photos and locations. "
            "Please send your answer as one of those."
        ]
        with transaction(sanad.engine) as session:
            assert session.exec(select(Conversation)).one().version == before


async def test_telegram_and_whatsapp_in_one_webhook_process(sanad: Sanad) -> None:
    api = FakeCloudApi(token="EAAG-one-process", app_secret="one-secret")
    telegram = FakeBotApi()
    async with serving_cloud(api) as base:
        both = with_whatsapp(sanad, base, api)
        settings = both.settings.model_copy(
            update={"telegram_webhook_secret": SecretStr("tg-SECRET")}
        )
        both = Sanad(settings, both.engine, both.dispatcher)
        whatsapp = assemble_whatsapp(both)
        metrics = Metrics(both.engine)
        application = build_telegram(
            both, request=telegram.request(), get_updates_request=telegram.request()
        )
        app = create_app(both, application, metrics, whatsapp)
        async with app.router.lifespan_context(app), serving_asgi(app) as root:
            tg_code, wa_code = invite(sanad, "bh_rural_girls"), invite(sanad, "bh_sitra_women")
            update = telegram.user(501, "Layla").command("start", tg_code)
            async with httpx.AsyncClient(base_url=root) as client:
                answer = await client.post(
                    "/telegram", json=update, headers={SECRET_HEADER: "tg-SECRET"}
                )
            assert answer.status_code == 200
            api.webhook_url = f"{root}/whatsapp"
            api.user(WORKER, "Maryam").text(f"start {wa_code}")
            await api.push()
    assert telegram.messages_to(501) and api.to(WORKER)
    with transaction(sanad.engine) as session:
        people = {(p.channel, p.address) for p in session.exec(select(Person)).all()}
    assert people == {("telegram", "501"), ("whatsapp", WORKER)}
