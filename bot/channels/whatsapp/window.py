"""The 24-hour window: WhatsApp delivers a free-form message only within 24 hours of the
person's last message; outside it, only an approved template reaches them.

The decision lives here alone, so that the channel seam's renderer can take it over as is.
"""

from __future__ import annotations

from datetime import datetime, timedelta

WINDOW = timedelta(hours=24)
#: Sending takes time, and clocks differ: a message that might land after the window closes
#: goes as a template.
MARGIN = timedelta(minutes=5)
#: The note on an outbox row that WhatsApp refused for the window (status 131047): it goes
#: again as its template, whatever the clock says.
WINDOW_CLOSED = "window closed"


def free_form_allowed(
    last_inbound_at: datetime | None, now: datetime, note: str | None = None
) -> bool:
    """Whether a free-form message sent `now` reaches a person who last wrote at
    `last_inbound_at` (None: never); `note` is the row's last error."""
    if note is not None and note.startswith(WINDOW_CLOSED):
        return False
    return last_inbound_at is not None and now - last_inbound_at < WINDOW - MARGIN
