"""The schema of a form file. Forms are data: one YAML file per form, validated at start-up."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FieldType = Literal[
    "integer",
    "decimal",
    "text",
    "choice",
    "multichoice",
    "date",
    "period",
    "photo",
    "location",
    "yesno",
]
PeriodKind = Literal["none", "day", "week", "month"]
#: What answers a question besides its options: a photo, a place, a typed number, typed text
#: (where any word, even one that names a command on WhatsApp, is the answer).
Expected = Literal["photo", "location", "number", "text"]
NAME = r"^[a-z][a-z0-9_]{0,30}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Labels(Strict):
    """One text in each language the bot speaks."""

    ar: str = Field(min_length=1)
    en: str = Field(min_length=1)
    fr: str = Field(min_length=1)

    def get(self, language: str) -> str:
        return str(getattr(self, language, self.ar))


class UnitAlternative(Strict):
    """Words for another unit a person may type, and the factor to the field's own unit."""

    factor: Decimal = Field(gt=0)
    words: list[str] = Field(min_length=1)


class Unit(Labels):
    """The unit of a number field, shown after its numbers, and the other units it accepts
    (``12 t`` in a kilogram field is 12,000 kg). The unit's own labels are always accepted."""

    accepts: list[UnitAlternative] = []

    @model_validator(mode="after")
    def _words_unique(self) -> Unit:
        seen = {unit_key(label): Decimal(1) for label in (self.ar, self.en, self.fr)}
        for alternative in self.accepts:
            for word in alternative.words:
                key = unit_key(word)
                if not key:
                    raise ValueError(f"unit word {word!r} has no letters")
                if seen.get(key, alternative.factor) != alternative.factor:
                    raise ValueError(f"unit word {word!r} is given two factors")
                seen[key] = alternative.factor
        return self


def unit_key(word: str) -> str:
    """A unit word as it is compared: case-folded, without dots, Arabic diacritics or tatweel."""
    return "".join(
        c for c in word.casefold() if c not in ". \u0640" and not "\u064b" <= c <= "\u065f"
    )


class Choice(Strict):
    value: str = Field(pattern=NAME)
    label: Labels


class Condition(Strict):
    """Ask a field only when an earlier answer equals (or is one of) some values."""

    field: str = Field(pattern=NAME)
    equals: str | bool | int | None = None
    one_of: list[str] | None = None

    def holds(self, answers: dict[str, object]) -> bool:
        value = answers.get(self.field)
        if self.one_of is not None:
            chosen = value if isinstance(value, list) else [value]
            return any(v in self.one_of for v in chosen)
        if isinstance(value, list):
            return self.equals in value
        return value == self.equals


class FieldSpec(Strict):
    """One question of a form."""

    name: str = Field(pattern=NAME)
    type: FieldType
    label: Labels
    short: Labels | None = None  # the label in summaries, digests and export headers
    hint: Labels | None = None
    required: bool = True
    min: Decimal | None = None
    max: Decimal | None = None
    max_length: int = Field(default=1000, ge=1, le=4000)
    max_count: int = Field(default=1, ge=1, le=10)  # photos
    allow_text: bool = False  # location: a typed place name is accepted too
    unit: Unit | None = None
    money: bool = False  # an amount in the group's currency (shown and exported with it)
    choices: list[Choice] | None = None
    when: Condition | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.type in ("choice", "multichoice"):
            if not self.choices:
                raise ValueError(f"field '{self.name}': a {self.type} field needs choices")
            values = [c.value for c in self.choices]
            if len(set(values)) != len(values):
                raise ValueError(f"field '{self.name}': choice values repeat")
        elif self.choices:
            raise ValueError(f"field '{self.name}': only choice fields take choices")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"field '{self.name}': min is above max")
        number = self.type in ("integer", "decimal")
        if (self.unit is not None or self.money) and not number:
            raise ValueError(f"field '{self.name}': only number fields take a unit or money")
        if self.unit is not None and self.money:
            raise ValueError(f"field '{self.name}': a money field takes the group's currency")
        if self.type == "period" and not self.required:
            raise ValueError(f"field '{self.name}': the period is always required")
        return self


RuleKind = Literal["equals", "at_most", "at_least"]


class Rule(Strict):
    """A check across fields: the sum of some answers equals, is at most or at least one other
    answer (or the sum of several).
    A hard rule must hold before a report is saved; a soft one asks the person to confirm."""

    name: str = Field(pattern=NAME)
    sum: list[str] = Field(min_length=1)
    equals: str | list[str] | None = None
    at_most: str | list[str] | None = None
    at_least: str | list[str] | None = None
    hard: bool = True
    explain: Labels

    @model_validator(mode="after")
    def _one_comparison(self) -> Rule:
        given = [k for k in ("equals", "at_most", "at_least") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"rule '{self.name}': give exactly one of equals, at_most, at_least")
        return self

    @property
    def kind(self) -> RuleKind:
        return "equals" if self.equals else "at_most" if self.at_most else "at_least"

    @property
    def other(self) -> list[str]:
        side = self.equals or self.at_most or self.at_least or []
        return [side] if isinstance(side, str) else list(side)

    @property
    def names(self) -> list[str]:
        return [*self.sum, *self.other]


class FormSpec(Strict):
    """A whole form: who fills it, for which period, and its questions in order."""

    id: str = Field(pattern=NAME)
    command: str = Field(pattern=NAME)
    prefix: str = Field(pattern=r"^[A-Z]{1,4}$")
    title: Labels
    period: PeriodKind = "none"
    roles: list[Literal["worker", "coordinator", "admin"]] = ["worker", "coordinator", "admin"]
    org_kinds: list[Literal["supportive", "partner", "network"]] = ["partner"]
    fields: list[FieldSpec] = Field(min_length=1)
    rules: list[Rule] = []

    @model_validator(mode="after")
    def _consistent(self) -> FormSpec:
        seen: set[str] = set()
        for spec in self.fields:
            if spec.name in seen:
                raise ValueError(f"field '{spec.name}' appears twice")
            if spec.when is not None and spec.when.field not in seen:
                raise ValueError(
                    f"field '{spec.name}': its condition names '{spec.when.field}', "
                    "which is not an earlier field"
                )
            seen.add(spec.name)
        periods = [f for f in self.fields if f.type == "period"]
        if self.period == "none" and periods:
            raise ValueError("a form with period 'none' cannot have a period field")
        if self.period != "none" and (len(periods) != 1 or self.fields[0].type != "period"):
            every = {"day": "daily", "week": "weekly", "month": "monthly"}[self.period]
            raise ValueError(f"a {every} form needs exactly one period field, first")
        self._check_rules()
        return self

    def _check_rules(self) -> None:
        numbers = {f.name for f in self.fields if f.type in ("integer", "decimal")}
        names: set[str] = set()
        for rule in self.rules:
            if rule.name in names:
                raise ValueError(f"rule '{rule.name}' appears twice")
            names.add(rule.name)
            for name in rule.names:
                if name not in seen_names(self):
                    raise ValueError(f"rule '{rule.name}': field '{name}' is not in the form")
                if name not in numbers:
                    raise ValueError(f"rule '{rule.name}': field '{name}' is not a number field")
            units = [(self.field(n).money, self.field(n).unit) for n in rule.names]
            kinds = {(money, unit.en if unit is not None else None) for money, unit in units}
            if len(kinds) > 1:
                raise ValueError(f"rule '{rule.name}': its fields have different units")
            twice = [n for n in rule.names if rule.names.count(n) > 1]
            if twice:
                raise ValueError(f"rule '{rule.name}': field '{twice[0]}' is named twice")

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)


def seen_names(form: FormSpec) -> set[str]:
    return {f.name for f in form.fields}


def expected_input(field_type: FieldType) -> Expected | None:
    """What a question of this type waits for besides its options (None: a choice, a date)."""
    if field_type in ("photo", "location", "text"):
        return field_type
    return "number" if field_type in ("integer", "decimal") else None
