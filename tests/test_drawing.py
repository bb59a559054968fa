"""Digest charts drawn in a short-lived child process: the same PNG as drawn in place, errors
carried back, the child ended when idle and started again when needed, and a bot that never
imports matplotlib."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from monitoring.chart import trend_chart
from monitoring.drawing import ChartProcess, Series

ARABIC = (
    "إنتاج إعادة التدوير · \u2068جمعية نهضة فتاة الريف\u2069",
    ["١ مارس", "٨ مارس", "١٥ مارس"],
    [Series("الورق", [120.0, None, 95.5]), Series("الألمنيوم", [10.0, 12.0, 0.0])],
)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_child_draws_the_png_trend_chart_draws(tmp_path: Path) -> None:
    title, labels, series = ARABIC
    charts = ChartProcess()
    drawn = charts.draw_chart(
        title, labels, series, language="ar", path=tmp_path / "child.png", y_label="كغ"
    )
    here = trend_chart(
        title, labels, series, language="ar", path=tmp_path / "here.png", y_label="كغ"
    )
    assert drawn == tmp_path / "child.png"
    assert drawn.read_bytes() == here.read_bytes()


def test_a_chart_the_child_refuses_raises_here(tmp_path: Path) -> None:
    charts = ChartProcess()
    with pytest.raises(ValueError, match="3 periods"):
        charts.draw_chart(
            "t", ["a", "b", "c"], [Series("Paper", [1, 2])], language="en", path=tmp_path / "x"
        )
    # The child is still there for the next one.
    path = charts.draw_chart("t", ["a"], [Series("Paper", [1])], language="en", path=tmp_path / "y")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_an_idle_child_ends_and_the_next_chart_starts_another(tmp_path: Path) -> None:
    charts = ChartProcess(idle_seconds=0.3)
    charts.draw_chart("t", ["a"], [Series("Paper", [1])], language="en", path=tmp_path / "1.png")
    wait_until(lambda: not charts.running)
    path = charts.draw_chart(
        "t", ["a"], [Series("Paper", [2])], language="fr", path=tmp_path / "2.png"
    )
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_the_bot_does_not_import_matplotlib() -> None:
    probe = (
        "import sys, bot.app, bot.background, handlers.monitoring, monitoring.monitor; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == "[]"
