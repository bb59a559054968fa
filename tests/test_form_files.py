"""The form files: the three shipped forms load in Arabic, English and French, and a broken
form file stops start-up with an error that names the file and the field to fix."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import assemble
from bot.settings import Settings
from forms.loader import BUILT_IN, FormFileError, load_form, load_forms
from forms.schema import FormSpec, Labels

LANGUAGES = ("ar", "en", "fr")
Edit = Callable[[dict[str, Any]], object]


def labels_of(form: FormSpec) -> Iterator[tuple[str, Labels]]:
    """Every text of a form a person reads, with where it is."""
    yield "title", form.title
    for spec in form.fields:
        yield f"{spec.name}.label", spec.label
        for name in ("short", "hint", "unit"):
            if (text := getattr(spec, name)) is not None:
                yield f"{spec.name}.{name}", text
        for choice in spec.choices or []:
            yield f"{spec.name}.{choice.value}", choice.label


def test_the_three_shipped_forms_load() -> None:
    forms = load_forms()

    assert sorted(forms) == ["beneficiaries", "checkin", "recycling"]
    assert {form.command for form in forms.values()} == set(forms)
    assert sorted(form.prefix for form in forms.values()) == ["BEN", "CHK", "REC"]
    assert (forms["checkin"].period, forms["beneficiaries"].period, forms["recycling"].period) == (
        "none",
        "month",
        "week",
    )


@pytest.mark.parametrize("path", sorted(BUILT_IN.glob("*.yaml")), ids=lambda path: path.name)
def test_every_text_of_a_shipped_form_is_in_arabic_english_and_french(path: Path) -> None:
    form = load_form(path)
    for where, text in labels_of(form):
        for language in LANGUAGES:
            assert getattr(text, language).strip(), f"{path.name}: {where} has no {language}"
    assert form.field("notes" if form.id != "checkin" else "photos").required is False
    assert all(spec.short is not None for spec in form.fields), "every field has a short label"
    for rule in form.rules:
        for language in LANGUAGES:
            assert getattr(rule.explain, language).strip(), f"{path.name}: {rule.name}"


# --- broken form files --------------------------------------------------------------------


def forms_with(folder: Path, name: str, edit: Edit) -> Path:
    """A copy of the shipped forms in which `name` is changed by `edit(data)`."""
    folder.mkdir(exist_ok=True)
    for path in BUILT_IN.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    data = yaml.safe_load((folder / name).read_text(encoding="utf-8"))
    edit(data)
    (folder / name).write_text(
        yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return folder


def start_up_error(forms_dir: Path) -> str:
    with pytest.raises(FormFileError) as raised:
        load_forms(forms_dir)
    return str(raised.value)


def field(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(spec for spec in data["fields"] if spec["name"] == name)


BROKEN: dict[str, tuple[str, Edit, str, list[str]]] = {
    "unknown type": (
        "recycling.yaml",
        lambda d: field(d, "paper_kg").update(type="weight"),
        "paper_kg",
        ["type", "decimal"],
    ),
    "choice without choices": (
        "recycling.yaml",
        lambda d: field(d, "paper_kg").update(type="choice"),
        "paper_kg",
        ["needs choices"],
    ),
    "when names a later field": (
        "recycling.yaml",
        lambda d: field(d, "paper_kg").update(when={"field": "women_working", "equals": 0}),
        "paper_kg",
        ["women_working", "not an earlier field"],
    ),
    "label without French": (
        "recycling.yaml",
        lambda d: field(d, "paper_kg")["label"].pop("fr"),
        "paper_kg",
        ["label.fr", "required"],
    ),
    "unit without French": (
        "recycling.yaml",
        lambda d: field(d, "paper_kg")["unit"].pop("fr"),
        "paper_kg",
        ["unit.fr"],
    ),
    "choice label without French": (
        "checkin.yaml",
        lambda d: field(d, "activity")["choices"][2]["label"].pop("fr"),
        "activity",
        ["choices.2.label.fr"],
    ),
    "field twice": (
        "recycling.yaml",
        lambda d: d["fields"].append(dict(field(d, "paper_kg"))),
        "paper_kg",
        ["twice"],
    ),
    "misspelt key": (
        "beneficiaries.yaml",
        lambda d: field(d, "women_heads").update(lable=field(d, "women_heads").pop("label")),
        "women_heads",
        ["lable", "label"],
    ),
    "min above max": (
        "beneficiaries.yaml",
        lambda d: field(d, "school_dropouts").update(min=10, max=5),
        "school_dropouts",
        ["min is above max"],
    ),
    "rule names a missing field": (
        "beneficiaries.yaml",
        lambda d: d["rules"][0].update(equals="families_helped"),
        "families_helped",
        ["new_and_continuing_are_all", "not in the form"],
    ),
    "rule names a text field": (
        "beneficiaries.yaml",
        lambda d: d["rules"][0].update(equals="notes"),
        "notes",
        ["not a number field"],
    ),
    "rule with two comparisons": (
        "beneficiaries.yaml",
        lambda d: d["rules"][0].update(at_most="women_heads"),
        "new_and_continuing_are_all",
        ["exactly one of equals, at_most, at_least"],
    ),
    "rule explanation without French": (
        "recycling.yaml",
        lambda d: d["rules"][1]["explain"].pop("fr"),
        "paid_within_revenue",
        ["explain.fr"],
    ),
    "rule across kg and money": (
        "recycling.yaml",
        lambda d: d["rules"][1].update(at_most="paper_kg"),
        "paid_within_revenue",
        ["different units"],
    ),
    "unit word with two factors": (
        "recycling.yaml",
        lambda d: field(d, "sold_kg").update(
            unit={**field(d, "sold_kg")["unit"], "accepts": [{"factor": 1000, "words": ["kg"]}]}
        ),
        "sold_kg",
        ["two factors"],
    ),
    "money field with a unit": (
        "recycling.yaml",
        lambda d: field(d, "revenue").update(unit={"ar": "د", "en": "d", "fr": "d"}),
        "revenue",
        ["money"],
    ),
}


@pytest.mark.parametrize("problem", BROKEN)
def test_a_broken_form_file_names_the_file_and_the_field(tmp_path: Path, problem: str) -> None:
    name, edit, field_name, details = BROKEN[problem]

    message = start_up_error(forms_with(tmp_path / "forms", name, edit))

    assert name in message and f"'{field_name}'" in message
    for detail in details:
        assert detail in message


def test_a_form_file_that_is_not_yaml_names_the_file_and_the_line(tmp_path: Path) -> None:
    forms_dir = forms_with(tmp_path / "forms", "recycling.yaml", lambda data: None)
    text = (forms_dir / "recycling.yaml").read_text(encoding="utf-8")
    (forms_dir / "recycling.yaml").write_text(
        text.replace("- name: paper_kg", "- name: paper_kg\n   type: decimal"), encoding="utf-8"
    )

    message = start_up_error(forms_dir)

    assert "recycling.yaml" in message and "not valid YAML" in message
    assert "line" in message and "paper_kg" in message


def test_a_form_file_saved_in_a_windows_arabic_encoding_says_so(tmp_path: Path) -> None:
    forms_dir = forms_with(tmp_path / "forms", "checkin.yaml", lambda data: None)
    text = (forms_dir / "checkin.yaml").read_text(encoding="utf-8")
    (forms_dir / "checkin.yaml").write_bytes(text.encode("cp1256", "replace"))

    message = start_up_error(forms_dir)

    assert "checkin.yaml" in message and "UTF-8" in message


def test_two_forms_with_the_same_command_name_both_files(tmp_path: Path) -> None:
    forms_dir = forms_with(tmp_path / "forms", "checkin.yaml", lambda data: None)
    data = yaml.safe_load((forms_dir / "checkin.yaml").read_text(encoding="utf-8"))
    data.update(id="visit", prefix="VIS")
    (forms_dir / "visit.yaml").write_text(
        yaml.safe_dump(data, allow_unicode=True), encoding="utf-8"
    )

    message = start_up_error(forms_dir)

    assert "visit.yaml" in message and "checkin.yaml" in message and "'/checkin'" in message


def test_two_forms_with_the_same_id_name_the_id(tmp_path: Path) -> None:
    forms_dir = forms_with(tmp_path / "forms", "checkin.yaml", lambda data: None)
    data = yaml.safe_load((forms_dir / "checkin.yaml").read_text(encoding="utf-8"))
    data.update(command="visit")
    (forms_dir / "visit.yaml").write_text(
        yaml.safe_dump(data, allow_unicode=True), encoding="utf-8"
    )

    assert "'checkin'" in start_up_error(forms_dir)


def test_a_folder_without_form_files_is_refused(tmp_path: Path) -> None:
    assert "no form files" in start_up_error(tmp_path)


def test_a_broken_form_file_stops_start_up_before_the_database(tmp_path: Path) -> None:
    broken = forms_with(
        tmp_path / "forms", "recycling.yaml", lambda d: field(d, "paper_kg").update(type="weight")
    )
    database = tmp_path / "sanad.db"
    settings = Settings(
        _env_file=None, database_url=f"sqlite:///{database}", data_dir=tmp_path / "data"
    )

    with pytest.raises(FormFileError, match=r"recycling\.yaml: field 'paper_kg'"):
        assemble(settings, forms_dir=broken)
    assert not database.exists()
