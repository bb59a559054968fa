"""What the sender of a broadcast hears: progress while it runs, a report when it is done.

The report counts every outcome, then per channel the messages went to: sent, delivered and
read (from the platform's receipts, where it sends them: WhatsApp) and failed.

Run from the monitoring tick. The report is enqueued once (key `broadcast-report:<id>`) when
no message of the broadcast waits any more; a progress message at most once per ten minutes
(key `broadcast-progress:<id>:<slot>`), from ten minutes after the start.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from locales.channel_names import channel_name_msgid
from outbox import intents as say
from outbox.intents import Intent, Phrase
from storage import broadcasts
from storage.models import Broadcast, OutboxMessage, Person
from storage.outbox import enqueue
from storage.people import group_of

PROGRESS_EVERY = timedelta(minutes=10)
FOLLOWED_FOR = timedelta(days=30)  # a broadcast still waiting after that is left alone


def report_broadcasts(session: Session, now: datetime) -> int:
    """Enqueue the reports and progress messages due now; returns how many."""
    found = session.exec(
        select(Broadcast).where(
            col(Broadcast.status).in_(("sending", "cancelled")),
            Broadcast.created_at >= now - FOLLOWED_FOR,
        )
    ).all()
    return sum(_follow(session, broadcast, now) for broadcast in found)


def channel_lines(found: list[broadcasts.ChannelFigures]) -> list[Phrase]:
    """What became of the messages on each channel: sent, delivered, read (where the
    platform reports receipts) and failed; nothing before any message was tried."""
    if not found:
        return []
    lines = [say.gettext("By channel:")]
    for figures in found:
        msgid = channel_name_msgid(figures.channel)
        channel = say.gettext(msgid) if msgid else say.literal(figures.channel)
        if figures.receipts:
            lines.append(
                say.ngettext(
                    "• {channel}: {n} message; sent: {sent}, delivered: {delivered}, "
                    "read: {read}, failed: {failed}",
                    "• {channel}: {n} messages; sent: {sent}, delivered: {delivered}, "
                    "read: {read}, failed: {failed}",
                    figures.messages,
                    channel=channel,
                    sent=figures.sent,
                    delivered=figures.delivered,
                    read=figures.read,
                    failed=figures.failed,
                )
            )
        else:
            lines.append(
                say.ngettext(
                    "• {channel}: {n} message; sent: {sent}, failed: {failed}",
                    "• {channel}: {n} messages; sent: {sent}, failed: {failed}",
                    figures.messages,
                    channel=channel,
                    sent=figures.sent,
                    failed=figures.failed,
                )
            )
    return lines


def _follow(session: Session, broadcast: Broadcast, now: datetime) -> int:
    assert broadcast.id is not None
    key = f"broadcast-report:{broadcast.id}"
    if session.exec(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)).first():
        return 0  # reported already (a cancelled broadcast stays "cancelled")
    creator = session.get(Person, broadcast.created_by)
    if creator is None or creator.id is None:
        return 0
    figures = broadcasts.figures(session, broadcast.id)
    language = broadcasts.language_of(session, creator)
    group = group_of(session, creator)
    digits = group.digits if group else None  # the creator reads numbers their group's way
    if figures.waiting:
        slot = int((now - broadcast.created_at) / PROGRESS_EVERY)
        if slot < 1:
            return 0
        text = say.gettext(
            "Broadcast #{id}: {delivered} of {total} delivered so far, {waiting} waiting.",
            id=broadcast.id,
            delivered=figures.delivered,
            total=broadcast.recipients,
            waiting=figures.waiting,
        )
        return int(
            enqueue(
                session,
                person_id=creator.id,
                kind="broadcast-report",
                dedupe_key=f"broadcast-progress:{broadcast.id}:{slot}",
                intent=Intent.of(text, digits=digits),
                language=language,
                now=now,
            )
        )
    intent = Intent.of(
        say.gettext(
            "Broadcast #{id} is done. Of {total} people:",
            id=broadcast.id,
            total=broadcast.recipients,
        ),
        say.gettext("• delivered: {n}", n=figures.delivered),
        say.gettext("• blocked the bot: {n}", n=figures.blocked),
        say.gettext("• failed: {n}", n=figures.failed),
        say.gettext("• cancelled: {n}", n=figures.cancelled),
        say.gettext(
            "Sent again after a lost answer or a restart: {n} (they may have received it twice).",
            n=figures.resent,
        ),
        *channel_lines(broadcasts.figures_by_channel(session, broadcast.id)),
        digits=digits,
    )
    sent = enqueue(
        session,
        person_id=creator.id,
        kind="broadcast-report",
        dedupe_key=key,
        intent=intent,
        language=language,
        now=now,
    )
    if broadcast.status == "sending":
        broadcast.status = "finished"
        session.add(broadcast)
    return int(sent)
