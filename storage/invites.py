"""Invitation codes: made for a role at the organization that role belongs to, single use,
always expiring, revocable, and guessed at no faster than the attempt limits allow.

A code is 15 characters of an alphabet without the look-alikes 0/O, 1/I/L and U (30
characters: about 73.6 bits), shown in groups of five ("ABCDE-FGHJK-MNPQR"); it is typed in
any case, with or without the dashes and spaces. Each failed attempt is stored (not the code
typed), so the limits hold across processes: at most `MAX_FAILURES_PER_CHAT` failures per
chat and `MAX_FAILURES_OVERALL` overall within `ATTEMPT_WINDOW`; beyond them every attempt is
refused, a right code too, until the oldest failure of the window has aged out of it.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from storage.models import ROLES, Invite, InviteFailure, Organization, Person
from storage.people import add_address

log = logging.getLogger(__name__)

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: easy to read aloud
CODE_LENGTH = 15  # 15 x log2(30) = 73.6 bits
CODE_GROUP = 5
DEFAULT_VALIDITY = timedelta(days=7)
MAX_VALIDITY = timedelta(days=90)
ATTEMPT_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_CHAT = 5
MAX_FAILURES_OVERALL = 200
#: The kind of organization each role belongs to.
ROLE_KIND = {"worker": "partner", "coordinator": "supportive", "admin": "network"}
KIND_WORDS = {
    "partner": "a partner association",
    "supportive": "the supportive organization of its group",
    "network": "the network",
}


class InviteRefused(ValueError):
    """An invitation that cannot be made; the message says why (in English, for the CLI)."""


class RoleMismatch(InviteRefused):
    """`role` does not belong at an organization of that kind; `needed` is the kind it needs."""

    def __init__(self, organization: Organization, role: str) -> None:
        self.role, self.needed = role, ROLE_KIND[role]
        super().__init__(
            f"a {role} belongs to {KIND_WORDS[self.needed]}, and {organization.key!r} is "
            f"{KIND_WORDS[organization.kind]}"
        )


def check_role(organization: Organization, role: str) -> None:
    """Raise RoleMismatch unless `role` belongs at `organization`'s kind."""
    if role not in ROLES:
        raise InviteRefused(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    if ROLE_KIND[role] != organization.kind:
        raise RoleMismatch(organization, role)


def role_for(organization: Organization) -> str:
    """The role people invited to `organization` get."""
    return next(role for role, kind in ROLE_KIND.items() if kind == organization.kind)


def check_validity(valid_for: timedelta) -> None:
    if not timedelta(0) < valid_for <= MAX_VALIDITY:
        raise InviteRefused(
            f"an invitation is valid for more than 0 and at most {MAX_VALIDITY.days} days"
        )


def new_invite(
    session: Session,
    organization: Organization,
    role: str,
    now: datetime,
    valid_for: timedelta = DEFAULT_VALIDITY,
    name: str | None = None,
    language: str | None = None,
) -> Invite:
    """A fresh single-use code for `role` in `organization` (InviteRefused if the role does
    not belong there or the validity is not within 90 days). `name` and `language`, when
    given, are the person's: they are registered with them."""
    check_role(organization, role)
    check_validity(valid_for)
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if session.get(Invite, code) is None:
            break
    assert organization.id is not None
    invite = Invite(
        code=code,
        organization_id=organization.id,
        role=role,
        created_at=now,
        expires_at=now + valid_for,
        name=(name or "").strip()[:120] or None,
        language=language or None,
    )
    session.add(invite)
    session.flush()
    return invite


def new_address_invite(
    session: Session, person: Person, now: datetime, valid_for: timedelta = DEFAULT_VALIDITY
) -> Invite:
    """A fresh single-use code that, redeemed from another channel, adds that address to
    `person`: their reports, role, organization and language stay theirs."""
    check_validity(valid_for)
    assert person.id is not None
    invite = new_invite(
        session,
        _organization_of(session, person),
        person.role,
        now,
        valid_for,
        name=person.display_name,
        language=person.language,
    )
    invite.for_person_id = person.id
    session.add(invite)
    session.flush()
    return invite


def _organization_of(session: Session, person: Person) -> Organization:
    organization = session.get(Organization, person.organization_id)
    assert organization is not None
    return organization


def shown(code: str) -> str:
    """A code as people read it: "ABCDE-FGHJK-MNPQR" (older 8-character codes as they are)."""
    if len(code) != CODE_LENGTH:
        return code
    return "-".join(code[start : start + CODE_GROUP] for start in range(0, len(code), CODE_GROUP))


def clean_code(typed: str) -> str:
    """A code as typed ("abcde-fghjk-mnpqr", " ABCDE FGHJK MNPQR ") in its stored form."""
    return "".join(ch for ch in typed.upper() if ch.isascii() and ch.isalnum())[:64]


def open_invites(session: Session, now: datetime) -> list[tuple[Invite, Organization]]:
    """Codes that could still be redeemed, oldest first, with their organization."""
    rows = session.exec(
        select(Invite, Organization)
        .join(Organization, col(Organization.id) == col(Invite.organization_id))
        .where(
            col(Invite.used_at).is_(None),
            col(Invite.revoked_at).is_(None),
            col(Invite.expires_at) > now,
        )
        .order_by(col(Invite.created_at), col(Invite.code))
    ).all()
    return [(invite, organization) for invite, organization in rows]


def revoke_invite(session: Session, typed: str, now: datetime) -> Invite | None:
    """Withdraw an open code; None when there is no such open code."""
    invite = session.exec(
        select(Invite).where(Invite.code == clean_code(typed)).with_for_update()
    ).first()
    if invite is None or invite.used_at is not None or invite.revoked_at is not None:
        return None
    if invite.expires_at is not None and invite.expires_at <= now:
        return None
    invite.revoked_at = now
    session.add(invite)
    return invite


@dataclass(frozen=True)
class InviteProblem:
    #: "unknown" | "used" | "expired" | "revoked" | "too_many" (this chat) | "busy" (overall)
    reason: str
    wait: timedelta = timedelta(0)  # with "too_many" and "busy": until attempts are taken


@dataclass(frozen=True)
class Redeemed:
    person: Person
    #: True when the code was an existing person's (new_address_invite): the chat's address
    #: was added to them, and nobody was created.
    added_address: bool = False


def redeem_invite(
    session: Session, code: str, now: datetime, channel: str, address: str, display_name: str
) -> Redeemed | InviteProblem:
    """Register whoever holds `code`, once; an unknown, used, expired or revoked code registers
    nobody and counts as a failed attempt of the chat. An existing person's code adds the
    chat's address to that person, who is reached there from now on."""
    chat = f"{channel}:{address}"
    throttled = _throttled(session, chat, now)
    if throttled is not None:
        return throttled
    invite = session.exec(
        select(Invite).where(Invite.code == clean_code(code)).with_for_update()
    ).first()
    problem = _problem(invite, now)
    if problem is not None:
        _record_failure(session, chat, channel, problem.reason, now)
        return problem
    assert invite is not None
    if invite.for_person_id is not None:
        return _add_address(session, invite, now, channel, address)
    person = Person(
        channel=channel,
        address=address,
        display_name=(invite.name or display_name)[:120],
        language=invite.language,
        role=invite.role,
        organization_id=invite.organization_id,
        created_at=now,
    )
    session.add(person)
    session.flush()
    invite.used_at = now
    invite.used_by = person.id
    session.add(invite)
    return Redeemed(person)


def _add_address(
    session: Session, invite: Invite, now: datetime, channel: str, address: str
) -> Redeemed | InviteProblem:
    person = session.get(Person, invite.for_person_id)
    assert person is not None and person.id is not None
    if not add_address(session, person.id, channel, address):
        return InviteProblem("used")  # someone registered this chat in the meantime
    person.channel, person.address = channel, address  # where they write from now
    session.add(person)
    invite.used_at = now
    invite.used_by = person.id
    session.add(invite)
    session.flush()
    log.info("person %s can now be reached on %s too", person.id, channel)
    return Redeemed(person, added_address=True)


def _problem(invite: Invite | None, now: datetime) -> InviteProblem | None:
    if invite is None:
        return InviteProblem("unknown")
    if invite.revoked_at is not None:
        return InviteProblem("revoked")
    if invite.used_at is not None:
        return InviteProblem("used")
    if invite.expires_at is not None and invite.expires_at <= now:
        return InviteProblem("expired")
    return None


def _throttled(session: Session, chat: str, now: datetime) -> InviteProblem | None:
    since = now - ATTEMPT_WINDOW
    recent = col(InviteFailure.failed_at) > since
    mine = session.exec(
        select(func.count(), func.min(InviteFailure.failed_at)).where(
            recent, InviteFailure.chat_key == chat
        )
    ).one()
    if mine[0] >= MAX_FAILURES_PER_CHAT:
        return InviteProblem("too_many", _wait(mine[1], now))
    everyone = session.exec(
        select(func.count(), func.min(InviteFailure.failed_at)).where(recent)
    ).one()
    if everyone[0] >= MAX_FAILURES_OVERALL:
        return InviteProblem("busy", _wait(everyone[1], now))
    return None


def _wait(oldest: datetime | str | None, now: datetime) -> timedelta:
    """Until the oldest failure of the window leaves it (SQLite returns the minimum as text)."""
    if oldest is None:
        return ATTEMPT_WINDOW
    if isinstance(oldest, str):
        oldest = datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return max(oldest + ATTEMPT_WINDOW - now, timedelta(minutes=1))


def _record_failure(session: Session, chat: str, channel: str, reason: str, now: datetime) -> None:
    session.execute(
        delete(InviteFailure).where(col(InviteFailure.failed_at) <= now - ATTEMPT_WINDOW)
    )
    failure = InviteFailure(chat_key=chat, failed_at=now, reason=reason)
    session.add(failure)
    session.flush()
    log.warning(
        "invitation refused (%s) on %s, failed attempt #%s; the code is not logged",
        reason,
        channel,
        failure.id,
    )
