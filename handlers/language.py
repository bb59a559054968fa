"""Choosing the language: at registration, and any time with /language."""

from __future__ import annotations

from handlers.context import Context
from handlers.state import Flow
from locales import LANGUAGE_NAMES, LANGUAGES, supported, translator
from storage.people import set_language


def ask(ctx: Context) -> None:
    suggested = (
        (ctx.person.language if ctx.person else None)
        or supported(ctx.incoming.language_code)
        or (ctx.group.language if ctx.group else None)
        or LANGUAGES[0]
    )
    ordered = [suggested] + [lang for lang in LANGUAGES if lang != suggested]
    ctx.state.flow = Flow.LANGUAGE
    ctx.say(ctx._("Choose your language."), [(LANGUAGE_NAMES[lang], lang) for lang in ordered])


def chosen(ctx: Context) -> None:
    choice = ctx.choice
    if choice not in LANGUAGES or ctx.person is None:
        ask(ctx)
        return
    ctx.person = set_language(ctx.connection, ctx.person, choice)
    ctx.tr = translator(choice, ctx.group.digits if ctx.group else None)
    ctx.state.flow = None
    ctx.say(ctx._("From now on I will write to you in English."))
    ctx.go_home()
