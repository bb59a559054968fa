"""Every shipped form can be filled and confirmed in every language, answering each question
the way its type expects; and what was typed is what the export shows."""

from __future__ import annotations

import csv

import pytest
from sqlmodel import select

from bot.app import Sanad
from exports.writers import export
from forms.display import header_label, short_label
from forms.schema import FieldSpec, FormSpec
from locales import LANGUAGE_NAMES, LANGUAGES, translator
from storage.db import transaction
from storage.models import Report
from tests.harness import Person, Telegram, invite, plain

TYPED = {"integer": "٢٤", "decimal": "١٢٫٥", "text": "تجربة / essai", "date": "28/11/2026"}
ARABIC_DIGITS = str.maketrans("0123456789.", "٠١٢٣٤٥٦٧٨٩٫")


def planned(form: FormSpec) -> dict[str, str]:
    """What to type for each field: 24 or 12.5, and for the other side of a rule that wants
    a sum ("new plus continuing equals families") the sum, so that every rule holds."""
    typed = {s.name: TYPED[s.type] for s in form.fields if s.type in TYPED}
    for rule in form.rules:
        if rule.kind == "equals" and len(rule.other) == 1:
            total = sum(24 if form.field(n).type == "integer" else 12.5 for n in rule.sum)
            typed[rule.other[0]] = f"{total:g}".translate(ARABIC_DIGITS)
    return typed


def typed_numbers(form: FormSpec) -> set[float]:
    arabic = str.maketrans("٠١٢٣٤٥٦٧٨٩٫", "0123456789.")
    return {
        float(text.translate(arabic))
        for name, text in planned(form).items()
        if form.field(name).type in ("integer", "decimal")
    }


async def answer(person: Person, spec: FieldSpec, language: str, form: FormSpec) -> None:
    tr = translator(language)
    if spec.type in TYPED:
        await person.says(planned(form)[spec.name])
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
            await answer(worker, spec, language, form)
        for spec in form.fields:
            if spec.type in TYPED and spec.type != "text":
                line = tr.gettext("{label}: {answer}", label=short_label(spec, language), answer="")
                assert plain(line) in worker.last, spec.name
        assert tr.gettext("Confirm and send") in worker.buttons
        await worker.taps(tr.gettext("Confirm and send"))
        assert f"{form.prefix}-1" in worker.everything
    with transaction(sanad.engine) as session:
        [report] = session.exec(select(Report)).all()
        numbers = {
            s.name: report.answers[s.name] for s in form.fields if s.type in ("integer", "decimal")
        }
        assert set(numbers.values()) <= typed_numbers(form)
        target = tmp_path / "out.csv"  # type: ignore[operator]
        assert (
            export(session, sanad.dispatcher.services.forms, form_id, language, "csv", target) == 1
        )
    with target.open(encoding="utf-8-sig") as file:
        [row] = list(csv.DictReader(file))
    assert row[tr.gettext("Reference")] == f"{form.prefix}-1"
    for spec in form.fields:
        if spec.type in ("integer", "decimal"):
            header = row[header_label(spec, language)]
            assert float(header) in typed_numbers(form), (spec.name, header)
