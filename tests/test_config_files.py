"""Configuration files are input too: a network or form file far too large, nested too deep or
full of expanding aliases is refused quickly with an error naming the file, never a traceback."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from forms.loader import FormFileError, load_form
from storage.network import NetworkError, read_network
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "network.yaml"
FORM = ROOT / "forms" / "definitions" / "recycling.yaml"

READERS: list[tuple[str, Callable[[Path], object], type[Exception]]] = [
    ("network", read_network, NetworkError),
    ("form", load_form, FormFileError),
]


def deeply_nested(depth: int) -> str:
    return "network: " + "[" * depth + "]" * depth + "\n"


def flow_nested(depth: int) -> str:
    return "network:\n" + "".join("  " * (n + 1) + f"k{n}:\n" for n in range(depth)) + "x: 1\n"


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, levels):
        refs = ", ".join([f"*a{n - 1}"] * 9)
        lines.append(f"a{n}: &a{n} [{refs}]")
    return "\n".join(lines) + "\n"


HOSTILE = {
    "nested 100,000 levels deep": (deeply_nested(100_000), "nested more than"),
    "nested as mappings 200 levels deep": (flow_nested(200), "nested more than"),
    "aliases expanding to billions of values": (billion_laughs(), "aliases"),
    "larger than a megabyte": ("network:\n" + "# padding\n" * 120_000, "larger than"),
}


@pytest.mark.parametrize("kind,read,error", READERS, ids=[r[0] for r in READERS])
@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_configuration_file_is_refused_quickly_naming_the_file(
    tmp_path: Path,
    kind: str,
    read: Callable[[Path], object],
    error: type[Exception],
    case: str,
) -> None:
    text, reason = HOSTILE[case]
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text, encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(error) as refused:
        read(path)
    elapsed = time.perf_counter() - started
    assert str(path) in str(refused.value)
    assert reason in str(refused.value)
    print(f"\n{kind}, {case}: refused in {elapsed * 1000:.0f} ms")


def test_the_shipped_files_are_within_bounds(tmp_path: Path) -> None:
    assert read_network(EXAMPLE).groups
    for form in sorted((ROOT / "forms" / "definitions").glob("*.yaml")):
        assert load_form(form).fields


def test_a_file_that_is_not_yaml_still_names_the_field_near_the_error(tmp_path: Path) -> None:
    broken = tmp_path / "recycling.yaml"
    shutil.copy(FORM, broken)
    broken.write_text(broken.read_text(encoding="utf-8") + "\n  - name: oops\n   bad: [\n")
    with pytest.raises(FormFileError, match=r"recycling\.yaml: not valid YAML"):
        load_form(broken)
