"""Reproducible installs: every dependency is bounded below its next major version, and the
lock file CI installs with pins each of them at a version the bounds allow."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return [Requirement(text) for text in [*project["dependencies"], *extras]]


def locked() -> dict[str, Version]:
    pins = re.findall(
        r"^([A-Za-z0-9._-]+)==([^\s;]+)", (ROOT / "requirements.lock").read_text(), re.MULTILINE
    )
    return {canonicalize_name(name): Version(version) for name, version in pins}


def test_every_dependency_has_an_upper_bound() -> None:
    unbounded = [
        str(r) for r in declared() if not any(s.operator in ("<", "<=", "~=") for s in r.specifier)
    ]
    assert unbounded == []


def test_the_lock_pins_every_dependency_within_its_bounds() -> None:
    pins = locked()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements.lock: run scripts/lock.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock has {name}=={pins[name]}, outside {requirement.specifier}"
        )


def test_ci_installs_with_the_lock() -> None:
    run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"pip install (--constraint|-c) requirements\.lock", run)
