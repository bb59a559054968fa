"""Every shipped form can be filled and confirmed in every language, answering each question
the way its type expects; and what was typed is what the export shows."""

from __future__ import annotations

import csv

import pytest
from sqlmodel import select

from bot.app import Sanad
from exports.writers import export
from forms.schema import FieldSpec
from locales import LANGUAGE_NAMES, LANGUAGES, translator
from storage.db import transaction
from storage.models import Report
from tests.harness import Person, Telegram, invite

TYPED = {"integer": "٢٤", "decimal": "١٢٫٥", "text": "تجربة / essai", "date": "28/11/2026"}


async def answer(person: Person, spec: FieldSpec, language: str) -> None:
    tr = translator(language)
    if spec.type in TYPED:
        await person.says(TYPED[spec.type])
    elif spec.type == "choice":
        await person.taps(spec.choices[0].label.get(language))  # type: ignore[index]
    elif spec.type == "yesno":
        await person.taps(tr.gettext("Yes"))
    elif spec.type == "period":
        await person.taps(person.buttons[0])
    elif spec.type == "location":
        await person.shares_location(26.2235, 50.5876)
    elif spec.type == "photo":
        await person.sends_photo("AgADphoto")
        await person.taps(tr.gettext("Done"))
    else:
        raise AssertionError(f"no way to answer a {spec.type} field")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("form_id", ["checkin", "beneficiaries", "recycling"])
async def test_each_form_in_each_language(
    sanad: Sanad, form_id: str, language: str, tmp_path: object
) -> None:
    form = sanad.dispatcher.services.forms[form_id]
    code = invite(sanad, "bh_rural_girls")
    tr = translator(language)
    async with Telegram(sanad) as telegram:
        worker = telegram.person(401, "Maryam", language=language)
        await worker.says(f"/start {code}")
        await worker.taps(LANGUAGE_NAMES[language])
        await worker.taps(form.title.get(language))
        for spec in form.fields:
            if spec.when is not None and spec.when.field == "activity":
                continue  # the first choice (home visit) does not ask for a description
            assert spec.label.get(language) in worker.last, spec.name
            await answer(worker, spec, language)
        assert tr.gettext("Confirm and send") in worker.buttons
        await worker.taps(tr.gettext("Confirm and send"))
        assert f"{form.prefix}-1" in worker.everything
    with transaction(sanad.engine) as session:
        [report] = session.exec(select(Report)).all()
        numbers = {
            s.name: report.answers[s.name] for s in form.fields if s.type in ("integer", "decimal")
        }
        assert set(numbers.values()) <= {24, 12.5}
        target = tmp_path / "out.csv"  # type: ignore[operator]
        assert (
            export(session, sanad.dispatcher.services.forms, form_id, language, "csv", target) == 1
        )
    with target.open(encoding="utf-8-sig") as file:
        [row] = list(csv.DictReader(file))
    assert row[tr.gettext("Reference")] == f"{form.prefix}-1"
    for spec in form.fields:
        if spec.type in ("integer", "decimal"):
            header = next(h for h in row if h.startswith(spec.label.get(language)))
            assert row[header] in ("24", "12.5"), (header, row[header])
