"""Who may do what: one table of roles and actions that every command checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forms.schema import FormSpec
from storage.people import OrganizationRow, PersonRow

if TYPE_CHECKING:
    from handlers.context import Context

UNREGISTERED = "unregistered"

#: action -> the roles allowed to take it. Forms add their own rule (see `may_fill`).
PERMISSIONS: dict[str, frozenset[str]] = {
    "start": frozenset({UNREGISTERED, "worker", "coordinator", "admin"}),
    "help": frozenset({UNREGISTERED, "worker", "coordinator", "admin"}),
    "language": frozenset({"worker", "coordinator", "admin"}),
    "menu": frozenset({"worker", "coordinator", "admin"}),
    "report": frozenset({"worker", "coordinator", "admin"}),
    "myreports": frozenset({"worker", "coordinator", "admin"}),
    "cancel": frozenset({"worker", "coordinator", "admin"}),
    "back": frozenset({"worker", "coordinator", "admin"}),
    "skip": frozenset({"worker", "coordinator", "admin"}),
    "status": frozenset({"worker", "coordinator", "admin"}),
    "digest": frozenset({"coordinator", "admin"}),
    "remind": frozenset({"coordinator"}),
    "broadcast": frozenset({"coordinator", "admin"}),
    "broadcasts": frozenset({"coordinator", "admin"}),
    "correct": frozenset({"worker", "coordinator", "admin"}),
    "review": frozenset({"coordinator", "admin"}),
    "history": frozenset({"worker", "coordinator", "admin"}),
    "invite": frozenset({"coordinator", "admin"}),
    "people": frozenset({"coordinator", "admin"}),
    "export": frozenset({"coordinator", "admin"}),
}


def role_of(person: PersonRow | None) -> str:
    if person is None or not person.active:
        return UNREGISTERED
    return person.role


def may(person: PersonRow | None, action: str) -> bool:
    return role_of(person) in PERMISSIONS.get(action, frozenset())


def may_fill(
    person: PersonRow | None, organization: OrganizationRow | None, form: FormSpec
) -> bool:
    """A form is filled by the roles it names, for the kinds of organization it applies to."""
    if person is None or organization is None or not person.active:
        return False
    return person.role in form.roles and organization.kind in form.org_kinds and organization.active


def role_name(ctx: Context, role: str) -> str:
    """The role as the person reads it."""
    names = {
        "worker": ctx._("field worker"),
        "coordinator": ctx._("coordinator"),
        "admin": ctx._("network admin"),
    }
    return names.get(role, role)
