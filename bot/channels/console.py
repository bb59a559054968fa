"""The console channel: the same conversations in a terminal, or scripted through a pipe.

Options are numbered; type the number to choose. A photo is given as a file path (the file
is copied into the media folder); a location as "lat,lon". /quit or end of input stops.
"""

from __future__ import annotations

import re
import shutil
import sys
import uuid
from pathlib import Path
from typing import TextIO

from bot.channels.base import Limits
from handlers.dispatcher import Dispatcher
from handlers.messages import Incoming, Location, Option, Photo, Reply, TryLater

CHANNEL = "console"
COORDINATES = re.compile(r"^\s*(-?\d{1,2}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)\s*$")


class ConsoleChat:
    """One person talking to Sanad through text streams; the console's `Channel`: a typed
    line is its event, a printed block its rendering (no limits: a terminal scrolls)."""

    name = CHANNEL
    limits = Limits(text=sys.maxsize, caption=sys.maxsize)

    def __init__(
        self,
        dispatcher: Dispatcher,
        person: str,
        media_dir: Path,
        out: TextIO,
        language_code: str | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.person = person
        self.media_dir = media_dir
        self.out = out
        self.language_code = language_code
        self.options: tuple[Option, ...] = ()
        self.expect: str | None = None

    def send(self, line: str) -> None:
        """Give Sanad one typed line and print what it answers."""
        incoming = self.incoming(line)
        try:
            replies = self.dispatcher.handle(incoming)
        except TryLater:  # no platform to deliver it again: the person types it again
            replies = [self.dispatcher.sorry(incoming)]
        self.show(replies)
        self.dispatcher.delivered(incoming)

    def parse(self, event: object) -> Incoming | None:
        return self.incoming(event) if isinstance(event, str) else None

    def render(self, reply: Reply) -> list[str]:
        """The reply as printed: its text, its options numbered, what is attached."""
        lines = [_plain(reply.text)]
        lines += [f"  {n}) {_plain(option.label)}" for n, option in enumerate(reply.options, 1)]
        lines += [f"  [{attached}]" for attached in (reply.photo, reply.document) if attached]
        return ["\n".join(lines) + "\n"]

    async def send_reply(self, address: str, reply: Reply) -> None:
        self.show([reply])

    def incoming(self, line: str) -> Incoming:
        text = line.strip()
        base = {
            "channel": CHANNEL,
            "chat_id": self.person,
            "sender": self.person,
            "sender_name": self.person,
            "language_code": self.language_code,
        }
        if text.isdecimal() and 1 <= int(text) <= len(self.options):
            return Incoming(**base, choice=self.options[int(text) - 1].value)
        photo = _file(text) if self.expect == "photo" else None
        if photo is not None:
            return Incoming(**base, photo=Photo(path=str(self.keep(photo))))
        match = COORDINATES.match(text)
        if self.expect == "location" and match:
            return Incoming(**base, location=Location(float(match[1]), float(match[2])))
        return Incoming(**base, text=text)

    def keep(self, source: Path) -> Path:
        """Copy a photo into the media folder under a fresh name; Sanad keeps the file."""
        self.media_dir.mkdir(parents=True, exist_ok=True)
        target = self.media_dir.resolve() / f"{uuid.uuid4().hex}{source.suffix.lower()}"
        shutil.copyfile(source, target)
        return target

    def show(self, replies: list[Reply]) -> None:
        for reply in replies:
            for block in self.render(reply):
                print(block, file=self.out)
        if replies:
            self.options = replies[-1].options
            self.expect = replies[-1].expect

    def run(self, lines: TextIO, prompt: bool) -> None:
        """Read lines until end of input or /quit."""
        while True:
            if prompt:
                self.out.write("> ")
                self.out.flush()
            line = lines.readline()
            if not line or line.strip() in ("/quit", "/exit"):
                self.dispatcher.write_delivered()
                return
            if line.strip():
                self.send(line)


def _file(text: str) -> Path | None:
    """The file a typed path names; terminals quote a dropped file or escape its spaces."""
    candidates = [text]
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        candidates.append(text[1:-1])
    if "\\ " in text:
        candidates.append(text.replace("\\ ", " "))
    for candidate in candidates:
        path = Path(candidate).expanduser()
        if path.is_file():
            return path
    return None


def _plain(text: str) -> str:
    """Terminals do not apply bidi isolates; drop them so they do not show as marks."""
    return text.replace("\u2068", "").replace("\u2069", "")
