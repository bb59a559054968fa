"""The console channel: the same conversations in a terminal, or scripted through a pipe.

Options are numbered; type the number to choose. Numbers always refer to the options last
shown: a message without options (/help, /status) leaves them as they were. On a question
that takes a number, or a typed answer, a typed number is the answer: its options are shown
as "#1", "#2" and chosen by typing that ("#1" also works everywhere else). A photo is given as
a file path (the file is copied into the media folder); a location as "lat,lon". /quit or
end of input stops.
"""

from __future__ import annotations

import re
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any, TextIO

from bot.channels.base import Limits
from handlers.dispatcher import Dispatcher
from handlers.messages import Incoming, Location, Option, Photo, Reply, TryLater

CHANNEL = "console"
COORDINATES = re.compile(r"^\s*(-?\d{1,2}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)\s*$")
MARKED = re.compile(r"^#\s*(\d+)$")  # "#2": option 2, also where a typed number is an answer


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
        self.options: tuple[Option, ...] = ()  # the options last shown
        self.expect: str | None = None
        # Whether a bare typed number chooses an option (else it is typed text: an answer).
        self.numbers_choose = False

    def send(self, line: str) -> None:
        """Give Sanad one typed line and print what it answers."""
        incoming = self.incoming(line)
        try:
            replies = self.dispatcher.handle(incoming)
        except TryLater:  # no platform to deliver it again: the person types it again
            replies = [self.dispatcher.sorry(incoming)]
        self.show(replies, after_command=incoming.command is not None)
        self.dispatcher.delivered(incoming)

    def parse(self, event: object) -> Incoming | None:
        return self.incoming(event) if isinstance(event, str) else None

    def render(self, reply: Reply, mark: str = "") -> list[str]:
        """The reply as printed: its text, its options numbered (`mark` before each number on
        a question that takes a typed number: "#1"), what is attached."""
        lines = [_plain(reply.text)]
        lines += [
            f"  {mark}{n}) {_plain(option.label)}" for n, option in enumerate(reply.options, 1)
        ]
        lines += [f"  [{attached}]" for attached in (reply.photo, reply.document) if attached]
        return ["\n".join(lines) + "\n"]

    async def send_reply(self, address: str, reply: Reply) -> str | None:
        self.show([reply])
        return None

    def incoming(self, line: str) -> Incoming:
        text = line.strip()
        base: dict[str, Any] = {
            "channel": CHANNEL,
            "chat_id": self.person,
            "sender": self.person,
            "sender_name": self.person,
            "language_code": self.language_code,
        }
        marked = MARKED.match(text)
        number = marked[1] if marked else text if self.numbers_choose else None
        if number is not None and number.isdecimal() and 1 <= int(number) <= len(self.options):
            return Incoming(**base, choice=self.options[int(number) - 1].value)
        photo = _file(text) if self.expect == "photo" else None
        if photo is not None:
            return Incoming(**base, photo=Photo(path=str(self.keep(photo))))
        match = COORDINATES.match(text)
        if self.expect == "location" and match:
            return Incoming(**base, location=Location(float(match[1]), float(match[2])))
        return Incoming(**base, text=text)

    def keep(self, source: Path) -> Path:
        """Copy a photo into the media folder under a fresh name; Sanad keeps the file."""
        self.media_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.media_dir.resolve() / f"{uuid.uuid4().hex}{source.suffix.lower()}"
        shutil.copyfile(source, target)
        target.chmod(0o600)  # a field photo is read by Sanad's owner only
        return target

    def show(self, replies: list[Reply], after_command: bool = False) -> None:
        """Print `replies` and remember the question they leave open. A command's answer
        without options or expectation (/help, /status) leaves the question before it open;
        any other answer without options is a question that takes typed text."""
        question = next((r for r in reversed(replies) if r.options or r.expect), None)
        if question is not None:
            self.options, self.expect = question.options, question.expect
            self.numbers_choose = question.expect != "number"
        elif replies and not after_command:
            self.expect, self.numbers_choose = None, False
        for reply in replies:
            mark = "" if self.numbers_choose or reply is not question else "#"
            for block in self.render(reply, mark):
                print(block, file=self.out)

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
