"""Catalog checks shared by ``scripts/i18n.sh`` and the tests.

``python -m locales.check`` exits non-zero and lists every problem when a catalog is out of
date with ``messages.pot``, an Arabic or French message is untranslated or fuzzy, a
translation's ``{placeholders}`` differ from its msgid's, or a plural header is wrong.
``python -m locales.check --fix-plural-forms`` rewrites the hand-fixed plural headers.
"""

from __future__ import annotations

import argparse
import re
import string
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from locales import (
    DOMAIN,
    LANGUAGES,
    LOCALES_DIR,
    PLURAL_FORMS,
    placeholders,
    po_path,
    same_plural_rule,
)

#: Languages that must be fully translated; English falls back to its msgids.
REQUIRED_LANGUAGES: tuple[str, ...] = ("ar", "fr")

MessageKey = tuple[str | tuple[str, ...], str | None]


def template_path(directory: Path = LOCALES_DIR) -> Path:
    """Where the extracted template lives under ``directory``."""
    return directory / f"{DOMAIN}.pot"


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    """Read a ``.po`` or ``.pot`` file."""
    with path.open("rb") as file:
        return read_po(file, locale=locale, domain=DOMAIN)


def messages(catalog: Catalog) -> dict[MessageKey, Message]:
    """The catalog's messages (header excluded), keyed by full id and context."""
    keyed: dict[MessageKey, Message] = {}
    for message in catalog:
        if message.id:
            msgid = tuple(message.id) if isinstance(message.id, tuple | list) else message.id
            keyed[(msgid, message.context)] = message
    return keyed


def _label(key: MessageKey) -> str:
    msgid = key[0] if isinstance(key[0], str) else " / ".join(key[0])
    return repr(msgid) if key[1] is None else f"{key[1]}|{msgid!r}"


def field_problems(text: str) -> list[str]:
    """Why ``text`` is not a plain ``str.format`` template with named ``{fields}`` only."""
    try:
        fields = [
            (name, conversion, spec)
            for _, name, spec, conversion in string.Formatter().parse(text)
            if name is not None
        ]
    except ValueError as error:
        return [f"unbalanced braces ({error})"]
    problems = []
    for name, conversion, spec in fields:
        if not name.isidentifier():
            problems.append(f"field {{{name}}} must be a plain name")
        elif conversion or spec:
            problems.append(f"field {{{name}}} must not have a conversion or format spec")
    return problems


def _forms(message: Message) -> tuple[str, ...]:
    value = message.string
    if isinstance(value, tuple | list):
        return tuple(value)
    return (value or "",)


def check_message(message: Message, num_plurals: int, *, required: bool) -> list[str]:
    """Problems of one translated message."""
    problems: list[str] = []
    forms = _forms(message)
    if message.fuzzy:
        problems.append("is fuzzy")
    if message.pluralizable and len(forms) != num_plurals:
        problems.append(f"has {len(forms)} plural forms, the header says {num_plurals}")
    if required and not all(forms):
        problems.append("is not translated" + (" in every plural form" if any(forms) else ""))
    sources = [message.id] if isinstance(message.id, str) else list(message.id)
    source_fields = set().union(*(placeholders(s) for s in sources if not field_problems(s)))
    if message.pluralizable:
        # A plural form may spell the number out ("تقرير واحد", "تقريران"): {n} is optional.
        needed, allowed = source_fields - {"n"}, source_fields | {"n"}
    else:
        needed = allowed = source_fields
    for index, form in enumerate(forms):
        if not form:
            continue
        where = f"msgstr[{index}]" if message.pluralizable else "msgstr"
        syntax = field_problems(form)
        problems.extend(f"{where}: {problem}" for problem in syntax)
        if syntax:
            continue
        fields = placeholders(form)
        if not needed <= fields <= allowed:
            problems.append(
                f"{where} has fields {sorted(fields)}, msgid has {sorted(source_fields)}"
            )
    return problems


def check_catalogs(
    directory: Path = LOCALES_DIR,
    languages: Iterable[str] = LANGUAGES,
    required: Iterable[str] = REQUIRED_LANGUAGES,
) -> list[str]:
    """Every problem of the catalogs under ``directory``, as readable lines (empty = fine)."""
    problems: list[str] = []
    required = set(required)
    template = messages(read_catalog(template_path(directory)))
    for key in template:
        sources = key[0] if isinstance(key[0], tuple) else (key[0],)
        for source in sources:
            problems.extend(f"pot: {_label(key)}: {p}" for p in field_problems(source))
    for language in languages:
        path = po_path(language, directory)
        if not path.exists():
            problems.append(f"{language}: {path} is missing")
            continue
        catalog = read_catalog(path, locale=language)
        expected = PLURAL_FORMS.get(language)
        if expected and not same_plural_rule(catalog.plural_forms, expected):
            problems.append(
                f"{language}: Plural-Forms is {catalog.plural_forms!r}, must be {expected!r}"
                " (run scripts/i18n.sh update)"
            )
        translated = messages(catalog)
        for key in template.keys() - translated.keys():
            problems.append(f"{language}: {_label(key)} is missing (run scripts/i18n.sh update)")
        for key in translated.keys() - template.keys():
            problems.append(f"{language}: {_label(key)} is not in messages.pot")
        for key, message in translated.items():
            problems.extend(
                f"{language}: {_label(key)} {problem}"
                for problem in check_message(
                    message, catalog.num_plurals, required=language in required
                )
            )
    return sorted(problems)


def compare_templates(committed: Path, extracted: Path) -> list[str]:
    """How a freshly extracted template differs from the committed one."""
    old, new = messages(read_catalog(committed)), messages(read_catalog(extracted))
    return sorted(
        [f"pot: {_label(key)} is in the source but not in messages.pot" for key in new - old.keys()]
        + [f"pot: {_label(key)} is no longer in the source" for key in old.keys() - new]
    )


_PLURAL_HEADER = re.compile(r'^"Plural-Forms:.*?\\n"\n', re.MULTILINE | re.DOTALL)


def fix_plural_forms(directory: Path = LOCALES_DIR) -> list[Path]:
    """Put the hand-fixed ``Plural-Forms`` (see ``PLURAL_FORMS``) into the ``.po`` headers.

    ``pybabel update`` keeps a catalog's header, but ``pybabel init`` and older Babel tables
    write their own; this edits only that header line so the rest of the file is untouched.
    Returns the files that changed.
    """
    changed = []
    for language, expected in PLURAL_FORMS.items():
        path = po_path(language, directory)
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        line = f'"Plural-Forms: {expected}\\n"\n'
        match = _PLURAL_HEADER.search(text)
        if match:
            fixed = text[: match.start()] + line + text[match.end() :]
        else:  # no header line at all: add it at the end of the header entry
            head, blank, rest = text.partition("\n\n")
            fixed = f"{head}\n{line.rstrip()}{blank}{rest}"
        if fixed != text:
            path.write_text(fixed, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """Command line for ``scripts/i18n.sh``."""
    parser = argparse.ArgumentParser(prog="python -m locales.check", description=__doc__)
    parser.add_argument("--dir", type=Path, default=LOCALES_DIR, help="catalog directory")
    parser.add_argument("--against", type=Path, help="freshly extracted .pot to compare with")
    parser.add_argument(
        "--fix-plural-forms",
        action="store_true",
        help="rewrite hand-fixed Plural-Forms headers and exit",
    )
    args = parser.parse_args(argv)
    if args.fix_plural_forms:
        for path in fix_plural_forms(args.dir):
            print(f"fixed Plural-Forms in {path}")
        return 0
    problems = check_catalogs(args.dir)
    if args.against:
        problems += compare_templates(template_path(args.dir), args.against)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} catalog problem(s)", file=sys.stderr)
        return 1
    print("catalogs OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
