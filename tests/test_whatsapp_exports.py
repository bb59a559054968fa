"""Exports name the channel each report was sent from: one worker reports on Telegram (the
real Telegram channel against the fake Bot API), another on WhatsApp (the fake Cloud API posting
signed webhooks to Sanad's webhook over HTTP); the CSV and the XLSX say which, in the
export's language."""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import load_workbook

from bot.app import Sanad
from exports import export
from storage.db import transaction
from tests.harness import Telegram, registered, report_recycling
from tests.test_whatsapp_channel import answer
from tests.test_whatsapp_channel import registered as registered_on_whatsapp
from tests.whatsapp_harness import WhatsAppChat


async def test_exports_name_the_channel_each_report_was_sent_from(
    sanad: Sanad, tmp_path: Path
) -> None:
    forms = sanad.dispatcher.services.forms
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram, "bh_sitra_women", 801, "Fatima", language="en")
        await report_recycling(fatima)
    async with WhatsAppChat(sanad) as wa:
        maryam = await registered_on_whatsapp(wa)
        form = forms["checkin"]
        await maryam.taps(form.title.get("en"))
        for spec in form.fields:
            if spec.when is not None and spec.when.field == "activity":
                continue  # the first choice (home visit) does not ask for a description
            await answer(maryam, spec, "en", form)
        await maryam.taps("Confirm and send")
        assert "Thank you" in maryam.everything
        recycling = forms["recycling"]
        await maryam.taps(recycling.title.get("en"))
        for spec in recycling.fields:
            await answer(maryam, spec, "en", recycling)
        await maryam.taps("Confirm and send")
        assert "Thank you" in maryam.everything

    with transaction(sanad.engine) as session:
        export(session, forms, "recycling", "ar", "csv", tmp_path / "recycling.csv")
        export(session, forms, None, "fr", "xlsx", tmp_path / "reports.xlsx")
    with (tmp_path / "recycling.csv").open(encoding="utf-8-sig") as written:
        rows = list(csv.DictReader(written))
    by_person = {row["الشخص"].split(" (")[0]: row["القناة"] for row in rows}
    assert by_person == {"Fatima": "تيليجرام", "Maryam": "واتساب"}

    workbook = load_workbook(tmp_path / "reports.xlsx")
    sheet = workbook[recycling.title.fr]
    header = [cell.value for cell in sheet[1]]
    assert header[4:6] == ["Personne", "Canal"]
    channels = sorted(row[5] for row in sheet.iter_rows(min_row=2, values_only=True))
    assert channels == ["Telegram", "WhatsApp"]
    checkins = workbook[forms["checkin"].title.fr]
    column = [cell.value for cell in checkins[1]].index("Canal")
    assert [row[column] for row in checkins.iter_rows(min_row=2, values_only=True)] == ["WhatsApp"]
