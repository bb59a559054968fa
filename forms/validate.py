"""Checking a whole report before it is saved: every visible field answered as its type and
bounds require, nothing answered that is not asked, and the form's cross-field rules.

Used when a person confirms a report and when a correction is saved: whatever happened in
the conversation before (a /back while changing an answer, a form file changed since the
draft was started), what is stored is a complete, valid report.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from forms.display import short_label
from forms.kinds import value_fits
from forms.schema import FieldSpec, FormSpec, Rule
from locales import Translator


def visible_fields(form: FormSpec, answers: dict[str, Any]) -> list[FieldSpec]:
    """The fields asked for these answers: those without a condition or whose condition holds."""
    return [f for f in form.fields if f.when is None or f.when.holds(answers)]


def rule_holds(rule: Rule, answers: dict[str, Any]) -> bool:
    """True when the rule holds, or cannot be judged (one of its numbers was not given)."""
    values = [answers.get(name) for name in rule.names]
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
        return True
    total = sum((Decimal(str(answers[n])) for n in rule.sum), Decimal(0))
    other = sum((Decimal(str(answers[n])) for n in rule.other), Decimal(0))
    if rule.kind == "equals":
        return total == other
    if rule.kind == "at_most":
        return total <= other
    return total >= other


def broken_rules(form: FormSpec, answers: dict[str, Any]) -> list[Rule]:
    return [rule for rule in form.rules if not rule_holds(rule, answers)]


@dataclass(frozen=True)
class Problems:
    """What stops a report from being saved (`blocking`), and soft rules it breaks."""

    missing: list[FieldSpec]
    invalid: list[FieldSpec]
    hard: list[Rule]
    soft: list[Rule]

    @property
    def blocking(self) -> bool:
        return bool(self.missing or self.invalid or self.hard)

    def messages(self, tr: Translator) -> list[str]:
        """Each problem as a translated sentence, blocking ones first."""
        lines = [
            tr.gettext("“{question}” has no answer yet.", question=short_label(f, tr.language))
            for f in self.missing
        ]
        lines += [
            tr.gettext(
                "The answer to “{question}” is not valid; please answer it again.",
                question=short_label(f, tr.language),
            )
            for f in self.invalid
        ]
        lines += [
            tr.gettext("To fix: {explanation}", explanation=r.explain.get(tr.language))
            for r in self.hard
        ]
        lines += [
            tr.gettext("Please check: {explanation}", explanation=r.explain.get(tr.language))
            for r in self.soft
        ]
        return lines


def report_problems(form: FormSpec, answers: dict[str, Any]) -> Problems:
    """Everything wrong with `answers` as a whole report of `form`."""
    visible = visible_fields(form, answers)
    missing = [f for f in visible if f.required and answers.get(f.name) is None]
    invalid = [
        f
        for f in visible
        if f not in missing and f.name in answers and not value_fits(f, answers[f.name])
    ]
    broken = broken_rules(form, answers)
    return Problems(
        missing=missing,
        invalid=invalid,
        hard=[r for r in broken if r.hard],
        soft=[r for r in broken if not r.hard],
    )
