"""The whole-report check behind Confirm and Save the correction: what is missing, what is not
a valid value, which rules are broken, said in each language."""

from __future__ import annotations

from typing import Any

import pytest

from forms.loader import load_forms
from forms.validate import report_problems
from locales import LANGUAGES, translator

FORMS = load_forms()


def beneficiaries(**changes: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {
        "period": "2026-11",
        "women_heads": 42,
        "working_children": 15,
        "school_dropouts": 9,
        "families_reached": 60,
        "new_beneficiaries": 12,
        "continuing_beneficiaries": 48,
        "notes": None,
    }
    answers.update(changes)
    return {k: v for k, v in answers.items() if v != "drop"}


def test_a_complete_report_has_no_problem() -> None:
    problems = report_problems(FORMS["beneficiaries"], beneficiaries())
    assert not problems.blocking and problems.messages(translator("en")) == []


def test_a_dropped_required_answer_blocks_and_is_named() -> None:
    problems = report_problems(FORMS["beneficiaries"], beneficiaries(working_children="drop"))
    assert problems.blocking
    assert problems.messages(translator("en")) == [
        "“\u2068Working children\u2069” has no answer yet."
    ]


@pytest.mark.parametrize(
    "value", [-1, 10_001, 2.5, "15", True, float("nan"), None, [15], {"n": 15}]
)
def test_a_value_outside_its_type_or_bounds_blocks(value: object) -> None:
    problems = report_problems(FORMS["beneficiaries"], beneficiaries(working_children=value))
    assert problems.blocking


def test_an_unclean_or_too_long_text_blocks() -> None:
    checkin = FORMS["checkin"]
    answers = {
        "visit_date": "2026-11-28",
        "activity": "other",
        "activity_other": "ok",
        "place": {"text": "Sitra"},
        "people_reached": 8,
        "had_challenges": False,
    }
    assert not report_problems(checkin, answers).blocking
    assert report_problems(checkin, {**answers, "activity_other": "a\u202eb"}).blocking
    assert report_problems(checkin, {**answers, "activity_other": "x" * 201}).blocking
    assert report_problems(checkin, {**answers, "activity": "dance"}).blocking
    # a question not asked for these answers is not required
    assert not report_problems(checkin, {**answers, "activity": "training"}).blocking


def test_a_hard_rule_blocks_and_a_soft_one_does_not() -> None:
    broken = report_problems(FORMS["beneficiaries"], beneficiaries(continuing_beneficiaries=40))
    assert broken.blocking and [r.name for r in broken.hard] == ["new_and_continuing_are_all"]
    recycling = {
        "period": "2026-11-29",
        "paper_kg": 10,
        "aluminium_kg": 10,
        "plastic_kg": 10,
        "sold_kg": 31,
        "revenue": 50.0,
        "paid_to_women": 80.0,
        "women_working": 4,
        "notes": None,
    }
    soft = report_problems(FORMS["recycling"], recycling)
    assert not soft.blocking
    assert [r.name for r in soft.soft] == ["sold_within_collected", "paid_within_revenue"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_problem_is_said_in_the_language(language: str) -> None:
    answers = beneficiaries(working_children="drop", women_heads=-5, continuing_beneficiaries=1)
    problems = report_problems(FORMS["beneficiaries"], answers)
    messages = problems.messages(translator(language))
    assert len(messages) == 3
    english = problems.messages(translator("en"))
    if language != "en":
        assert all(m != e for m, e in zip(messages, english, strict=True))
