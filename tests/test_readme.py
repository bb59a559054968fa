"""README teaches what CI runs, and its links and the docs' lead somewhere."""

from __future__ import annotations

import re

from tests.conftest import ROOT

#: Written on another branch (WhatsApp); linked from README's heading already.
ELSEWHERE = {"docs/whatsapp.md"}


def quick_start() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start")[1].split("\n## ")[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_the_quick_start_is_two_commands_and_ci_runs_the_second() -> None:
    install_and_demo, install_and_test = quick_start()
    assert install_and_demo.endswith("-m bot demo")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == install_and_test


def test_every_link_of_readme_and_docs_leads_to_a_file() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text("utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            path = (page.parent / target).resolve()
            if not path.exists() and str(path.relative_to(ROOT)) not in ELSEWHERE:
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken
