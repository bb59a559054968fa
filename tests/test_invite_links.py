"""/invite answers with the link of the channel it was typed in: one registry by channel name
(bot.invite_links), handlers blind to it. Bulk invitations take their links from the same
registry (tests/test_invitations.py: a table comes back with t.me and wa.me links).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from bot.app import Sanad
from tests.harness import Telegram, invite, plain
from tests.test_cli import Shell, shell  # noqa: F401  (the fixture)
from tests.whatsapp_harness import WhatsAppChat

COORDINATOR = "97333000077"


def links_in(text: str) -> list[str]:
    return [word for word in text.split() if word.startswith("https://")]


async def test_invite_typed_on_whatsapp_gives_a_wa_me_link_that_registers(sanad: Sanad) -> None:
    async with WhatsAppChat(sanad) as wa:
        huda = wa.person(COORDINATOR, "Huda")
        await huda.says(f"start {invite(sanad, 'bh_young_ladies', 'coordinator')}")
        await huda.taps("English")
        await huda.says("/invite")
        await huda.taps("Rural Girls Renaissance Association")
        await huda.says("Mariam Ali")
        answer = plain(huda.everything)
        assert "Invitation for Mariam Ali" in answer
        assert "t.me" not in answer
        link = links_in(answer)[0]
        assert link.startswith(f"https://wa.me/{wa.api.display_number}?text=start%20")
        assert "Open this link, then press Start or Send:" in answer

        mariam = wa.person("97333000078", "M.")
        [typed] = parse_qs(urlparse(link).query)["text"]
        await mariam.says(typed)
        assert "مرحبًا بك في سند يا Mariam Ali!" in mariam.everything  # Arabic until she chooses
        assert wa.api.refused == []


async def test_invite_typed_on_telegram_still_gives_a_t_me_link(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        huda = telegram.person(510, "Huda", language="en")
        await huda.says(f"/start {invite(sanad, 'bh_young_ladies', 'coordinator')}")
        await huda.taps("English")
        await huda.says("/invite")
        await huda.taps("Rural Girls Renaissance Association")
        await huda.says("Mariam Ali")
        [link, *_] = links_in(plain(huda.everything))
    assert link.startswith("https://t.me/") and "?start=" in link
