"""Loading form files: a broken file stops start-up with an error naming the file and field."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from forms import yaml_file
from forms.schema import FormSpec

BUILT_IN = Path(__file__).parent / "definitions"


class FormFileError(Exception):
    """A form file that cannot be used, with the file and the place in it."""


def load_form(path: Path) -> FormSpec:
    try:
        text = yaml_file.read_text(path)
        data = yaml_file.load(path, text)
    except yaml_file.YamlSyntaxError as syntax:
        error = syntax.error
        raise FormFileError(f"{path}: not valid YAML{_near(text, error)}: {error}") from error
    except yaml_file.YamlFileError as error:
        raise FormFileError(str(error)) from error
    try:
        return FormSpec.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(_describe(path, data, e) for e in error.errors())
        raise FormFileError(f"{path}: {problems}") from error


def _near(text: str, error: yaml.YAMLError) -> str:
    """The field a YAML syntax error is in or after; the parser itself only knows the line."""
    mark = getattr(error, "problem_mark", None)
    if mark is None:
        return ""
    for line in reversed(text.splitlines()[: mark.line + 1]):
        match = re.match(r"\s*-?\s*name:\s*['\"]?([a-z][a-z0-9_]*)", line)
        if match:
            return f" near field '{match[1]}'"
    return ""


def _describe(path: Path, data: object, problem: ErrorDetails) -> str:
    place = list(problem["loc"])
    where = ".".join(str(p) for p in place) or "form"
    if len(place) >= 2 and place[0] == "fields" and isinstance(place[1], int):
        try:
            name = data["fields"][place[1]].get("name", "?")  # type: ignore[index]
        except (KeyError, IndexError, TypeError, AttributeError):
            name = "?"
        where = f"field '{name}' ({where})"
    elif len(place) >= 2 and place[0] == "rules" and isinstance(place[1], int):
        try:
            name = data["rules"][place[1]].get("name", "?")  # type: ignore[index]
        except (KeyError, IndexError, TypeError, AttributeError):
            name = "?"
        where = f"rule '{name}' ({where})"
    return f"{where}: {problem['msg']}"


def load_forms(directory: Path = BUILT_IN) -> dict[str, FormSpec]:
    """Every *.yaml form in `directory`, by id; ids and commands must not repeat."""
    forms: dict[str, FormSpec] = {}
    commands: dict[str, Path] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        form = load_form(path)
        if form.id in forms:
            raise FormFileError(f"{path}: form id '{form.id}' is used by another file")
        if form.command in commands:
            raise FormFileError(
                f"{path}: command '/{form.command}' is used by {commands[form.command]}"
            )
        forms[form.id] = form
        commands[form.command] = path
    if not forms:
        raise FormFileError(f"{directory}: no form files (*.yaml)")
    return forms
