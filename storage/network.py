"""The network file: groups, their supportive organization and partner associations.

`apply_network` is idempotent: running it twice changes nothing, and after an edit it applies
renames and new associations; an association left out is marked inactive, never deleted, so
no report is lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel import Session, select

from forms import yaml_file
from storage.models import Group, Organization
from storage.schedule import schedule_from

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: The reporting week starts after the weekend: Friday-Saturday weekends start on Sunday.
WEEK_START_BY_COUNTRY = {
    "EG": "sunday",
    "SD": "sunday",
    "BH": "sunday",
    "LB": "monday",
    "MA": "monday",
}
#: The digits people read numbers in (in Arabic text; English and French use Latin digits):
#: Arabic-Indic (٠١٢٣) in the Mashriq, Latin (0123) where French is the second language.
DIGITS_BY_COUNTRY = {"EG": "arab", "SD": "arab", "BH": "arab", "LB": "latn", "MA": "latn"}
KEY = r"^[a-z][a-z0-9_]{0,40}$"


class NetworkError(Exception):
    """A network file that cannot be applied, with the place of the problem."""


class Names(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ar: str = Field(min_length=1)
    en: str = Field(min_length=1)
    fr: str = Field(min_length=1)


class OrganizationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=KEY)
    names: Names
    placeholder: bool = False


class GroupSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=KEY)
    names: Names
    country: str = Field(pattern=r"^[A-Z]{2}$")
    timezone: str
    language: Literal["ar", "en", "fr"] = "ar"
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    digits: Literal["arab", "latn"] | None = None
    week_start: Literal[WEEKDAYS] | None = None  # type: ignore[valid-type]
    targets: dict[str, dict[str, float]] = Field(default_factory=dict)
    schedule: dict[str, Any] = Field(default_factory=dict)
    supportive: OrganizationSpec
    partners: list[OrganizationSpec] = Field(min_length=1)

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: dict[str, Any]) -> dict[str, Any]:
        schedule_from(value)  # raises with the offending key
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value


class NetworkSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    network: OrganizationSpec
    groups: list[GroupSpec] = Field(min_length=1)


def read_network(path: Path) -> NetworkSpec:
    """The network file, checked; a NetworkError names the file and the problem (also for a
    file too large or too deeply nested: see forms.yaml_file)."""
    try:
        spec = NetworkSpec.model_validate(yaml_file.load(path))
    except yaml_file.YamlFileError as error:
        raise NetworkError(str(error)) from error
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise NetworkError(f"{path}: {problems}") from error
    keys = [spec.network.key] + [o.key for g in spec.groups for o in [g.supportive, *g.partners]]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise NetworkError(f"{path}: organization keys used twice: {', '.join(repeated)}")
    groups = [NETWORK_GROUP] + [g.key for g in spec.groups]
    repeated = sorted({k for k in groups if groups.count(k) > 1})
    if repeated:
        raise NetworkError(
            f"{path}: group keys used twice (or '{NETWORK_GROUP}', which is "
            f"reserved): {', '.join(repeated)}"
        )
    return spec


NETWORK_GROUP = "network"


def apply_network(session: Session, spec: NetworkSpec) -> dict[str, int]:
    """Make the database match `spec`; returns how many rows were added, changed, retired."""
    counts = {"added": 0, "changed": 0, "retired": 0}
    network_group = GroupSpec(
        key=NETWORK_GROUP,
        names=Names(ar="الشبكة", en="Network", fr="Réseau"),
        country="EG",
        timezone="Africa/Cairo",
        currency="EGP",
        supportive=spec.network,
        partners=[spec.network],
    )
    seen_orgs: set[str] = set()
    seen_groups: set[str] = set()
    for group_spec in [network_group, *spec.groups]:
        group = _upsert_group(session, group_spec, counts)
        seen_groups.add(group.key)
        kind = "network" if group_spec is network_group else "supportive"
        orgs = [(group_spec.supportive, kind)]
        if group_spec is not network_group:
            orgs += [(p, "partner") for p in group_spec.partners]
        for org_spec, org_kind in orgs:
            _upsert_org(session, group, org_spec, org_kind, counts)
            seen_orgs.add(org_spec.key)
    for org in session.exec(select(Organization).where(Organization.active)).all():
        if org.key not in seen_orgs:
            org.active = False
            session.add(org)
            counts["retired"] += 1
    for group in session.exec(select(Group).where(Group.active)).all():
        if group.key not in seen_groups:
            group.active = False
            session.add(group)
            counts["retired"] += 1
    return counts


def _upsert_group(session: Session, spec: GroupSpec, counts: dict[str, int]) -> Group:
    week_start = spec.week_start or WEEK_START_BY_COUNTRY.get(spec.country, "monday")
    values: dict[str, Any] = {
        "names": spec.names.model_dump(),
        "country": spec.country,
        "timezone": spec.timezone,
        "language": spec.language,
        "currency": spec.currency,
        "digits": spec.digits or DIGITS_BY_COUNTRY.get(spec.country, "latn"),
        "week_start": WEEKDAYS.index(week_start),
        "targets": spec.targets,
        "schedule": spec.schedule,
        "active": True,
    }
    group = session.exec(select(Group).where(Group.key == spec.key)).first()
    if group is None:
        group = Group(key=spec.key, **values)
        counts["added"] += 1
    elif any(getattr(group, k) != v for k, v in values.items()):
        for name, value in values.items():
            setattr(group, name, value)
        counts["changed"] += 1
    session.add(group)
    session.flush()
    return group


def _upsert_org(
    session: Session, group: Group, spec: OrganizationSpec, kind: str, counts: dict[str, int]
) -> None:
    assert group.id is not None
    values: dict[str, Any] = {
        "group_id": group.id,
        "kind": kind,
        "names": spec.names.model_dump(),
        "placeholder": spec.placeholder,
        "active": True,
    }
    org = session.exec(select(Organization).where(Organization.key == spec.key)).first()
    if org is None:
        session.add(Organization(key=spec.key, **values))
        counts["added"] += 1
    elif any(getattr(org, k) != v for k, v in values.items()):
        for name, value in values.items():
            setattr(org, name, value)
        session.add(org)
        counts["changed"] += 1
    session.flush()
