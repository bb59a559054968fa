"""Sanad on WhatsApp, end to end over HTTP: the fake Cloud API posts signed webhooks to the
webhook, the bot answers through the Graph API, and the fake holds it to WhatsApp's limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from bot.app import Sanad
from forms.schema import FieldSpec
from locales import LANGUAGE_NAMES, LANGUAGES, translator
from storage.db import transaction
from storage.models import Person, Report
from tests.harness import invite
from tests.whatsapp_harness import WhatsAppChat, WhatsAppPerson

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


TYPED = {"integer": "٢٤", "decimal": "١٢٫٥", "text": "تجربة / essai", "date": "28/11/2026"}
JPEG = b"\xff\xd8\xff\xe0fake-jpeg-bytes"


async def answer(person: WhatsAppPerson, spec: FieldSpec, language: str) -> None:
    tr = translator(language)
    if spec.type in TYPED:
        await person.says(TYPED[spec.type])
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
            await answer(worker, spec, language)
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
    assert set(numbers.values()) <= {24, 12.5}
    for spec in form.fields:
        if spec.type == "photo" and spec.name in report.answers:
            [photo] = report.answers[spec.name]
            kept = Path(photo["path"])
            assert kept.read_bytes() == JPEG
            assert kept.is_relative_to(sanad.settings.data_dir.resolve())
        if spec.type == "location" and spec.name in report.answers:
            assert "26.2235" in str(report.answers[spec.name])
