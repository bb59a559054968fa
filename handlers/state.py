"""Where a chat stands between two messages: one model per flow, stored as JSON.

The dispatcher validates the stored JSON into a `ChatState` once per update (`load`), the
handlers change it through attributes, and the dispatcher stores it once (`dump`). A field at
its default is not stored, so the JSON stays small. The keys are those the untyped state had:
`storage.outbox.waiting_for` reads the stored JSON (flow, asked; a draft's form, path, step and
editing, fields without a default, so always written with the draft).

Rows written before these models (no "v" marker) have the same keys with two differences that
`load` converts: the form to open after a discarded draft was a top-level "then", and an export
had no step (it followed from which of group, form and period were set).

Flows that keep nothing but their name (code, language, menu, remind, broadcasts) have no model
of their own: `ChatState.flow` says all there is.
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from storage.broadcasts import Audience

log = logging.getLogger(__name__)

SCHEMA = 1  # the "v" of a stored state; rows without it are older (see `_upgrade`)


class Flow(StrEnum):
    """What the chat waits for: the handler (router.FLOWS) its next message goes to."""

    CODE = "code"  # an invitation code, before registration
    LANGUAGE = "language"
    MENU = "menu"
    FORM = "form"  # an answer to the report being filled in (`ChatState.draft`)
    RESUME = "resume"  # continue or discard the unfinished report
    REMIND = "remind"  # send the reminders or not
    BROADCAST = "broadcast"
    BROADCASTS = "broadcasts"  # the list of broadcasts, with Cancel buttons
    CORRECT = "correct"
    REVIEW = "review"
    INVITE = "invite"
    PEOPLE = "people"
    EXPORT = "export"


class _Model(BaseModel):
    # Keys this code does not know (a newer or an older version's) are dropped, not refused.
    model_config = ConfigDict(extra="ignore")


# --- reporting --------------------------------------------------------------------------------


class DraftStep(StrEnum):
    ASK = "ask"  # the current field's question
    WHICH = "which"  # which of two readings of a typed number
    REPLACE = "replace"  # replace the report already sent for the period?
    SUMMARY = "summary"  # confirm, change or cancel
    CHANGE = "change"  # which answer to change


class PhotoRef(_Model):
    """A photo received for the current question: the platform's file id or a kept file."""

    file_id: str | None = None
    path: str | None = None


class Draft(_Model):
    """A report being filled in."""

    form: str
    answers: dict[str, Any]  # field name -> value; None for a skipped question
    path: list[str]  # the answered fields in the order answered (for /back)
    step: DraftStep
    editing: bool  # changing one answer from the summary
    touched: datetime  # the last message about it (an old draft is offered to resume)
    typed: dict[str, str] = Field(default_factory=dict)  # field -> what was typed ("12 t")
    photos: list[PhotoRef] | None = None  # received so far for the current photo question
    selected: list[str] | None = None  # ticked so far for the current multiple choice
    candidates: list[str] | None = None  # the two readings of a number (DraftStep.WHICH)
    unit: str | None = None  # ... and the unit typed with it
    before: dict[str, Any] | None = None  # the answer being changed, restored by /back
    before_typed: str | None = None
    replaces: int | None = None  # the report of the same period this one replaces
    confirming: bool = False  # "replace?" asked after Confirm: saving follows a yes


class Resume(_Model):
    """Continue or discard the unfinished report; `then` is the form to open after discarding."""

    then: str | None = None


# --- corrections and review -------------------------------------------------------------------


class CorrectionStep(StrEnum):
    START = "start"  # after /myreports: correct a report, or the menu
    REPORT = "report"  # which report
    FIELD = "field"  # which answer of it
    VALUE = "value"  # the new value
    WHICH = "which"  # which of two readings of a typed number
    CONFIRM = "confirm"  # save the pending corrections, correct another, or cancel


class Correction(_Model):
    step: CorrectionStep
    report: int | None = None
    field: str | None = None
    candidates: list[str] | None = None
    unit: str | None = None
    pending: dict[str, Any] = Field(default_factory=dict)  # field -> new value (None: removed)
    typed: dict[str, str] = Field(default_factory=dict)


class ReviewStep(StrEnum):
    REPORT = "report"  # which report
    ACTION = "action"  # checked, query, correct, history
    COMMENT = "comment"  # the question for the person who sent it


class Review(_Model):
    step: ReviewStep
    report: int | None = None


# --- broadcasts -------------------------------------------------------------------------------


class BroadcastStep(StrEnum):
    MESSAGE = "message"  # its text, or a photo with a caption
    LANGUAGES = "languages"  # the same text for everyone, or one per language
    TEXT = "text"  # the text for `BroadcastDraft.language`
    AUDIENCE = "audience"
    PICK = "pick"  # a group, organization or role (`BroadcastDraft.pick`) to add
    PREVIEW = "preview"


class Pick(StrEnum):
    GROUP = "group"
    ORGANIZATION = "organization"
    ROLE = "role"


class BroadcastDraft(_Model):
    step: BroadcastStep
    texts: dict[str, str] = Field(default_factory=dict)  # language (or COMMON) -> text
    photo: str | None = None  # storage.broadcasts.photo_reference
    audience: Audience = Field(default_factory=Audience)
    language: str | None = None
    pick: Pick | None = None


# --- people, invitations, exports -------------------------------------------------------------


class Invitation(_Model):
    """/invite: the organization chosen, once it is (the names come next)."""

    organization: int | None = None


class PeopleBrowsing(_Model):
    """/people: the group shown (an admin chooses it first) and the page."""

    group: int | None = None
    page: int = 0


class ExportStep(StrEnum):
    GROUP = "group"  # an admin chooses a group, or all
    FORM = "form"
    PERIOD = "period"
    FORMAT = "format"


class ExportChoice(_Model):
    step: ExportStep
    group: int | None = None  # None from ExportStep.FORM on: every group
    form: str | None = None  # a form id, or exports' ALL
    period: str | None = None  # one of handlers.export.PERIODS


# --- the chat ---------------------------------------------------------------------------------


class ChatState(_Model):
    """Everything a chat keeps between two messages."""

    flow: Flow | None = None
    draft: Draft | None = None  # kept while another flow runs: offered to resume later
    resume: Resume | None = None
    correct: Correction | None = None
    review: Review | None = None
    broadcast: BroadcastDraft | None = None
    invite: Invitation | None = None
    people: PeopleBrowsing | None = None
    export: ExportChoice | None = None
    nonce: str | None = None  # the token of the buttons that work (Context.say)
    asked: str | None = None  # the question they were sent with
    commands: str | None = None  # help.signature of the command menu the chat was given

    @classmethod
    def load(cls, stored: dict[str, Any]) -> ChatState:
        """The state stored by any version; a part that does not validate is dropped (and
        logged) rather than stopping the chat: the person starts that flow again."""
        data = stored if stored.get("v") == SCHEMA else _upgrade(stored)
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            broken = {str(e["loc"][0]) for e in error.errors() if e["loc"]}
            log.warning("conversation state: dropped what did not validate: %s", sorted(broken))
            kept = {k: v for k, v in data.items() if k not in broken}
            try:
                return cls.model_validate(kept)
            except ValidationError:
                return cls()

    def dump(self) -> dict[str, Any]:
        """The JSON to store: fields at their default left out, the schema marker in."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        data["v"] = SCHEMA
        return data


def _upgrade(stored: dict[str, Any]) -> dict[str, Any]:
    """A state written before these models, in their shape."""
    data = dict(stored)
    if "then" in data:
        then = data.pop("then")
        if data.get("flow") == Flow.RESUME:
            data["resume"] = {"then": then}
    export = data.get("export")
    if isinstance(export, dict) and "step" not in export:
        step = (
            ExportStep.FORMAT
            if "period" in export
            else ExportStep.PERIOD
            if "form" in export
            else ExportStep.FORM
            if "group" in export
            else ExportStep.GROUP
        )
        data["export"] = {**export, "step": step}
    return data
