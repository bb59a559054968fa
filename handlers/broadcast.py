"""/broadcast: an announcement to an audience, after a preview with the exact number of people.

The conversation: the message (a text, or a photo with its caption) -> the same text for
every language, or a text per language -> the audience (everyone, a group, an organization,
a role, or several of these together) -> a preview -> Confirm or Cancel. Admins reach anyone;
a coordinator reaches only their own group. Every button value is checked again when
pressed: a value outside the person's reach does nothing but say so.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import col, select

from handlers.context import Context
from handlers.state import BroadcastDraft, BroadcastStep, Flow, Pick
from locales import N_
from storage import broadcasts
from storage.broadcasts import COMMON, Audience
from storage.models import ROLES, Group, Organization
from storage.network import NETWORK_GROUP
from storage.outbox import CAPTION_LIMIT, TEXT_LIMIT

LANGUAGES = {"ar": "العربية", "en": "English", "fr": "Français"}
ROLE_NAMES = {"worker": N_("workers"), "coordinator": N_("coordinators"), "admin": N_("admins")}


def start(ctx: Context) -> None:
    ctx.state.flow = Flow.BROADCAST
    ctx.state.broadcast = BroadcastDraft(step=BroadcastStep.MESSAGE, audience=_initial(ctx))
    _ask_message(ctx)


def answer(ctx: Context) -> None:
    draft = ctx.state.broadcast
    if draft is None:
        ctx.state.flow = None
        ctx.go_menu()
        return
    if ctx.choice == "cancel":
        _drop(ctx)
        return
    STEPS[draft.step](ctx, draft)


def show_current(ctx: Context) -> None:
    """Ask again what the conversation waits for (after a refused button)."""
    draft = ctx.state.broadcast
    if draft is None:
        raise KeyError("broadcast")  # the router comes here only with a draft
    step = draft.step
    if step == BroadcastStep.MESSAGE:
        _ask_message(ctx)
    elif step == BroadcastStep.LANGUAGES:
        _languages(ctx, draft)
    elif step == BroadcastStep.TEXT:
        _ask_text(ctx, draft)
    elif step == BroadcastStep.PICK:
        _offer(ctx, draft)
    elif step == BroadcastStep.PREVIEW:
        _preview(ctx, draft)
    else:
        _show_audience(ctx, draft)


# --- the message ------------------------------------------------------------------------------


def _ask_message(ctx: Context, intro: str | None = None) -> None:
    question = ctx._("What is the message? Send its text, or a photo with the text as caption.")
    cancel = [(ctx._("Cancel"), "cancel")]
    ctx.say(f"{intro}\n{question}" if intro else question, cancel, expect="text")


def _message(ctx: Context, draft: BroadcastDraft) -> None:
    photo = ctx.incoming.photo
    text = (ctx.incoming.text or "").strip()
    if photo is None and not text:
        _ask_message(ctx, ctx._("Please send a text or a photo."))
        return
    limit = CAPTION_LIMIT if photo is not None else TEXT_LIMIT
    if len(text) > limit:
        _ask_message(
            ctx, ctx._("That is too long: at most {limit} characters, please.", limit=limit)
        )
        return
    draft.texts = {COMMON: text}
    # Never a path from chat text: the platform's reference of what was sent, or the file the
    # console channel copied into its media folder.
    draft.photo = broadcasts.photo_reference(photo.file_id, photo.path) if photo else None
    draft.step = BroadcastStep.LANGUAGES
    ctx.say(
        ctx._("Should everyone read this text, or do you want to add a text per language?"),
        [
            (ctx._("Same text for every language"), "same"),
            (ctx._("Add a text per language"), "per"),
            (ctx._("Cancel"), "cancel"),
        ],
    )


def _languages(ctx: Context, draft: BroadcastDraft) -> None:
    if ctx.choice == "same":
        _show_audience(ctx, draft)
    elif ctx.choice == "per":
        draft.step, draft.language = BroadcastStep.TEXT, next(iter(LANGUAGES))
        _ask_text(ctx, draft)
    else:
        ctx.say(
            ctx._("Please choose one of the options."),
            [
                (ctx._("Same text for every language"), "same"),
                (ctx._("Add a text per language"), "per"),
                (ctx._("Cancel"), "cancel"),
            ],
        )


def _ask_text(ctx: Context, draft: BroadcastDraft) -> None:
    ctx.say(
        ctx._(
            "The text for the people who read {language}:",
            language=LANGUAGES[draft.language or ""],
        ),
        [(ctx._("Use the common text"), "common"), (ctx._("Cancel"), "cancel")],
        expect="text",
    )


def _text(ctx: Context, draft: BroadcastDraft) -> None:
    text = (ctx.incoming.text or "").strip()
    limit = CAPTION_LIMIT if draft.photo else TEXT_LIMIT
    if ctx.choice != "common":
        if not text or len(text) > limit:
            ctx.say(ctx._("Please send a text of at most {limit} characters.", limit=limit))
            _ask_text(ctx, draft)
            return
        draft.texts[draft.language or ""] = text
    languages = list(LANGUAGES)
    following = languages.index(draft.language or "") + 1
    if following < len(languages):
        draft.language = languages[following]
        _ask_text(ctx, draft)
    else:
        _show_audience(ctx, draft)


# --- the audience -----------------------------------------------------------------------------


def _initial(ctx: Context) -> Audience:
    """Admins start from everyone; a coordinator from their own group."""
    assert ctx.person is not None and ctx.group is not None
    return Audience() if _is_admin(ctx) else Audience(groups=[ctx.group.id or 0])


def _is_admin(ctx: Context) -> bool:
    return ctx.person is not None and ctx.person.role == "admin"


def _show_audience(ctx: Context, draft: BroadcastDraft, intro: str | None = None) -> None:
    draft.step = BroadcastStep.AUDIENCE
    audience = draft.audience
    count = broadcasts.count_recipients(ctx.session, audience)
    lines = [intro] if intro else []
    lines.append(
        ctx._("Who should receive it? So far: {audience}", audience=describe(ctx, audience))
    )
    lines.append(ctx.tr.ngettext("That is {n} person.", "That is {n} people.", count))
    options = [(ctx._("Everyone"), "everyone")] if _is_admin(ctx) else []
    if _is_admin(ctx):
        options.append((ctx._("A group"), "pick:group"))
    options += [(ctx._("An organization"), "pick:organization"), (ctx._("A role"), "pick:role")]
    if count:
        options.append((ctx._("Preview"), "preview"))
    options.append((ctx._("Cancel"), "cancel"))
    ctx.say("\n".join(lines), options, columns=2)


def _audience(ctx: Context, draft: BroadcastDraft) -> None:
    choice = ctx.choice or ""
    if choice == "everyone" and _is_admin(ctx):
        draft.audience = Audience()
        _preview(ctx, draft)
    elif choice == "preview":
        _preview(ctx, draft)
    elif choice in ("pick:group", "pick:organization", "pick:role"):
        draft.step, draft.pick = BroadcastStep.PICK, Pick(choice[5:])
        _offer(ctx, draft)
    else:
        _show_audience(ctx, draft, ctx._("Please choose one of the options."))


def _offer(ctx: Context, draft: BroadcastDraft) -> None:
    audience = draft.audience
    kind = draft.pick
    if kind == Pick.GROUP:
        options = [(g.names.get(ctx.language, g.key), f"group:{g.id}") for g in _groups(ctx)]
        question = ctx._("Which group?")
    elif kind == Pick.ORGANIZATION:
        options = [
            (o.names.get(ctx.language, o.key), f"organization:{o.id}")
            for o in _organizations(ctx, audience.groups)
        ]
        question = ctx._("Which organization?")
    else:
        options = [(ctx._(ROLE_NAMES[role]), f"role:{role}") for role in ROLES]
        question = ctx._("Which role?")
    ctx.say(question, options + [(ctx._("Cancel"), "cancel")])


def _pick(ctx: Context, draft: BroadcastDraft) -> None:
    kind, _, value = (ctx.choice or "").partition(":")
    audience = draft.audience
    allowed = {
        "group": lambda: [str(g.id) for g in _groups(ctx)],
        "organization": lambda: [str(o.id) for o in _organizations(ctx, [])],
        "role": lambda: list(ROLES),
    }
    if kind != draft.pick or value not in allowed[kind]():
        _show_audience(ctx, draft, ctx._("That choice is not open to you."))
        return
    if kind == "group":
        audience.groups = sorted({*audience.groups, int(value)})
    elif kind == "organization":
        audience.organizations = sorted({*audience.organizations, int(value)})
    else:
        audience.roles = sorted({*audience.roles, value})
    _show_audience(ctx, draft)


def _groups(ctx: Context) -> list[Group]:
    """The groups a person may address: every active group for an admin, else none to pick."""
    if not _is_admin(ctx):
        return []
    return list(
        ctx.session.exec(
            select(Group)
            .where(Group.active)
            .order_by(col(Group.key) == NETWORK_GROUP, col(Group.key))
        ).all()
    )


def _organizations(ctx: Context, groups: list[int]) -> list[Organization]:
    """The organizations a person may address, within `groups` if given."""
    statement = select(Organization).where(Organization.active).order_by(col(Organization.id))
    if not _is_admin(ctx):
        assert ctx.group is not None
        statement = statement.where(Organization.group_id == ctx.group.id)
    elif groups:
        statement = statement.where(col(Organization.group_id).in_(groups))
    return list(ctx.session.exec(statement).all())


def describe(ctx: Context, audience: Audience) -> str:
    """The audience in words: "everyone", or its filters."""
    if audience.everyone:
        return ctx._("everyone")
    parts = []
    if audience.groups:
        names = [
            g.names.get(ctx.language, g.key)
            for g in ctx.session.exec(select(Group).where(col(Group.id).in_(audience.groups))).all()
        ]
        parts.append(ctx._("group: {names}", names=", ".join(names)))
    if audience.organizations:
        names = [
            o.names.get(ctx.language, o.key)
            for o in ctx.session.exec(
                select(Organization).where(col(Organization.id).in_(audience.organizations))
            ).all()
        ]
        parts.append(ctx._("organization: {names}", names=", ".join(names)))
    if audience.roles:
        names = [ctx._(ROLE_NAMES[role]) for role in audience.roles]
        parts.append(ctx._("role: {names}", names=", ".join(names)))
    return "; ".join(parts)


# --- preview and confirmation -----------------------------------------------------------------


def _preview(ctx: Context, draft: BroadcastDraft) -> None:
    audience = draft.audience
    count = broadcasts.count_recipients(ctx.session, audience)
    if not count:
        draft.audience = _initial(ctx)
        _show_audience(ctx, draft, ctx._("Nobody matches this audience. Please choose again."))
        return
    draft.step = BroadcastStep.PREVIEW
    texts = draft.texts
    lines = [
        ctx.tr.ngettext(
            "This message will go to {n} person ({audience}):",
            "This message will go to {n} people ({audience}):",
            count,
            audience=describe(ctx, audience),
        )
    ]
    if draft.photo:
        lines.append(ctx._("(with a photo)"))
    lines += ["", texts[COMMON]] if texts.get(COMMON) else []
    for language, name in LANGUAGES.items():
        if texts.get(language):
            lines += ["", f"[{name}]", texts[language]]
    ctx.say("\n".join(lines), [(ctx._("Confirm and send"), "confirm"), (ctx._("Cancel"), "cancel")])


def _preview_chosen(ctx: Context, draft: BroadcastDraft) -> None:
    if ctx.choice != "confirm":
        _preview(ctx, draft)
        return
    assert ctx.person is not None and ctx.person.id is not None
    broadcast = broadcasts.create(
        ctx.session,
        created_by=ctx.person.id,
        texts=draft.texts,
        photo=draft.photo,
        audience=draft.audience,
        now=ctx.now,
    )
    ctx.state.broadcast = None
    ctx.state.flow = None
    ctx.say(
        ctx.tr.ngettext(
            "Broadcast #{id} is on its way to {n} person. You will get a report when it is done; "
            "/broadcasts shows how it goes.",
            "Broadcast #{id} is on its way to {n} people. You will get a report when it is done; "
            "/broadcasts shows how it goes.",
            broadcast.recipients,
            id=broadcast.id,
        )
    )


def _drop(ctx: Context) -> None:
    ctx.state.broadcast = None
    ctx.state.flow = None
    ctx.go_menu(ctx._("The broadcast was cancelled. Nothing was sent."))


STEPS: dict[BroadcastStep, Callable[[Context, BroadcastDraft], None]] = {
    BroadcastStep.MESSAGE: _message,
    BroadcastStep.LANGUAGES: _languages,
    BroadcastStep.TEXT: _text,
    BroadcastStep.AUDIENCE: _audience,
    BroadcastStep.PICK: _pick,
    BroadcastStep.PREVIEW: _preview_chosen,
}
