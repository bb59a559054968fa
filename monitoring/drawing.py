"""Digest charts drawn in a short-lived process of their own, so that the bot never carries
matplotlib.

Importing matplotlib and drawing the first chart adds about 55 MB to a process, and each
chart drawn after grows it by a few more (font and text-layout caches, one font object per
drawing thread); none of it goes back to the system. `bench.rss` measured `python -m bot run`
with a million reports at 231 MiB peak once every coordinator had their digests drawn in
the bot, against 104 MiB before the first chart. So `draw_chart` hands the chart to a child
process (`python -m monitoring.drawing`, which imports only `monitoring.chart`), started on
the first chart and ended after `IDLE_SECONDS` without one: a digest run pays the import once,
and the memory is returned when the child exits.

The child reads one JSON request a line on stdin and answers one JSON line on its own copy
of stdout (its stdout proper goes to stderr, so that nothing matplotlib prints can break the
exchange). Requests are one at a time (a lock); a child that died is replaced and the request
sent again once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)
IDLE_SECONDS = 30.0  # a child with no chart to draw for that long is ended
_ROOT = Path(__file__).resolve().parent.parent  # where `monitoring` is imported from


@dataclass(frozen=True)
class Series:
    """One line or one bar colour: a label and one value per period (None = no report)."""

    label: str
    values: list[float | None]


class ChartError(RuntimeError):
    """The chart process could not draw a chart."""


class ChartProcess:
    """The child process, started when needed and ended after `idle_seconds` without a
    chart. Safe to use from several threads (one chart at a time)."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._used = 0.0  # time.monotonic() of the last request
        self._timer: threading.Timer | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def draw_chart(
        self,
        title: str,
        period_labels: list[str],
        series: Sequence[Series],
        *,
        language: str,
        path: Path,
        y_label: str = "",
        digits: str = "latn",
    ) -> Path:
        """`monitoring.chart.trend_chart`, drawn in the child; returns `path`."""
        answer = self._ask(
            {
                "title": title,
                "period_labels": period_labels,
                "series": [[s.label, s.values] for s in series],
                "language": language,
                "path": str(path),
                "y_label": y_label,
                "digits": digits,
            }
        )
        if "error" in answer:
            kind = ValueError if answer.get("type") == "ValueError" else ChartError
            raise kind(answer["error"])
        return Path(answer["path"])

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        line = json.dumps(request) + "\n"
        with self._lock:
            for attempt in (1, 2):
                process = self._running()
                assert process.stdin is not None and process.stdout is not None
                try:
                    process.stdin.write(line)
                    process.stdin.flush()
                    answer = process.stdout.readline()
                except (BrokenPipeError, OSError):
                    answer = ""
                if answer:
                    self._used = time.monotonic()
                    self._arm()
                    result: dict[str, Any] = json.loads(answer)
                    return result
                self._end()
                if attempt == 2:
                    raise ChartError("the chart process stopped without an answer")
                log.warning("the chart process stopped; starting another")
        raise AssertionError("unreachable")

    def _running(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p
            )
            self._process = subprocess.Popen(
                [sys.executable, "-m", "monitoring.drawing"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                env=env,
            )
        return self._process

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self.idle_seconds, self._end_if_idle)
        self._timer.daemon = True
        self._timer.start()

    def _end_if_idle(self) -> None:
        with self._lock:
            if time.monotonic() - self._used >= self.idle_seconds * 0.99:
                self._end()

    def _end(self) -> None:
        """Close the child's stdin (it exits on end of input) and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


#: The process's chart drawer.
draw_chart = ChartProcess().draw_chart


# --- the child -------------------------------------------------------------------------------


def serve(requests: IO[str], answers: IO[str]) -> None:
    """Draw each request of `requests` until its end, answering each on `answers`."""
    from monitoring.chart import trend_chart

    for line in requests:
        request = json.loads(line)
        try:
            path = trend_chart(
                request["title"],
                request["period_labels"],
                [Series(label, values) for label, values in request["series"]],
                language=request["language"],
                path=Path(request["path"]),
                y_label=request["y_label"],
                digits=request["digits"],
            )
            answer: dict[str, Any] = {"path": str(path)}
        except Exception as error:  # the parent raises it
            log.exception("a chart could not be drawn")
            answer = {"error": str(error), "type": type(error).__name__}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def main() -> None:
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to stderr
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    serve(sys.stdin, answers)


if __name__ == "__main__":
    main()
