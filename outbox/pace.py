"""One pace for every message a process sends on a platform: outbox messages and direct replies.

Telegram takes about 30 messages a second per bot and 1 a second per chat; a 429 asks the whole
bot to wait. WhatsApp takes a number's throughput (80 a second by default) and a pair rate to
each person. `Pace` keeps one platform's limits for everything it is told about; a process
running several channels has one `Pace` per channel (`Paces`), so that a burst on one does not
slow the other:

* overall, a token bucket of `per_second` with a burst of `burst` (2 by default: evenly
  spaced, and a timer that wakes late is made up for), and a window: no more than
  `per_second` messages may *reach the platform* within any one second. The platform counts
  arrivals, which the sender does not see: a message arrives after it was granted and before
  its answer came back. So the window counts every message still in flight and every message
  answered less than a second ago, and a new one goes only when fewer than `per_second` are
  in it. Whatever the network does (requests bunched on the way, a slow answer), the
  platform never sees more than `per_second` in one second; the price is a round trip per
  `per_second` messages (on 127.0.0.1 about 1%);
* per chat, the next outbox message goes `per_chat_seconds` after the platform *answered* the
  previous message to that chat, reply or outbox message, and one at a time;
* a direct reply does not queue for a token (a person waits for it): it waits out a pause and
  the spacing after an outbox message to its chat, then takes its token at once, even on
  credit, so the outbox messages that follow leave room for it. The messages answering one
  message of a person go at once up to `per_chat_burst` (Telegram lets short bursts over its
  one a second through; WhatsApp's pair rate takes bursts), the rest spaced as outbox
  messages; the answers to a person's next messages come at the pace of those messages;
* after a flood wait (`pause`) the bucket starts empty at the end of the pause: sending
  resumes at the steady rate, not with a burst.

Every `acquire` and `reply_turn` is followed by one `done(chat)` when the platform answered
(or the call failed): the window counts the message in flight until then.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

SAFETY = 0.001  # seconds added to waits the platform counts to the second
RESOLUTION = 1e-6  # datetimes count microseconds: a shorter wait is no wait
WINDOW = 1.0  # seconds: "per second" is counted over any window this long
FORGET_CHATS_ABOVE = 1000  # chats remembered before the ones already free are dropped

Sleep = Callable[[float], Awaitable[object]]


class Pace:
    """The overall token bucket and window, spacing per chat, and the pause after a flood wait."""

    def __init__(
        self,
        per_second: float,
        per_chat_seconds: float,
        clock: Callable[[], float],
        sleep: Sleep,
        burst: float = 2.0,
        per_chat_burst: int = 1,
    ) -> None:
        self.rate = per_second
        self.burst = max(1.0, burst)
        self.per_chat_seconds = per_chat_seconds
        self.per_chat_burst = max(1, per_chat_burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._paused_until = -math.inf
        self._most = max(1, math.floor(per_second))  # messages the platform takes in a second
        self._flying = 0  # granted, not answered yet: they may reach the platform any time
        self._answered: deque[float] = deque()  # answers of the last second, oldest first
        self._chat_free: dict[Hashable, float] = {}  # next outbox message may go then
        self._reply_free: dict[Hashable, float] = {}  # next reply may go then (after outbox)
        self._holding: set[Hashable] = set()  # chats with an outbox message on its way
        self._lock = asyncio.Lock()

    # --- outbox messages ------------------------------------------------------------------

    async def wait_chat(self, chat: Hashable) -> None:
        """Wait until `chat` may get its next outbox message (and a pause is over), and hold
        the chat until `done`."""
        while True:
            now = self._clock()
            wait = max(self._chat_free.get(chat, -math.inf), self._paused_until) - now
            if chat in self._holding:
                wait = max(wait, self.per_chat_seconds)
            if wait <= RESOLUTION:
                self._holding.add(chat)
                return
            await self._sleep(wait)

    async def acquire(self) -> None:
        """Wait for a token and take it; grants go one at a time, in order of arrival."""
        async with self._lock:
            while True:
                now = self._clock()
                window = self._window_wait(now)
                if window is None:  # a full second's worth in flight: until an answer
                    await self._sleep(1 / self.rate)
                    continue
                wait = max(self._paused_until - now, window, self._refill(now))
                if wait <= RESOLUTION:
                    self._grant()
                    return
                await self._sleep(wait)

    # --- direct replies -------------------------------------------------------------------

    async def reply_turn(self, chat: Hashable, sent_before: int = 0) -> None:
        """Wait until a direct reply to `chat` may go, and count it. `sent_before`: messages
        already sent to `chat` in answer to the same message of the person; beyond the
        chat's burst they are spaced as outbox messages are."""
        while True:
            now = self._clock()
            free = self._reply_free.get(chat, -math.inf)
            if sent_before >= self.per_chat_burst:
                free = max(free, self._chat_free.get(chat, -math.inf))
            wait = max(self._paused_until - now, free - now)
            if wait <= RESOLUTION:
                self._refill(now)
                self._grant()
                return
            await self._sleep(wait)

    # --- what the platform said -----------------------------------------------------------

    def done(self, chat: Hashable, outbox: bool = True, granted: bool = True) -> None:
        """The platform answered a message to `chat` (or the call failed): space the next one
        from now. `granted` False: the message never took its token (nothing was sent)."""
        now = self._clock()
        self._holding.discard(chat)
        if not granted:
            return
        self._flying = max(0, self._flying - 1)
        self._answered.append(now)
        if len(self._chat_free) > FORGET_CHATS_ABOVE:
            self._chat_free = {c: t for c, t in self._chat_free.items() if t > now}
            self._reply_free = {c: t for c, t in self._reply_free.items() if t > now}
        free = now + self.per_chat_seconds + SAFETY
        self._chat_free[chat] = free
        if outbox:
            self._reply_free[chat] = free
        else:
            self._reply_free.pop(chat, None)

    def pause(self, seconds: float) -> None:
        """Send nothing for `seconds` (a flood wait applies to the whole bot); afterwards the
        bucket starts empty."""
        self._paused_until = max(self._paused_until, self._clock() + seconds + SAFETY)
        self._tokens = min(self._tokens, 0.0)
        self._stamp = self._paused_until

    def paused_for(self) -> float:
        """Seconds left of a flood wait (0 when none)."""
        return max(0.0, self._paused_until - self._clock())

    async def wait_pause(self) -> None:
        while (wait := self._paused_until - self._clock()) > RESOLUTION:
            await self._sleep(wait)

    # --- the bucket and the window --------------------------------------------------------

    def _refill(self, now: float) -> float:
        """Add the tokens earned since the last look; seconds until one token is there."""
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def _window_wait(self, now: float) -> float | None:
        """Seconds until one more message keeps every second the platform counts within
        `per_second` arrivals; None while a second's worth is in flight (an answer frees)."""
        answered = self._answered
        while answered and answered[0] + WINDOW + SAFETY <= now:
            answered.popleft()
        over = self._flying + len(answered) - self._most + 1  # answers that must age out
        if over <= 0:
            return 0.0
        if over > len(answered):
            return None
        return answered[over - 1] + WINDOW + SAFETY - now

    def _grant(self) -> None:
        self._tokens -= 1
        self._flying += 1
