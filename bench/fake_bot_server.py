"""The fake Bot API in a process of its own, for `bench.e2e`: several bots (one token each),
and a small HTTP control surface for the load driver.

    python -m bench.fake_bot_server --bot sanad=TOKEN --bot echo=TOKEN [--port P]

Prints one line, ``listening http://127.0.0.1:PORT``, once it serves; stops on SIGTERM or
SIGINT. Each bot is its own `tests.fakes.telegram_bot_api.FakeBotApi` served as
`tests.fakes.telegram_bot_server.create_app` serves it (``/bot{token}/{method}``, so a bot
process is given ``TELEGRAM_BASE_URL=http://127.0.0.1:PORT/bot``); a request is routed by the
token in its path, and an unknown token gets 401 as on Telegram.

Control (JSON):

* ``POST /control/{bot}/update`` with ``{"chat": id, "text": "..."}`` or ``{"chat": id,
  "press": "callback data"}`` (a button of the last message sent to that chat) queues an
  update from that user (first name ``Worker``, language ``en``); answers ``{"update_id",
  "at"}``, ``at`` being ``time.monotonic()`` when it was queued.
* ``GET /control/sent?after=N&timeout=T`` waits up to T seconds for messages the bots sent
  (every request of `SEND_METHODS`, as it arrives and before it is answered) past the first N
  and answers ``{"next": M, "messages": [{"bot", "method", "chat_id", "text", "buttons",
  "at"}, ...]}``.
* ``GET /control/{bot}/stats``: ``{"queued": updates queued, "polls": getUpdates calls}``.

``at`` is CLOCK_MONOTONIC, which every process on the machine shares: latencies are taken
between two stamps of this process, from an update being queued to the request that sends
the last message of its reply.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes.telegram_bot_api import SEND_METHODS, FakeBotApi, FakeUser, JSONDict
from tests.fakes.telegram_bot_server import create_app, serving_asgi


class Journal:
    """Every message the bots send, in order, for the driver to read by cursor."""

    def __init__(self) -> None:
        self.entries: list[JSONDict] = []
        self.grown = asyncio.Event()

    def watch(self, name: str, api: FakeBotApi) -> None:
        def on_request(method: str, params: JSONDict) -> None:
            if method in SEND_METHODS:
                self.entries.append(entry(name, method, params))
                self.grown.set()
            return None

        api.on_request = on_request

    async def since(self, after: int, timeout: float) -> list[JSONDict]:
        deadline = time.monotonic() + timeout
        while len(self.entries) <= after:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            self.grown.clear()
            try:
                await asyncio.wait_for(self.grown.wait(), remaining)
            except TimeoutError:
                return []
        return self.entries[after:]


def entry(bot: str, method: str, params: JSONDict) -> JSONDict:
    markup = params.get("reply_markup")
    if isinstance(markup, str):
        markup = json.loads(markup)
    rows = (markup.get("inline_keyboard") or []) if isinstance(markup, dict) else []
    return {
        "bot": bot,
        "method": method,
        "chat_id": int(params.get("chat_id") or 0),
        "text": str(params.get("text") or params.get("caption") or ""),
        "buttons": [str(b.get("callback_data", "")) for row in rows for b in row],
        "at": time.monotonic(),
    }


def control_app(bots: dict[str, FakeBotApi], journal: Journal) -> Starlette:
    users: dict[tuple[str, int], FakeUser] = {}

    def user(bot: str, chat: int) -> FakeUser:
        known = users.get((bot, chat))
        if known is None:
            known = users[(bot, chat)] = bots[bot].user(chat, "Worker", language_code="en")
        return known

    async def update(request: Request) -> Response:
        bot = request.path_params["bot"]
        if bot not in bots:
            return JSONResponse({"error": f"no bot {bot}"}, status_code=404)
        body: JSONDict = await request.json()
        person = user(bot, int(body["chat"]))
        try:
            queued = person.text(body["text"]) if "text" in body else person.press(body["press"])
        except ValueError as error:  # a press with nothing to press on
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"update_id": queued["update_id"], "at": time.monotonic()})

    async def sent(request: Request) -> Response:
        after = int(request.query_params.get("after", 0))
        timeout = float(request.query_params.get("timeout", 10))
        messages = await journal.since(after, timeout)
        return JSONResponse({"next": after + len(messages), "messages": messages})

    async def stats(request: Request) -> Response:
        api = bots[request.path_params["bot"]]
        polls = sum(1 for method, _ in api.calls if method == "getUpdates")
        return JSONResponse({"queued": api._update_seq, "polls": polls})

    return Starlette(
        routes=[
            Route("/control/sent", sent, methods=["GET"]),
            Route("/control/{bot}/update", update, methods=["POST"]),
            Route("/control/{bot}/stats", stats, methods=["GET"]),
        ]
    )


class Dispatcher:
    """Routes ``/control/...`` to the control app and ``/bot{token}/...`` (``/file/bot...``)
    to the app of the bot holding that token."""

    def __init__(self, tokens: dict[str, FakeBotApi], journal: Journal, names: dict[str, str]):
        self.apps = {token: create_app(api, token) for token, api in tokens.items()}
        self.control = control_app({names[t]: api for t, api in tokens.items()}, journal)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if path.startswith("/control/"):
            await self.control(scope, receive, send)
            return
        token = path.removeprefix("/file").removeprefix("/bot").partition("/")[0]
        app = self.apps.get(token)
        if app is None:
            body = {"ok": False, "error_code": 401, "description": "Unauthorized"}
            await Response(json.dumps(body), 401, media_type="application/json")(
                scope, receive, send
            )
            return
        await app(scope, receive, send)

    def close(self) -> None:
        """Cut running long polls short (see `create_app`)."""
        for app in self.apps.values():
            app.state.closing.set()


async def serve(bots: dict[str, str], port: int) -> None:
    journal = Journal()
    tokens: dict[str, FakeBotApi] = {}
    names: dict[str, str] = {}
    for name, token in bots.items():
        api = FakeBotApi()
        journal.watch(name, api)
        tokens[token], names[token] = api, name
    dispatcher = Dispatcher(tokens, journal, names)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serving_asgi(dispatcher, "127.0.0.1", port) as root:
        print(f"listening {root}", flush=True)
        try:
            await stop.wait()
        finally:
            dispatcher.close()


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fake_bot_server", description=__doc__)
    parser.add_argument(
        "--bot", action="append", required=True, metavar="NAME=TOKEN", help="a bot (repeat)"
    )
    parser.add_argument("--port", type=int, default=0, help="0: a free port (default)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    bots: dict[str, Any] = dict(b.split("=", 1) for b in args.bot)
    asyncio.run(serve(bots, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
