"""Who hears about what: the workers of an association, the coordinators of a group, admins."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from storage.models import Group, Organization, Person


def workers_of(session: Session, organization_ids: Sequence[int]) -> list[Person]:
    if not organization_ids:
        return []
    return list(
        session.exec(
            select(Person)
            .where(
                col(Person.organization_id).in_(organization_ids),
                Person.role == "worker",
                Person.active,
            )
            .order_by(col(Person.id))
        ).all()
    )


def coordinators_of(session: Session, group: Group) -> list[Person]:
    return list(
        session.exec(
            select(Person)
            .join(Organization)
            .where(Organization.group_id == group.id, Person.role == "coordinator", Person.active)
            .order_by(col(Person.id))
        ).all()
    )


def admins(session: Session) -> list[Person]:
    return list(
        session.exec(
            select(Person).where(Person.role == "admin", Person.active).order_by(col(Person.id))
        ).all()
    )


def unreachable_in(session: Session, group: Group) -> list[tuple[Person, Organization]]:
    """People of the group who blocked the bot (Telegram answered 403)."""
    rows = session.exec(
        select(Person, Organization)
        .join(Organization)
        .where(Organization.group_id == group.id, Person.active, col(Person.reachable).is_(False))
    ).all()
    return [(p, o) for p, o in rows]
