"""The platforms Sanad talks to; only this package imports their libraries.

httpx (the HTTP client of python-telegram-bot and of the WhatsApp Graph client) imports its
command-line client, `httpx._main`, with the package, and that imports click and pygments
whenever they are installed (uvicorn and pytest bring them), ~1.4 MiB of a running bot that
never runs `httpx` from a shell. Marking the module as absent (`None` in sys.modules, which
makes its import raise ImportError) gives httpx's own fallback for an install without the
`httpx[cli]` extra: `httpx.main` then only says the extra is missing. Nothing else changes.
"""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # None: "not importable"
