"""The utility templates that reach a person outside the 24-hour window.

Two templates, each in ar, en and fr, one text parameter each and one quick-reply button:

* `sanad_reminder` (reminders: their "fill it now" option): the reminder's text, and
  "Report now", whose payload is the reminder's own option ("go:checkin": the form opens);
* `sanad_message` (digests, escalations, broadcasts, anything else): the first line of the
  message, and "Show", whose payload ("show:<outbox id>") has the whole message sent once the
  person answered (the answer opens the window).

`submissions()` is what `python -m bot whatsapp-templates` prints for the operator to submit
in Meta's message-template format; `template_message()` is what is sent, under exactly those
names. Parameters follow WhatsApp's rules: not empty, no newline or tab, never more than four
spaces in a row, and short (the body stays within 1024 characters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.channels.whatsapp.render import Outgoing, plain, shorten
from handlers.messages import Reply
from locales import FSI, LANGUAGES, N_, PDI, translator

JSON = dict[str, Any]
PARAMETER_LIMIT = 300
GO = "go:"
SHOW = "show:"


@dataclass(frozen=True)
class Template:
    name: str
    body: str  # msgid with {summary}
    button: str  # msgid
    example: str  # msgid of an example summary


REMINDER = Template(
    "sanad_reminder",
    N_("Sanad reminder: {summary}\n\nTap “Report now” to fill it in here."),
    N_("Report now"),
    N_("Your recycling report for week 49 is due on 7 December."),
)
MESSAGE = Template(
    "sanad_message",
    N_("You have a new message from Sanad: {summary}\n\nTap “Show” to read all of it."),
    N_("Show"),
    N_("Weekly digest of the Bahrain group"),
)
TEMPLATES = (REMINDER, MESSAGE)


def body_text(template: Template, language: str) -> str:
    """The approved body in `language`, with its variable as {{1}}."""
    text = translator(language).gettext(template.body, summary="{{1}}")
    return text.replace(f"{FSI}{{{{1}}}}{PDI}", "{{1}}")


def submissions() -> list[JSON]:
    """Every template in every language, in the Graph API's message-template format."""
    found = []
    for template in TEMPLATES:
        for language in LANGUAGES:
            tr = translator(language)
            found.append(
                {
                    "name": template.name,
                    "language": language,
                    "category": "UTILITY",
                    "components": [
                        {
                            "type": "BODY",
                            "text": body_text(template, language),
                            "example": {"body_text": [[tr.gettext(template.example)]]},
                        },
                        {
                            "type": "BUTTONS",
                            "buttons": [
                                {"type": "QUICK_REPLY", "text": tr.gettext(template.button)}
                            ],
                        },
                    ],
                }
            )
    return found


def parameter(text: str) -> str:
    """A text as a template parameter: its first line, spaces collapsed, short, not empty."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    value = re.sub(r"\s+", " ", first).strip()
    if len(value) > PARAMETER_LIMIT:
        value = shorten(plain(value), PARAMETER_LIMIT)
    return value or "…"


def template_message(message_id: int, reply: Reply, language: str) -> Outgoing:
    """The template that stands for outbox message `message_id` (saying `reply`) outside the
    window."""
    go = next((o.value for o in reply.options if o.value.startswith(GO)), None)
    template, payload = (REMINDER, go) if go else (MESSAGE, f"{SHOW}{message_id}")
    return Outgoing(
        {
            "type": "template",
            "template": {
                "name": template.name,
                "language": {"code": language},
                "components": [
                    {
                        "type": "body",
                        "parameters": [{"type": "text", "text": parameter(reply.text)}],
                    },
                    {
                        "type": "button",
                        "sub_type": "quick_reply",
                        "index": "0",
                        "parameters": [{"type": "payload", "payload": payload}],
                    },
                ],
            },
        }
    )
