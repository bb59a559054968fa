"""The typed conversation state (handlers.state) reads every state the untyped code stored:
a chat in the middle of a report, a correction or any other flow when the new version starts
goes on where it stood."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from bot.app import Sanad
from handlers.state import (
    SCHEMA,
    BroadcastStep,
    ChatState,
    CorrectionStep,
    DraftStep,
    ExportStep,
    Flow,
    Pick,
)
from storage.conversations import mark_replied, read_state, save_state
from storage.db import transaction
from storage.models import Report
from storage.outbox import waiting_for
from tests.conftest import Clock
from tests.harness import Telegram, registered, report_recycling

TOUCHED = "2026-11-29T07:00:00+00:00"

# States as the untyped handlers wrote them (the same keys, nulls and empty containers).
OLD_SHAPES: list[dict[str, Any]] = [
    {},
    {"flow": None, "commands": "0a1b2c3d4e5f"},
    {"flow": "code"},
    {"flow": "menu", "nonce": "ab12", "asked": "0badcafe", "commands": "0a1b2c3d4e5f"},
    {"flow": "language", "nonce": "ab12", "asked": "0badcafe"},
    {"flow": "remind", "nonce": "ab12", "asked": "0badcafe"},
    {"flow": "broadcasts", "nonce": "ab12", "asked": "0badcafe"},
    # a report half filled in, a number waiting to be told apart, photos, ticks, a change
    {
        "flow": "form",
        "draft": {
            "form": "recycling",
            "answers": {"period": "2026-11-29", "paper_kg": 12.5, "notes": None},
            "path": ["period", "paper_kg", "notes"],
            "step": "ask",
            "editing": False,
            "touched": TOUCHED,
            "typed": {"paper_kg": "12,5 kg"},
        },
        "nonce": "ab12",
        "asked": "0badcafe",
        "then": None,
    },
    {
        "flow": "form",
        "draft": {
            "form": "recycling",
            "answers": {"period": "2026-11-29"},
            "path": ["period"],
            "step": "which",
            "editing": False,
            "touched": TOUCHED,
            "candidates": ["1.25", "1250"],
            "unit": None,
        },
    },
    {
        "flow": "form",
        "draft": {
            "form": "checkin",
            "answers": {},
            "path": [],
            "step": "ask",
            "editing": False,
            "touched": TOUCHED,
            "photos": [{"file_id": "AgAD"}, {"path": "media/1.jpg"}],
            "selected": ["a", "b"],
        },
    },
    {
        "flow": "form",
        "draft": {
            "form": "recycling",
            "answers": {"period": "2026-11-29", "paper_kg": 3},
            "path": ["period", "paper_kg"],
            "step": "ask",
            "editing": True,
            "touched": TOUCHED,
            "typed": {},
            "before": {"notes": None},
            "before_typed": None,
        },
    },
    {
        "flow": "form",
        "draft": {
            "form": "recycling",
            "answers": {"period": "2026-11-29"},
            "path": ["period"],
            "step": "replace",
            "editing": False,
            "touched": TOUCHED,
            "replaces": 7,
            "confirming": True,
        },
    },
    {
        "flow": "resume",
        "then": "checkin",
        "draft": {
            "form": "recycling",
            "answers": {},
            "path": [],
            "step": "summary",
            "editing": False,
            "touched": TOUCHED,
        },
    },
    {"flow": "correct", "correct": {"step": "start"}},
    {"flow": "correct", "correct": {"step": "report"}},
    {
        "flow": "correct",
        "correct": {
            "report": 3,
            "step": "confirm",
            "field": "notes",
            "pending": {"notes": None, "paper_kg": 4},
            "typed": {"paper_kg": "4 kg"},
        },
    },
    {
        "flow": "correct",
        "correct": {"report": 3, "step": "which", "field": "paper_kg", "candidates": ["1", "2"]},
    },
    {"flow": "review", "review": {"report": 3, "step": "comment"}},
    {"flow": "review", "review": {"step": "report"}},
    {
        "flow": "broadcast",
        "broadcast": {
            "step": "pick",
            "texts": {"*": "Meeting on Monday", "fr": "Réunion lundi"},
            "photo": None,
            "audience": {"groups": [2], "organizations": [], "roles": ["worker"]},
            "language": "fr",
            "pick": "organization",
        },
    },
    {"flow": "invite", "invite": {}},
    {"flow": "invite", "invite": {"organization": 4}},
    {"flow": "people", "people": {}},
    {"flow": "people", "people": {"group": 2, "page": 1}},
    {"flow": "export", "export": {}},
    {"flow": "export", "export": {"group": None}},
    {"flow": "export", "export": {"group": 2, "form": "*"}},
    {"flow": "export", "export": {"group": 2, "form": "recycling", "period": "last_month"}},
]


@pytest.mark.parametrize("old", OLD_SHAPES)
def test_every_old_state_loads_and_stores_the_same_question(old: dict[str, Any]) -> None:
    """Read, stored again and read back, nothing changes; and a reply kept in the outbox
    before the new version still belongs to the question the chat waits for."""
    state = ChatState.load(old)
    stored = state.dump()
    assert stored["v"] == SCHEMA
    assert ChatState.load(stored) == state
    assert waiting_for(stored) == waiting_for(old)
    assert (state.flow, state.nonce, state.asked) == (
        old.get("flow"),
        old.get("nonce"),
        old.get("asked"),
    )


def test_what_the_old_states_held_is_kept_typed() -> None:
    which = ChatState.load(OLD_SHAPES[8])
    assert which.draft is not None and which.draft.step is DraftStep.WHICH
    assert which.draft.candidates == ["1.25", "1250"]
    photos = ChatState.load(OLD_SHAPES[9]).draft
    assert photos is not None and [
        p.model_dump(exclude_none=True) for p in photos.photos or []
    ] == [
        {"file_id": "AgAD"},
        {"path": "media/1.jpg"},
    ]
    changing = ChatState.load(OLD_SHAPES[10]).draft
    assert changing is not None and changing.before == {"notes": None}  # a skipped answer
    resume = ChatState.load(OLD_SHAPES[12])
    assert resume.flow is Flow.RESUME and resume.resume and resume.resume.then == "checkin"
    correction = ChatState.load(OLD_SHAPES[15]).correct
    assert correction is not None and correction.step is CorrectionStep.CONFIRM
    assert correction.pending == {"notes": None, "paper_kg": 4}  # None: the answer removed
    broadcast = ChatState.load(OLD_SHAPES[19]).broadcast
    assert broadcast is not None and broadcast.step is BroadcastStep.PICK
    assert broadcast.pick is Pick.ORGANIZATION and broadcast.audience.roles == ["worker"]
    steps = [ChatState.load(old).export for old in OLD_SHAPES[-4:]]
    assert [e.step if e else None for e in steps] == list(ExportStep)
    assert steps[1] is not None and steps[1].group is None  # every group, chosen


def test_a_state_that_does_not_validate_loses_only_its_broken_part() -> None:
    state = ChatState.load(
        {"flow": "gone away", "draft": {"form": "recycling"}, "nonce": "ab12", "commands": "c"}
    )
    assert state == ChatState(nonce="ab12", commands="c")


def test_the_stored_state_is_compact() -> None:
    state = ChatState.load(OLD_SHAPES[7])
    assert state.dump() == {
        "flow": "form",
        "draft": {
            "form": "recycling",
            "answers": {"period": "2026-11-29", "paper_kg": 12.5, "notes": None},
            "path": ["period", "paper_kg", "notes"],
            "step": "ask",
            "editing": False,
            "touched": "2026-11-29T07:00:00Z",
            "typed": {"paper_kg": "12,5 kg"},
        },
        "nonce": "ab12",
        "asked": "0badcafe",
        "v": SCHEMA,
    }


def _store_old(sanad: Sanad, chat: str, old: dict[str, Any]) -> None:
    """Write `old` as the chat's state, as the untyped version would have, its replies sent."""
    with transaction(sanad.engine) as session:
        stored = read_state(session, chat)
        save_state(session, chat, stored, old, sanad.dispatcher.clock(), None)
        mark_replied(session, {chat: stored.version + 1})


def _stored(sanad: Sanad, chat: str) -> dict[str, Any]:
    with transaction(sanad.engine) as session:
        return read_state(session, chat).state


async def test_a_half_filled_report_of_the_old_version_goes_on(sanad: Sanad, clock: Clock) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        draft = {
            "form": "recycling",
            "answers": {"period": "2026-11-29", "paper_kg": 12.5, "aluminium_kg": 3},
            "path": ["period", "paper_kg", "aluminium_kg"],
            "step": "ask",
            "editing": False,
            "touched": clock().isoformat(),
            "typed": {"paper_kg": "12,5 kg"},
        }
        _store_old(sanad, "telegram:201", {"flow": "form", "draft": draft, "then": None})
        for typed in ("30", "120", "60", "45", "6"):
            await fatima.says(typed)
        assert "Notes (optional)" in fatima.last
        assert _stored(sanad, "telegram:201")["v"] == SCHEMA
        await fatima.taps("Skip")
        assert "Paper: 12,5 kg → 12.5 kg" in fatima.everything  # as typed, kept
        await fatima.taps("Confirm and send")
        assert "REC-1" in fatima.last
    with transaction(sanad.engine) as session:
        [report] = session.exec(select(Report)).all()
    assert report.answers["paper_kg"] == 12.5 and report.answers["plastic_kg"] == 30


async def test_an_old_offer_to_resume_still_opens_the_form_asked_for(
    sanad: Sanad, clock: Clock
) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        draft = {
            "form": "recycling",
            "answers": {"period": "2026-11-29"},
            "path": ["period"],
            "step": "ask",
            "editing": False,
            "touched": clock().isoformat(),
        }
        old = {"flow": "resume", "draft": draft, "then": "checkin", "nonce": "ab12"}
        _store_old(sanad, "telegram:201", old)
        await fatima.says("hello")
        assert "unfinished report" in fatima.last
        await fatima.taps("Discard")
        assert "When did the activity take place?" in fatima.everything


async def test_an_old_correction_waiting_for_its_value_goes_on(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await report_recycling(fatima)
        with transaction(sanad.engine) as session:
            [report] = session.exec(select(Report)).all()
        correction = {"report": report.id, "step": "value", "field": "paper_kg"}
        _store_old(sanad, "telegram:201", {"flow": "correct", "correct": correction})
        await fatima.says("15")
        assert "from: 100 kg" in fatima.last and "to: 15 kg" in fatima.last
        await fatima.taps("Save the correction")
        assert "Corrected" in fatima.everything
    with transaction(sanad.engine) as session:
        [report] = session.exec(select(Report)).all()
    assert report.answers["paper_kg"] == 15
