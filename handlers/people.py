"""Invitations and the people of a group: /invite and /people (deactivate, reactivate).

Admins act on any group and organization; a coordinator invites field workers of the
partner associations of their own group, and manages the workers of that group only. The
role of an invitation is the one its organization takes (storage.invites.ROLE_KIND): field
workers at partner associations, coordinators at the supportive organization, admins at the
network. Several names in one message make one invitation each; open codes can be listed and
withdrawn. Every pressed value is checked again here: a button never grants more than the
table allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import col, select

from handlers.context import Context
from handlers.permissions import role_name
from handlers.state import Flow, Invitation, PeopleBrowsing
from locales import LANGUAGE_NAMES
from storage.invites import (
    DEFAULT_VALIDITY,
    new_invite,
    open_invites,
    revoke_invite,
    role_for,
    shown,
)
from storage.models import Group, Invite, Organization, Person, Report

PAGE_SIZE = 10
MAX_NAMES = 20  # names in one message: one invitation each
MAX_NAME_LENGTH = 120
OPEN_SHOWN = 20  # open invitations listed in the chat (the CLI lists all)


# /invite ------------------------------------------------------------------------------------


def invite(ctx: Context) -> None:
    """Admins choose a group first; a coordinator goes straight to their associations. Both
    may see the open codes they can withdraw."""
    assert ctx.person is not None and ctx.group is not None
    ctx.state.flow = Flow.INVITE
    ctx.state.invite = Invitation()
    if ctx.person.role == "admin":
        _ask_group(
            ctx,
            ctx._("Invite someone to which group?"),
            with_network=True,
            extra=[(ctx._("Open invitations"), "open:")],
        )
    else:
        _ask_organization(ctx, ctx.group.id)


def invite_chosen(ctx: Context) -> None:
    """A pressed option, or the names typed after choosing the organization."""
    assert ctx.person is not None
    choice = ctx.choice or ""
    kind, _, value = choice.partition(":")
    chosen = ctx.state.invite or Invitation()
    if kind == "cancel":
        _done(ctx, ctx._("No invitation was made."))
    elif kind == "g" and ctx.person.role == "admin" and (group := _group(ctx, value)):
        _ask_organization(ctx, group.id)
    elif kind == "o" and (organization := _invitable(ctx, value)) is not None:
        ctx.state.invite = Invitation(organization=organization.id)
        _ask_names(ctx, organization)
    elif kind == "open":
        _show_open(ctx)
    elif kind == "revoke" and (withdrawn := _withdraw(ctx, value)) is not None:
        _show_open(
            ctx,
            ctx._(
                "The code {code} was withdrawn: nobody can register with it.",
                code=shown(withdrawn.code),
            ),
        )
    elif (
        chosen.organization is not None
        and (organization := _invitable(ctx, str(chosen.organization))) is not None
        and (kind == "one" or (not choice and ctx.incoming.text))
    ):
        _invite_named(ctx, organization, None if kind == "one" else ctx.incoming.text or "")
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
    extra = [] if ctx.person.role == "admin" else [(ctx._("Open invitations"), "open:")]
    ctx.say(
        ctx._("Invite someone to which organization?"),
        [(_name(ctx, o.names, o.key), f"o:{o.id}") for o in organizations]
        + extra
        + [(ctx._("Cancel"), "cancel")],
    )


def _ask_names(ctx: Context, organization: Organization, intro: str | None = None) -> None:
    question = ctx._(
        "Who do you invite as {role} of {organization}? Send their names, one per line "
        "(at most {limit}): each gets their own code. Or choose One invitation.",
        role=role_name(ctx, role_for(organization)),
        organization=_name(ctx, organization.names, organization.key),
        limit=MAX_NAMES,
    )
    ctx.say(
        f"{intro}\n{question}" if intro else question,
        [(ctx._("One invitation"), "one:"), (ctx._("Cancel"), "cancel")],
        expect="text",
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


def _invite_named(ctx: Context, organization: Organization, typed: str | None) -> None:
    """One invitation per typed name (or one without a name): all of them, or none."""
    names: list[str | None] = [None]
    if typed is not None:
        names = [line.strip() for line in typed.splitlines() if line.strip()]
        if not names or len(names) > MAX_NAMES:
            _ask_names(
                ctx,
                organization,
                ctx._("Please send between 1 and {limit} names, one per line.", limit=MAX_NAMES),
            )
            return
        too_long = [name for name in names if name and len(name) > MAX_NAME_LENGTH]
        if too_long:
            _ask_names(
                ctx,
                organization,
                ctx._(
                    "A name may have at most {limit} characters; this one has {length}: {name}",
                    limit=MAX_NAME_LENGTH,
                    length=len(too_long[0]),
                    name=too_long[0][:40] + "…",
                ),
            )
            return
    _done(ctx, None)
    for name in names:
        _issue(ctx, organization, name)
    if len(names) > 1:
        ctx.say(ctx.tr.ngettext("{n} invitation made.", "{n} invitations made.", len(names)))


def _issue(ctx: Context, organization: Organization, name: str | None) -> None:
    assert ctx.person is not None and ctx.person.role in ("admin", "coordinator")
    role = role_for(organization)
    assert ctx.person.role == "admin" or role == "worker"
    made = new_invite(ctx.session, organization, role, ctx.now, name=name)
    assert made.expires_at is not None
    code = shown(made.code)
    link = ctx.services.invite_link(ctx.session, ctx.incoming.channel, made.code)
    organization_name = _name(ctx, organization.names, organization.key)
    group = ctx.session.get(Group, organization.group_id)
    zone = group.timezone if group else "UTC"
    lines = [
        ctx._(
            "Invitation for {name}, {role} of {organization}.",
            name=name,
            role=role_name(ctx, role),
            organization=organization_name,
        )
        if name
        else ctx._(
            "Invitation for a {role} of {organization}.",
            role=role_name(ctx, role),
            organization=organization_name,
        ),
        ctx._("Code: {code}", code=code),
    ]
    if link:
        lines += [ctx._("Link:"), link]
    else:
        lines.append(
            ctx._(
                "The link is not known yet: the person sends /start {code} to the bot.",
                code=code,
            )
        )
    valid_days = DEFAULT_VALIDITY.days
    lines.append(
        ctx.tr.ngettext(
            "Valid for {n} day, until {until}. It works once.",
            "Valid for {n} days, until {until}. It works once.",
            valid_days,
            until=ctx.tr.datetime(made.expires_at, zone, "d MMM yyyy HH:mm"),
        )
    )
    if link:
        forward = (
            ctx._(
                "You are invited to report for {organization} with Sanad. Open this "
                "link, then press Start or Send:",
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
            code=code,
        )
    lines += ["", ctx._("To forward to the person you invite:"), forward]
    ctx.say("\n".join(lines))


def _reachable_invites(ctx: Context) -> list[tuple[Invite, Organization]]:
    """The open codes this person may withdraw: any for an admin, a coordinator's group's."""
    assert ctx.person is not None and ctx.group is not None
    everything = open_invites(ctx.session, ctx.now)
    if ctx.person.role == "admin":
        return everything
    return [(i, o) for i, o in everything if o.group_id == ctx.group.id and o.kind == "partner"]


def _show_open(ctx: Context, intro: str | None = None) -> None:
    ctx.state.flow = Flow.INVITE
    ctx.state.invite = Invitation()
    reachable = _reachable_invites(ctx)
    lines = [intro] if intro else []
    if not reachable:
        lines.append(ctx._("There is no open invitation."))
        _done(ctx, "\n".join(lines))
        return
    lines.append(ctx.tr.ngettext("{n} open invitation:", "{n} open invitations:", len(reachable)))
    shown_here = reachable[:OPEN_SHOWN]
    options: list[tuple[str, str]] = []
    for number, (made, organization) in enumerate(shown_here, start=1):
        group = ctx.session.get(Group, organization.group_id)
        assert made.expires_at is not None  # open codes are the ones that expire later
        until = ctx.tr.datetime(made.expires_at, group.timezone if group else "UTC", "d MMM yyyy")
        lines.append(
            f"{number}. "
            + " · ".join(
                part
                for part in (
                    shown(made.code),
                    made.name or "",
                    role_name(ctx, made.role),
                    _name(ctx, organization.names, organization.key),
                    ctx._("until {date}", date=until),
                )
                if part
            )
        )
        options.append((ctx._("Withdraw {number}", number=number), f"revoke:{made.code}"))
    if len(reachable) > OPEN_SHOWN:
        lines.append(
            ctx._(
                "The oldest {n} are shown; `python -m bot invite --list` lists all.", n=OPEN_SHOWN
            )
        )
    ctx.say("\n".join(lines), options + [(ctx._("Close"), "cancel")])


def _withdraw(ctx: Context, code: str) -> Invite | None:
    """Withdraw `code` if it is open and this person may; None otherwise (nothing changes)."""
    if code not in {made.code for made, _ in _reachable_invites(ctx)}:
        return None
    return revoke_invite(ctx.session, code, ctx.now)


# /people ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    person: Person
    organization: Organization
    last_report: datetime | None


def people(ctx: Context) -> None:
    """A coordinator sees their group; an admin chooses the group first."""
    assert ctx.person is not None and ctx.group is not None
    ctx.state.flow = Flow.PEOPLE
    if ctx.person.role == "admin":
        ctx.state.people = PeopleBrowsing()
        _ask_group(ctx, ctx._("The people of which group?"), with_network=True)
        return
    ctx.state.people = PeopleBrowsing(group=ctx.group.id)
    _show_page(ctx)


def people_chosen(ctx: Context) -> None:
    assert ctx.person is not None
    choice = ctx.choice or ""
    kind, _, value = choice.partition(":")
    chosen = ctx.state.people or PeopleBrowsing()
    if kind == "g" and ctx.person.role == "admin" and (group := _group(ctx, value)):
        ctx.state.people = PeopleBrowsing(group=group.id)
        _show_page(ctx)
    elif kind == "page" and chosen.group is not None and value.isdigit():
        chosen.page = int(value)
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
    elif kind == "list" and chosen.group is not None:
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
    chosen = ctx.state.people
    if chosen is None:
        raise KeyError("people")  # shown only within /people
    group = ctx.session.get(Group, chosen.group)
    assert group is not None
    everyone = members(ctx, group)
    group_name = _name(ctx, group.names, group.key)
    if not everyone:
        _done(ctx, ctx._("Nobody is registered in {group} yet.", group=group_name))
        return
    pages = (len(everyone) + PAGE_SIZE - 1) // PAGE_SIZE
    page = min(chosen.page, pages - 1)
    chosen.page = page
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
    group_id = ctx.state.people.group if ctx.state.people is not None else None
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
    group_id = ctx.state.people.group if ctx.state.people is not None else None
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


def _ask_group(
    ctx: Context,
    question: str,
    *,
    with_network: bool,
    extra: list[tuple[str, str]] | None = None,
) -> None:
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
        + (extra or [])
        + [(ctx._("Cancel"), "cancel")],
    )


def _group(ctx: Context, value: str) -> Group | None:
    group = ctx.session.get(Group, int(value)) if value.isdigit() else None
    return group if group is not None and group.active else None


def _done(ctx: Context, text: str | None) -> None:
    ctx.state.flow = None
    ctx.state.invite = None
    ctx.state.people = None
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
