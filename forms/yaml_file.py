"""Reading a YAML configuration file (a form, the network) within bounds.

A file an operator edits by hand is still input: one far larger than any real configuration,
nested thousands of levels deep (PyYAML builds nested nodes by recursion: a traceback), or
with aliases that expand to billions of nodes (a minute of work, or memory) is refused with
an error naming the file, before anything is built from it. The checks walk the parser's
events, which needs no recursion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: The largest configuration file read; the shipped ones are below 20 KiB.
MAX_BYTES = 1024 * 1024
#: The deepest nesting of mappings and lists; the shipped files nest at most 6 levels.
MAX_DEPTH = 32
#: The most values a file may hold once its aliases are expanded.
MAX_NODES = 200_000

Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # type: ignore[assignment]


class YamlFileError(Exception):
    """The file cannot be read as bounded YAML; the message names the file and says why."""


class YamlSyntaxError(YamlFileError):
    """Not valid YAML; `error` is PyYAML's, with the line it stopped at."""

    def __init__(self, message: str, error: yaml.YAMLError) -> None:
        super().__init__(message)
        self.error = error


def read_text(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """The file's UTF-8 text, refused beyond `max_bytes` (read no further than that)."""
    try:
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as error:
        raise YamlFileError(f"{path}: cannot be read: {error.strerror or error}") from error
    if len(data) > max_bytes:
        raise YamlFileError(
            f"{path}: larger than {max_bytes // 1024} KiB; a configuration file is much "
            "smaller: check that this is the right file"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise YamlFileError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); save the file as UTF-8"
        ) from error


def check_shape(
    path: Path, text: str, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES
) -> None:
    """Refuse nesting deeper than `max_depth` and more than `max_nodes` values (aliases
    counted as what they expand to), walking the parser's events."""
    sizes: dict[str, int] = {}  # anchor -> how many values it stands for
    open_collections: list[tuple[str | None, int]] = [(None, 0)]  # (anchor, values so far)
    try:
        for event in yaml.parse(text, Loader=Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                if len(open_collections) > max_depth:
                    mark = event.start_mark
                    line = f" (line {mark.line + 1})" if mark is not None else ""
                    raise YamlFileError(f"{path}: nested more than {max_depth} levels deep{line}")
                open_collections.append((event.anchor, 1))
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                anchor, count = open_collections.pop()
                if anchor is not None:
                    sizes[anchor] = count
            elif isinstance(event, yaml.ScalarEvent):
                count = 1
                if event.anchor is not None:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.AliasEvent):
                count = sizes.get(event.anchor or "", 1)
            else:
                continue
            parent_anchor, parent_count = open_collections[-1]
            open_collections[-1] = (parent_anchor, parent_count + count)
            if parent_count + count > max_nodes:
                raise YamlFileError(
                    f"{path}: more than {max_nodes} values once its aliases (*name) are "
                    "expanded; a configuration file is much smaller"
                )
    except yaml.YAMLError as error:
        raise YamlSyntaxError(f"{path}: not valid YAML: {error}", error) from error


def load(path: Path, text: str | None = None) -> Any:
    """The file's data, after the bounds above (a YamlFileError otherwise)."""
    text = read_text(path) if text is None else text
    check_shape(path, text)
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506  (a safe loader)
    except yaml.YAMLError as error:
        raise YamlSyntaxError(f"{path}: not valid YAML: {error}", error) from error
