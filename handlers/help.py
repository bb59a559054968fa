"""What the bot can do for this person: /help, and the command list their app shows.

Each role reads its own list, in the order that role needs it: a field worker starts with the
reports to fill in, a coordinator with where the group stands, an admin with the network.
The same table gives the lines of /help and the platform's command menu (see
`commands_for`), so the two never disagree; the permissions table still decides.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache

from forms.schema import FormSpec
from handlers.context import Context
from handlers.messages import Command
from handlers.permissions import UNREGISTERED, may, may_fill, role_name, role_of
from locales import N_, Translator
from storage.people import OrganizationRow, PersonRow

FORMS = "*forms"  # where a role's list shows the commands of the forms the person may fill

#: command -> what it does, as a short phrase (the platform's menu takes 1-256 characters).
DESCRIPTIONS: dict[str, str] = {
    "start": N_("register with your invitation code"),
    "report": N_("choose a report to fill in"),
    "status": N_("who has reported this period"),
    "digest": N_("the latest digest of your group"),
    "remind": N_("remind the associations that have not reported"),
    "review": N_("check a report of your group, or query it"),
    "broadcast": N_("send an announcement to a chosen audience"),
    "broadcasts": N_("recent broadcasts, their delivery; cancel one"),
    "invite": N_("invite someone to register"),
    "people": N_("the people of your group; deactivate a worker"),
    "export": N_("the reports as a spreadsheet file"),
    "myreports": N_("your recent reports"),
    "correct": N_("correct one of your reports"),
    "history": N_("the changes of a report, for example /history REC-12"),
    "language": N_("change the language"),
    "back": N_("go back to the previous question"),
    "cancel": N_("stop what you are doing without saving"),
    "help": N_("what I can do"),
}

#: Where a role's own description differs from the general one.
ROLE_DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("worker", "status"): N_("whether your association has reported this period"),
    ("coordinator", "correct"): N_("correct a report of your group"),
    ("admin", "correct"): N_("correct a report"),
    ("admin", "status"): N_("who has reported, across the network"),
    ("admin", "digest"): N_("the network's latest figures"),
    ("admin", "people"): N_("the people of the network; deactivate someone"),
}

#: Each role's commands, most used first.
ORDER: dict[str, tuple[str, ...]] = {
    UNREGISTERED: ("start", "help"),
    "worker": (
        "report",
        FORMS,
        "myreports",
        "correct",
        "history",
        "status",
        "language",
        "back",
        "cancel",
        "help",
    ),
    "coordinator": (
        "status",
        "remind",
        "review",
        "digest",
        "broadcast",
        "broadcasts",
        "invite",
        "people",
        "export",
        "report",
        FORMS,
        "myreports",
        "correct",
        "history",
        "language",
        "cancel",
        "help",
    ),
    "admin": (
        "status",
        "digest",
        "broadcast",
        "broadcasts",
        "invite",
        "people",
        "export",
        "review",
        "report",
        FORMS,
        "myreports",
        "correct",
        "history",
        "language",
        "cancel",
        "help",
    ),
}

#: Commands that only make sense when the person has a form to fill.
NEEDS_A_FORM = frozenset({"report", "myreports", "back"})


def commands_for(
    person: PersonRow | None,
    organization: OrganizationRow | None,
    forms: Mapping[str, FormSpec],
    tr: Translator,
) -> tuple[Command, ...]:
    """The commands this person may use, each with what it does, in their language.

    Asked after every message (see handlers.router), so kept per forms, role, kind of
    organization and language: what the list depends on."""
    key = (
        role_of(person),
        organization.kind if organization else None,
        bool(organization and organization.active),
        tr.language,
    )
    known = _known.get(id(forms))
    if known is None or known[0] is not forms:
        if len(_known) >= 16:
            _known.clear()
        known = _known[id(forms)] = (forms, {})
    found = known[1].get(key)
    if found is None:
        found = known[1][key] = _commands(person, organization, forms, tr)
    return found


#: id(forms) -> (forms, commands by key): the forms are kept, so their id is not reused.
_known: dict[int, tuple[Mapping[str, FormSpec], dict[tuple[object, ...], tuple[Command, ...]]]] = {}


@lru_cache(maxsize=256)
def signature(commands: tuple[Command, ...]) -> str:
    """A short digest of a command list, the same in every process."""
    shown = "\x1f".join(f"{c.name}\x1e{c.description}" for c in commands)
    return hashlib.blake2s(shown.encode(), digest_size=6).hexdigest()


def _commands(
    person: PersonRow | None,
    organization: OrganizationRow | None,
    forms: Mapping[str, FormSpec],
    tr: Translator,
) -> tuple[Command, ...]:
    role = role_of(person)
    fillable = [form for form in forms.values() if may_fill(person, organization, form)]
    found: list[Command] = []
    for name in ORDER.get(role, ORDER[UNREGISTERED]):
        if name == FORMS:
            found += [Command(form.command, form.title.get(tr.language)) for form in fillable]
        elif may(person, name) and (fillable or name not in NEEDS_A_FORM):
            description = ROLE_DESCRIPTIONS.get((role, name), DESCRIPTIONS[name])
            found.append(Command(name, tr.gettext(description)))
    return tuple(found)


def show(ctx: Context) -> None:
    if ctx.person is None:
        ctx.say(
            ctx._(
                "Sanad collects the field reports of your association. To start, open the "
                "invitation link your coordinator sent you, or send /start followed by "
                "your invitation code."
            )
        )
        return
    commands = commands_for(ctx.person, ctx.organization, ctx.services.forms, ctx.tr)
    lines = [ctx._("What I understand (you are {role}):", role=role_name(ctx, ctx.person.role))]
    lines += [
        ctx._("/{command}: {description}", command=command.name, description=command.description)
        for command in commands
    ]
    ctx.say("\n".join(lines))
