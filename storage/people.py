"""People, organizations, groups and invitations."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam
from sqlmodel import Session, select

from storage.models import Group, Invite, Organization, Person, Setting

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: easy to read aloud
CODE_LENGTH = 8


def find_person(session: Session, channel: str, address: str) -> Person | None:
    return session.exec(
        select(Person).where(Person.channel == channel, Person.address == address)
    ).first()


# Built once: read for every incoming message, and keying a fresh statement costs more than
# running it.
_MEMBER = (select(Person, Organization, Group)
           .join(Organization, Organization.id == Person.organization_id)
           .join(Group, Group.id == Organization.group_id)
           .where(Person.channel == bindparam("channel"), Person.address == bindparam("address")))


def find_member(session: Session, channel: str,
                address: str) -> tuple[Person, Organization, Group] | None:
    """A person with their organization and group, in one query."""
    row = session.exec(_MEMBER, params={"channel": channel, "address": address}).first()
    return (row[0], row[1], row[2]) if row else None


def organization_of(session: Session, person: Person) -> tuple[Organization, Group]:
    organization = session.get(Organization, person.organization_id)
    assert organization is not None
    group = session.get(Group, organization.group_id)
    assert group is not None
    return organization, group


def new_invite(session: Session, organization: Organization, role: str, now: datetime,
               valid_for: timedelta | None) -> Invite:
    """A fresh single-use code for `role` in `organization`."""
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if session.get(Invite, code) is None:
            break
    assert organization.id is not None
    invite = Invite(code=code, organization_id=organization.id, role=role, created_at=now,
                    expires_at=now + valid_for if valid_for else None)
    session.add(invite)
    session.flush()
    return invite


def clean_code(typed: str) -> str:
    """A code as typed ("abcd-efgh", " ABCD EFGH ") in its stored form."""
    return "".join(ch for ch in typed.upper() if ch.isalnum())


@dataclass(frozen=True)
class InviteProblem:
    reason: str  # "unknown" | "used" | "expired"


def redeem_invite(session: Session, code: str, now: datetime, channel: str, address: str,
                  display_name: str) -> Person | InviteProblem:
    """Register whoever holds `code`, once; an unknown, used or expired code registers nobody."""
    invite = session.exec(
        select(Invite).where(Invite.code == clean_code(code)).with_for_update()
    ).first()
    if invite is None:
        return InviteProblem("unknown")
    if invite.used_at is not None:
        return InviteProblem("used")
    if invite.expires_at is not None and invite.expires_at <= now:
        return InviteProblem("expired")
    person = Person(channel=channel, address=address, display_name=display_name[:120],
                    role=invite.role, organization_id=invite.organization_id, created_at=now)
    session.add(person)
    session.flush()
    invite.used_at = now
    invite.used_by = person.id
    session.add(invite)
    return person


def remember(session: Session, key: str, value: str) -> None:
    setting = session.get(Setting, key) or Setting(key=key, value=value)
    setting.value = value
    session.add(setting)


def recall(session: Session, key: str) -> str | None:
    setting = session.get(Setting, key)
    return setting.value if setting else None
