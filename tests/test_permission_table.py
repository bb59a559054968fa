"""The roles × actions table: docs/roles.md shows the code's table, and every command of it
answers every role as the table says."""

from __future__ import annotations

import re

import pytest

from bot.app import Sanad
from handlers.permissions import PERMISSIONS, UNREGISTERED
from tests.conftest import ROOT
from tests.harness import Telegram, invite

ROLES = (UNREGISTERED, "worker", "coordinator", "admin")
ORGANIZATION = {
    "worker": "bh_sitra_women",
    "coordinator": "bh_young_ladies",
    "admin": "arab_network",
}


def test_the_docs_show_the_table_of_the_code() -> None:
    readme = (ROOT / "docs" / "roles.md").read_text(encoding="utf-8")
    block = readme.split("<!-- permissions:start -->")[1].split("<!-- permissions:end -->")[0]
    shown = {}
    for line in block.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        action = re.fullmatch(r"`/(\w+)`", cells[0])
        assert action, line
        shown[action[1]] = frozenset(r for r, c in zip(ROLES, cells[1:], strict=True) if c == "✓")
    assert shown == PERMISSIONS


@pytest.mark.parametrize("role", ROLES)
async def test_every_command_answers_every_role_as_the_table_says(sanad: Sanad, role: str) -> None:
    async with Telegram(sanad) as telegram:
        person = telegram.person(900, "Someone", language="en")
        if role != UNREGISTERED:
            await person.says(f"/start {invite(sanad, ORGANIZATION[role], role)}")
            await person.taps("English")
        for action, allowed in PERMISSIONS.items():
            await person.says("/cancel" if role != UNREGISTERED else "/help")
            await person.says(f"/{action}")
            refused = (
                "not registered" in person.everything or "is not for your role" in person.everything
            )
            assert refused is (role not in allowed), (role, action, person.everything)
