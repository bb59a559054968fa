"""What a running bot imports: the command-line parts of its libraries stay out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
import bot.cli, bot.channels.telegram, bot.background
import httpx
print(json.dumps({
    "loaded": sorted(m for m in ("click", "pygments", "prometheus_client") if m in sys.modules),
    "client": httpx.Client.__module__,
    "cli": httpx.main.__module__,
}))
"""


def test_the_bot_imports_neither_httpx_cli_nor_prometheus_without_metrics() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    # httpx works as installed without its `cli` extra: the client is there, `httpx.main`
    # is httpx's own stand-in that says the extra is missing.
    assert found == {"loaded": [], "client": "httpx", "cli": "httpx"}
