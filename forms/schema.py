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
#: What answers a question besides its options: a photo, a place, a typed number.
Expected = Literal["photo", "location", "number"]
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
    hint: Labels | None = None
    required: bool = True
    min: Decimal | None = None
    max: Decimal | None = None
    max_length: int = Field(default=1000, ge=1, le=4000)
    max_count: int = Field(default=1, ge=1, le=10)  # photos
    allow_text: bool = False  # location: a typed place name is accepted too
    unit: Labels | None = None
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
        if self.type == "period" and not self.required:
            raise ValueError(f"field '{self.name}': the period is always required")
        if self.money and (self.type not in ("integer", "decimal") or self.unit is not None):
            raise ValueError(f"field '{self.name}': money is a number without another unit")
        return self


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
        return self

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)


def expected_input(field_type: FieldType) -> Expected | None:
    """What a question of this type waits for besides its options (None: text or a choice)."""
    if field_type in ("photo", "location"):
        return field_type
    return "number" if field_type in ("integer", "decimal") else None
