"""House rules that CI holds the code to: formatted, linted and type-checked.

The tools run as subprocesses on the tree this test file belongs to; each failure prints what
the tool said, so the fix is in the output.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ["bot", "handlers", "forms", "storage", "locales", "exports", "monitoring", "outbox"]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def _ruff() -> str:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: it is in the test extra (pip install -e '.[test]')")
    return ruff


def test_the_code_is_formatted_as_ruff_format_writes_it() -> None:
    result = _run(_ruff(), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_finds_nothing_to_fix() -> None:
    result = _run(_ruff(), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_product_packages_type_check() -> None:
    result = _run(sys.executable, "-m", "mypy", *PRODUCT)
    assert result.returncode == 0, result.stdout + result.stderr
