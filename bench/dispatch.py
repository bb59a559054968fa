"""The dispatcher alone: CPU and wall time per update, with and without a piece of speed code.

    python -m bench.dispatch [--workers 50] [--batch 1] [--rounds 9] [--database URL]
                             [--variants speed speed-again two-queries pool-per-transaction cold]

The workers of `bench.workers` (registered people, one association each) fill the recycling
form, eleven updates a report, straight through `Dispatcher.handle` (no channel, no HTTP):
`--batch 1` applies each update in its own transaction (the webhook, WhatsApp, a paced load),
`--batch N` N updates (one per worker) together (`Dispatcher.handle_together`, as Telegram's
long polling under load). Each round runs one report of every worker under each variant in
turn (the order rotating from round to round), so that the machine's load falls on all the
variants alike; the figures are the medians of the rounds, and the medians of each round's
ratio to the first variant's (`speed`). CPU is this process's: a SQLite file's work is in
it, a PostgreSQL server's is not (its round trips are in the wall time).

The variants put back, one at a time, the simple code a piece of speed code replaced:

* `speed`: the code as it is (`speed-again`: the same once more, the noise floor);
* `two-queries`: the chat's state and the person read by `read_state` then `find_member`
  instead of `read_chat`'s one joined query;
* `pool-per-transaction`: each update's transaction on a connection taken from the pool
  (`engine.begin()`) instead of the thread's kept one (a batch still keeps one throughout);
* `cold`: `storage.hot.HotStatement` off (its statements through Core, as every other).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from bench.common import bench_settings, database
from bench.workers import FIRST_USER_ID, WARMUP_WORKERS, prepare, typed_numbers
from bot.app import Sanad, assemble
from handlers import dispatcher as dispatcher_module
from handlers.dispatcher import Dispatcher
from handlers.messages import Incoming, Reply
from storage.conversations import StoredChat, read_state
from storage.hot import HotStatement
from storage.people import MemberRows, find_member

Variant = Callable[[], AbstractContextManager[None]]


@contextmanager
def speed() -> Iterator[None]:
    yield


def read_in_two(
    runner: Any, chat_key: str, channel: str, address: str
) -> tuple[StoredChat, MemberRows | None]:
    return read_state(runner, chat_key), find_member(runner, channel, address)


@contextmanager
def two_queries() -> Iterator[None]:
    kept = dispatcher_module.read_chat
    dispatcher_module.read_chat = read_in_two  # type: ignore[assignment]
    try:
        yield
    finally:
        dispatcher_module.read_chat = kept


@contextmanager
def _pooled(self: Dispatcher) -> Iterator[Any]:
    if self.in_batch:
        yield self._connection()
        return
    with self.engine.begin() as connection:
        yield connection


@contextmanager
def pool_per_transaction() -> Iterator[None]:
    kept = Dispatcher._transaction
    Dispatcher._transaction = _pooled  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Dispatcher._transaction = kept  # type: ignore[method-assign]


@contextmanager
def cold() -> Iterator[None]:
    kept = HotStatement._compiled_for
    HotStatement._compiled_for = lambda self, runner, params: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        HotStatement._compiled_for = kept  # type: ignore[method-assign]


VARIANTS: dict[str, Variant] = {
    "speed": speed,
    "speed-again": speed,  # the same code: the spread of identical variants
    "two-queries": two_queries,
    "pool-per-transaction": pool_per_transaction,
    "cold": cold,
}


class Worker:
    """One registered person filling reports; `next_update` is what they send next."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.sender = str(FIRST_USER_ID + WARMUP_WORKERS + number)
        self.update_id = 0
        self.report = 0
        self.step = 0
        self.replies: list[Reply] = []

    def _button(self, value: str) -> str:
        for option in self.replies[-1].options:
            if option.value.partition(":")[2] == value:
                return option.value
        raise RuntimeError(f"no button {value!r} in {self.replies[-1]}")

    def next_update(self) -> Incoming:
        """The next update of this worker's report."""
        self.update_id += 1
        text: str | None = None
        choice: str | None = None
        if self.step == 0:
            text = "/recycling"
        elif self.step == 1:
            weeks = [o.value for o in self.replies[-1].options]
            choice = weeks[self.report % 2]
        elif self.step == 2 and "already exists" in self.replies[-1].text:
            choice = self._button("yes")
            self.step -= 1
        elif 2 <= self.step <= 8:
            text = typed_numbers(self.number, self.report)[self.step - 2]
        elif self.step == 9:
            choice = self._button("skip")
        else:
            choice = self._button("confirm")
        self.step += 1
        return Incoming(
            channel="telegram",
            chat_id=self.sender,
            sender=self.sender,
            update_id=f"{self.sender}-{self.update_id}",
            language_code="en",
            text=text,
            choice=choice,
        )

    def took(self, replies: list[Reply]) -> bool:
        """Keep the replies; whether the report is done."""
        if replies:
            self.replies = replies
        if self.step == 11:
            if not any("REC-" in r.text or "replaces" in r.text for r in replies):
                raise RuntimeError(f"worker {self.number}: not saved: {replies}")
            self.step = 0
            self.report += 1
            return True
        return False


def one_report_each(dispatcher: Dispatcher, workers: list[Worker], batch: int) -> int:
    """Every worker files one report; returns the updates applied."""
    updates = 0
    pending = list(workers)
    while pending:
        still: list[Worker] = []
        for start in range(0, len(pending), batch):
            group = pending[start : start + batch]
            incoming = [w.next_update() for w in group]
            if batch > 1:
                together = dispatcher.handle_together(incoming)
                if together.alone is not None:
                    raise RuntimeError(f"update {together.alone} of a batch failed")
                replies = together.replies
            else:
                replies = [dispatcher.handle(i) for i in incoming]
            for worker, update, answer in zip(group, incoming, replies, strict=True):
                dispatcher.delivered(update)
                if not worker.took(answer):
                    still.append(worker)
            updates += len(group)
        pending = still
    return updates


def run(sanad: Sanad, args: argparse.Namespace) -> dict[str, list[tuple[float, float]]]:
    workers = [Worker(n) for n in range(args.workers)]
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in args.variants}
    with speed():
        one_report_each(sanad.dispatcher, workers, args.batch)  # warm-up
    for round_ in range(args.rounds):
        shift = round_ % len(args.variants)
        for name in args.variants[shift:] + args.variants[:shift]:
            with VARIANTS[name]():
                cpu, wall = time.process_time(), time.perf_counter()
                updates = one_report_each(sanad.dispatcher, workers, args.batch)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            results[name].append((1000 * cpu / updates, 1000 * wall / updates))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dispatch", description=__doc__)
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1, help="updates a transaction (1)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--database", help="a database URL (default: a fresh SQLite file)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="sanad-bench-") as tmp,
        database(args.database, Path(tmp)) as (url, shown),
    ):
        sanad = assemble(bench_settings(url, Path(tmp)))
        try:
            prepare(sanad, WARMUP_WORKERS + args.workers)
            load = Path("/proc/loadavg").read_text().split()[:3]
            results = run(sanad, args)
            load_after = Path("/proc/loadavg").read_text().split()[:3]
        finally:
            sanad.close()
    print(f"database: {shown}; {args.workers} workers, batch {args.batch}, {args.rounds} rounds")
    print(f"load average: {' '.join(load)} -> {' '.join(load_after)}")
    print(
        f"{'variant':<22} {'CPU ms/update':>14} {'wall ms/update':>15} {'CPU / first':>12}"
        f" {'wall / first':>13}  (medians; CPU quartiles)"
    )
    first = results[args.variants[0]]
    for name, figures in results.items():
        cpu = [c for c, _ in figures]
        wall = [w for _, w in figures]
        # Round by round against the first variant (the same stretch of the machine's load).
        cpu_ratio = statistics.median(c / f[0] for (c, _), f in zip(figures, first, strict=True))
        wall_ratio = statistics.median(w / f[1] for (_, w), f in zip(figures, first, strict=True))
        print(
            f"{name:<22} {statistics.median(cpu):>14.3f} {statistics.median(wall):>15.3f}"
            f" {cpu_ratio:>12.3f} {wall_ratio:>13.3f}  ({_quartiles(cpu)})"
        )
    return 0


def _quartiles(values: list[float]) -> str:
    if len(values) < 2:
        return "-"
    q = statistics.quantiles(values, n=4)
    return f"{q[0]:.3f}-{q[2]:.3f}"


if __name__ == "__main__":
    sys.exit(main())
