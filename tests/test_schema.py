"""The schema: Alembic's chain of migrations, and a start that does not load Alembic when the
database is already up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from storage.db import alembic_config, newest_revision, open_database

ROOT = Path(__file__).resolve().parent.parent


def test_the_newest_revision_is_alembics_single_head() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [newest_revision()]


def test_a_database_already_up_to_date_is_opened_without_importing_alembic(
    database_url: str,
) -> None:
    open_database(database_url).dispose()  # creates the schema, with Alembic
    opening = (
        "import sys; from storage.db import open_database; "
        f"open_database({database_url!r}).dispose(); "
        "print('alembic' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", opening], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
