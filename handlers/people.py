"""Invitations and the people of a group: /invite and /people (deactivate, reactivate).

Admins act on any group and organization; a coordinator invites field workers of the
partner associations of their own group, and manages the workers of that group only. Every
pressed value is checked again here: a button never grants more than the table allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select

from handlers.context import Context
from handlers.permissions import role_name
from locales import LANGUAGE_NAMES
from storage.models import ROLES, Group, Organization, Person, Report
from storage.people import new_invite, recall

INVITE_VALID_DAYS = 7
PAGE_SIZE = 10


# /invite ------------------------------------------------------------------------------------


def invite(ctx: Context) -> None:
    """Admins choose a group first; a coordinator goes straight to their associations."""
    assert ctx.person is not None and ctx.group is not None
    ctx.state["flow"] = "invite"
    ctx.state["invite"] = {}
    if ctx.person.role == "admin":
        _ask_group(ctx, ctx._("Invite someone to which group?"), with_network=True)
    else:
        _ask_organization(ctx, ctx.group.id)


def invite_chosen(ctx: Context) -> None:
    assert ctx.person is not None
    choice = ctx.choice or ""
    kind, _, value = choice.partition(":")
    if kind == "cancel":
        _done(ctx, ctx._("No invitation was made."))
    elif kind == "g" and ctx.person.role == "admin" and (group := _group(ctx, value)):
        _ask_organization(ctx, group.id)
    elif kind == "o" and (organization := _invitable(ctx, value)) is not None:
        if ctx.person.role == "admin":
            ctx.state["invite"] = {"organization": organization.id}
            ctx.say(
                ctx._(
                    "Invite {organization} as which role?",
                    organization=_name(ctx, organization.names, organization.key),
                ),
                [(role_name(ctx, role), f"r:{role}") for role in ROLES]
                + [(ctx._("Cancel"), "cancel")],
            )
        else:
            _issue(ctx, organization, "worker")
    elif (
        kind == "r"
        and ctx.person.role == "admin"
        and value in ROLES
        and (
            organization := _invitable(
                ctx, str(ctx.state.get("invite", {}).get("organization", ""))
            )
        )
        is not None
    ):
        _issue(ctx, organization, value)
    else:
        _done(ctx, ctx._("Please choose one of the options. Send /invite to start again."))


def _ask_organization(ctx: Context, group_id: int | None) -> None:
    assert ctx.person is not None
    query = select(Organization).where(
        Organization.group_id == group_id, col(Organization.active).is_(True)
    )
    if ctx.person.role != "admin":
        query = query.where(Organization.kind == "partner")
    organizations = ctx.session.exec(query.order_by(col(Organization.id))).all()
    if not organizations:
        _done(ctx, ctx._("There is no association you can invite people to."))
        return
    ctx.say(
        ctx._("Invite someone to which organization?"),
        [(_name(ctx, o.names, o.key), f"o:{o.id}") for o in organizations]
        + [(ctx._("Cancel"), "cancel")],
    )


def _invitable(ctx: Context, value: str) -> Organization | None:
    """The organization `value` names, if this person may invite people to it."""
    assert ctx.person is not None and ctx.group is not None
    organization = ctx.session.get(Organization, int(value)) if value.isdigit() else None
    if organization is None or not organization.active:
        return None
    if ctx.person.role == "admin":
        return organization
    if organization.group_id == ctx.group.id and organization.kind == "partner":
        return organization
    return None


def _issue(ctx: Context, organization: Organization, role: str) -> None:
    assert ctx.person is not None and ctx.person.role in ("admin", "coordinator")
    assert ctx.person.role == "admin" or role == "worker"
    made = new_invite(ctx.session, organization, role, ctx.now, timedelta(days=INVITE_VALID_DAYS))
    assert made.expires_at is not None
    username = (recall(ctx.session, "telegram_username") or "").lstrip("@")
    link = f"https://t.me/{username}?start={made.code}" if username else None
    organization_name = _name(ctx, organization.names, organization.key)
    group = ctx.session.get(Group, organization.group_id)
    zone = group.timezone if group else "UTC"
    lines = [
        ctx._(
            "Invitation for a {role} of {organization}.",
            role=role_name(ctx, role),
            organization=organization_name,
        ),
        ctx._("Code: {code}", code=made.code),
    ]
    if link:
        lines += [ctx._("Link:"), link]
    else:
        lines.append(
            ctx._(
                "The link is not known yet: the person sends /start {code} to the bot.",
                code=made.code,
            )
        )
    lines.append(
        ctx.tr.ngettext(
            "Valid for {n} day, until {until}. It works once.",
            "Valid for {n} days, until {until}. It works once.",
            INVITE_VALID_DAYS,
            until=ctx.tr.datetime(made.expires_at, zone, "d MMM yyyy HH:mm"),
        )
    )
    if link:
        forward = (
            ctx._(
                "You are invited to report for {organization} with Sanad. Open this "
                "link and press Start:",
                organization=organization_name,
            )
            + "\n"
            + link
        )
    else:
        forward = ctx._(
            "You are invited to report for {organization} with Sanad. Send this "
            "to the bot: /start {code}",
            organization=organization_name,
            code=made.code,
        )
    lines += ["", ctx._("To forward to the person you invite:"), forward]
    _done(ctx, None)
    ctx.say("\n".join(lines))


# /people ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    person: Person
    organization: Organization
    last_report: datetime | None


def people(ctx: Context) -> None:
    """A coordinator sees their group; an admin chooses the group first."""
    assert ctx.person is not None and ctx.group is not None
    ctx.state["flow"] = "people"
    if ctx.person.role == "admin":
        ctx.state["people"] = {}
        _ask_group(ctx, ctx._("The people of which group?"), with_network=True)
        return
    ctx.state["people"] = {"group": ctx.group.id, "page": 0}
    _show_page(ctx)


def people_chosen(ctx: Context) -> None:
    assert ctx.person is not None
    choice = ctx.choice or ""
    kind, _, value = choice.partition(":")
    chosen = ctx.state.get("people") or {}
    if kind == "g" and ctx.person.role == "admin" and (group := _group(ctx, value)):
        ctx.state["people"] = {"group": group.id, "page": 0}
        _show_page(ctx)
    elif kind == "page" and "group" in chosen and value.isdigit():
        chosen["page"] = int(value)
        _show_page(ctx)
    elif kind == "p" and (member := _manageable(ctx, value)) is not None:
        _show_person(ctx, member)
    elif kind in ("deactivate", "reactivate") and (member := _manageable(ctx, value)):
        name = member.display_name or f"#{member.id}"
        question = (
            ctx._(
                "Deactivate {name}? They will no longer be able to report; their reports stay.",
                name=name,
            )
            if kind == "deactivate"
            else ctx._("Reactivate {name}? They will be able to report again.", name=name)
        )
        ctx.say(
            question,
            [
                (
                    ctx._("Deactivate") if kind == "deactivate" else ctx._("Reactivate"),
                    f"{kind}!:{member.id}",
                ),
                (ctx._("Cancel"), "list:"),
            ],
        )
    elif kind in ("deactivate!", "reactivate!") and (member := _manageable(ctx, value)):
        member.active = kind == "reactivate!"
        ctx.session.add(member)
        name = member.display_name or f"#{member.id}"
        ctx.say(
            ctx._("{name} is deactivated and can no longer report. Their reports stay.", name=name)
            if not member.active
            else ctx._("{name} is active again and can report.", name=name)
        )
        _show_page(ctx)
    elif kind == "list" and "group" in chosen:
        _show_page(ctx)
    elif kind == "close":
        _done(ctx, None)
        ctx.go_menu()
    else:
        _done(ctx, ctx._("Please choose one of the options. Send /people to start again."))


def members(ctx: Context, group: Group) -> list[Member]:
    """Everyone registered in `group`, by organization then name, with their last report."""
    last = (
        select(Report.person_id, func.max(Report.submitted_at).label("last"))
        .group_by(col(Report.person_id))
        .subquery()
    )
    rows = ctx.session.exec(
        select(Person, Organization, last.c.last)
        .join(Organization, col(Organization.id) == col(Person.organization_id))
        .join(last, last.c.person_id == col(Person.id), isouter=True)
        .where(Organization.group_id == group.id)
        .order_by(col(Organization.id), col(Person.display_name), col(Person.id))
    ).all()
    return [Member(person, organization, _aware(when)) for person, organization, when in rows]


def _show_page(ctx: Context) -> None:
    chosen = ctx.state["people"]
    group = ctx.session.get(Group, chosen["group"])
    assert group is not None
    everyone = members(ctx, group)
    group_name = _name(ctx, group.names, group.key)
    if not everyone:
        _done(ctx, ctx._("Nobody is registered in {group} yet.", group=group_name))
        return
    pages = (len(everyone) + PAGE_SIZE - 1) // PAGE_SIZE
    page = min(int(chosen.get("page", 0)), pages - 1)
    chosen["page"] = page
    shown = everyone[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    lines = [
        ctx.tr.ngettext(
            "{group}: {n} person", "{group}: {n} people", len(everyone), group=group_name
        )
    ]
    if pages > 1:
        lines[0] += " " + ctx._("(page {page} of {pages})", page=page + 1, pages=pages)
    options: list[tuple[str, str]] = []
    for number, member in enumerate(shown, start=page * PAGE_SIZE + 1):
        lines.append(f"{number}. " + _describe(ctx, member, group.timezone))
        if _may_manage(ctx, member.person):
            options.append(
                (
                    f"{number}. {member.person.display_name or member.person.id}",
                    f"p:{member.person.id}",
                )
            )
    if options:
        lines.append(ctx._("Choose a person to deactivate or reactivate them."))
    if page + 1 < pages:
        options.append((ctx._("Next"), f"page:{page + 1}"))
    if page > 0:
        options.append((ctx._("Previous"), f"page:{page - 1}"))
    options.append((ctx._("Close"), "close:"))
    ctx.say("\n".join(lines), options)


def _describe(ctx: Context, member: Member, zone: str) -> str:
    person = member.person
    parts = [
        person.display_name or f"#{person.id}",
        role_name(ctx, person.role),
        _name(ctx, member.organization.names, member.organization.key),
        LANGUAGE_NAMES.get(person.language or "", ctx._("language not chosen")),
    ]
    if member.last_report is None:
        parts.append(ctx._("no report yet"))
    else:
        parts.append(
            ctx._(
                "last report {date}", date=ctx.tr.datetime(member.last_report, zone, "d MMM yyyy")
            )
        )
    if not person.reachable:
        parts.append(ctx._("unreachable"))
    if not person.active:
        parts.append(ctx._("inactive"))
    return " · ".join(parts)


def _show_person(ctx: Context, person: Person) -> None:
    group_id = ctx.state["people"].get("group")
    group = ctx.session.get(Group, group_id) if group_id else None
    member = (
        next((m for m in members(ctx, group) if m.person.id == person.id), None) if group else None
    )
    if member is None:
        _done(ctx, ctx._("Please choose one of the options. Send /people to start again."))
        return
    action = (
        ("deactivate", ctx._("Deactivate"))
        if person.active
        else ("reactivate", ctx._("Reactivate"))
    )
    ctx.say(
        _describe(ctx, member, group.timezone if group else "UTC"),
        [(action[1], f"{action[0]}:{person.id}"), (ctx._("Back to the list"), "list:")],
    )


def _manageable(ctx: Context, value: str) -> Person | None:
    """The person `value` names, in the group being shown, if this person may manage them."""
    person = ctx.session.get(Person, int(value)) if value.isdigit() else None
    if person is None or not _may_manage(ctx, person):
        return None
    organization = ctx.session.get(Organization, person.organization_id)
    group_id = (ctx.state.get("people") or {}).get("group")
    if organization is None or organization.group_id != group_id:
        return None
    return person


def _may_manage(ctx: Context, person: Person) -> bool:
    """Admins manage workers and coordinators; coordinators the workers of their group."""
    assert ctx.person is not None and ctx.group is not None
    if person.id == ctx.person.id:
        return False
    if ctx.person.role == "admin":
        return person.role in ("worker", "coordinator")
    if ctx.person.role != "coordinator" or person.role != "worker":
        return False
    organization = ctx.session.get(Organization, person.organization_id)
    return organization is not None and organization.group_id == ctx.group.id


# shared -------------------------------------------------------------------------------------


def _ask_group(ctx: Context, question: str, *, with_network: bool) -> None:
    groups = ctx.session.exec(
        select(Group).where(col(Group.active).is_(True)).order_by(col(Group.id))
    ).all()
    ctx.say(
        question,
        [
            (_name(ctx, g.names, g.key), f"g:{g.id}")
            for g in groups
            if with_network or g.key != "network"
        ]
        + [(ctx._("Cancel"), "cancel")],
    )


def _group(ctx: Context, value: str) -> Group | None:
    group = ctx.session.get(Group, int(value)) if value.isdigit() else None
    return group if group is not None and group.active else None


def _done(ctx: Context, text: str | None) -> None:
    ctx.state["flow"] = None
    ctx.state.pop("invite", None)
    ctx.state.pop("people", None)
    if text:
        ctx.go_menu(text)


def _name(ctx: Context, names: dict[str, str], fallback: str) -> str:
    return names.get(ctx.language) or names.get("ar") or fallback


def _aware(when: datetime | None) -> datetime | None:
    """SQLite returns the aggregate as a naive UTC time (or text); make it aware."""
    if when is None:
        return None
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
