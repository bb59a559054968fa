"""The shape of the code, read from its imports (every import, also those inside functions):

- handlers never import one another: the router owns navigation (handlers reach the menu,
  the language question, another command through the Context); so no cycle among them;
- only bot/channels/ imports a messaging platform's library or an HTTP server, and of
  python-telegram-bot only the client (`Bot`, `Update`, its requests), not its Application
  (`telegram.ext`): updates come in through our own polling loop and webhook;
- nothing the product installs imports the tests, and the tests (the fakes among them) are
  not installed.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_LIBRARIES = ("telegram", "httpx", "starlette", "uvicorn")
#: Handler modules every handler may use: what they all share.
SHARED = {"handlers.context", "handlers.messages", "handlers.permissions", "handlers.state"}
#: The composition of the handlers: the router routes to them, the dispatcher runs the router.
COMPOSITION = {"handlers.router", "handlers.dispatcher"}


def installed_patterns() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(pyproject["tool"]["setuptools"]["packages"]["find"]["include"])


def installed_modules() -> dict[str, Path]:
    """Module name -> file, for every module of the packages pyproject.toml installs."""
    patterns = installed_patterns()
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0].startswith("."):
            continue
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        package = ".".join(relative.parent.parts)
        if parts and package and any(fnmatch(package, pattern) for pattern in patterns):
            found[".".join(parts)] = path
    return found


def imports_of(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """Every module `module` imports (absolute names), with its line."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base, node.lineno
            for alias in node.names:  # `from handlers import menu` imports handlers.menu
                if f"{base}.{alias.name}" in known:
                    yield f"{base}.{alias.name}", node.lineno


def graph() -> dict[str, list[tuple[str, int]]]:
    modules = installed_modules()
    known = set(modules)
    return {name: list(imports_of(name, path, known)) for name, path in modules.items()}


def is_handler(module: str) -> bool:
    return module.startswith("handlers.") and module not in SHARED | COMPOSITION


def test_the_packages_are_found() -> None:
    modules = installed_modules()
    assert {"handlers.router", "handlers.menu", "bot.channels.telegram", "storage.db"} <= set(
        modules
    )


def test_no_handler_imports_another_handler() -> None:
    found = [
        f"{module} imports {imported} (line {line})"
        for module, imports in graph().items()
        if is_handler(module)
        for imported, line in imports
        if is_handler(imported) and imported != module
    ]
    assert not found, (
        "a handler reaches another through ctx (see handlers.context.Navigation):\n"
        + ("\n".join(found))
    )


def test_no_import_cycle_among_handlers() -> None:
    edges = {
        module: {imported for imported, _ in imports if imported.startswith("handlers.")}
        for module, imports in graph().items()
        if module.startswith("handlers.")
    }
    cycles = []
    state: dict[str, str] = {}  # module -> "open" while on the path, "done" after

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(edges.get(module, ())):
            if state.get(imported) == "open":
                cycles.append(" -> ".join([*path[path.index(imported) :], imported]))
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_only_channels_import_a_platform_library() -> None:
    found = [
        f"{module} imports {imported} (line {line})"
        for module, imports in graph().items()
        if not module.startswith("bot.channels.")
        for imported, line in imports
        if imported.split(".")[0] in PLATFORM_LIBRARIES
    ]
    assert not found, "\n".join(found)


def test_telegram_is_a_client_library_not_a_framework() -> None:
    found = [
        f"{module} imports {imported} (line {line})"
        for module, imports in graph().items()
        for imported, line in imports
        if imported == "telegram.ext" or imported.startswith("telegram.ext.")
    ]
    assert not found, "\n".join(found)


def test_the_tests_and_their_fakes_are_not_part_of_the_product() -> None:
    assert not any(fnmatch("tests", p) or fnmatch("tests.fakes", p) for p in installed_patterns())
    found = [
        f"{module} imports {imported} (line {line})"
        for module, imports in graph().items()
        for imported, line in imports
        if imported.split(".")[0] in ("tests", "bench")
    ]
    assert not found, "\n".join(found)


def test_the_checks_see_what_they_look_for(tmp_path: Path) -> None:
    """The import reader finds `from package import module`, relative and lazy imports."""
    source = tmp_path / "menu.py"
    source.write_text(
        "from handlers import reporting\nfrom . import language\ndef f():\n    import telegram\n"
    )
    known = {"handlers.reporting", "handlers.language"}
    found = {name for name, _ in imports_of("handlers.menu", source, known)}
    assert {"handlers.reporting", "handlers.language", "telegram"} <= found
