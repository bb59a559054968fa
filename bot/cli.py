"""The command line: `python -m bot <command>`. Each command assembles what it needs."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from bot import logs
from bot.app import Sanad, assemble
from bot.private_files import make_private
from bot.settings import Settings
from forms.loader import FormFileError
from storage.db import transaction
from storage.invites import (
    MAX_VALIDITY,
    ROLE_KIND,
    InviteRefused,
    RoleMismatch,
    check_role,
    new_address_invite,
    new_invite,
    open_invites,
    revoke_invite,
    role_for,
    shown,
)
from storage.models import Organization, Person, PersonAddress
from storage.network import NetworkError, apply_network, read_network
from storage.people import addresses_of
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.metrics import Metrics

EXAMPLE_NETWORK = Path(__file__).resolve().parent.parent / "examples" / "network.yaml"
DEMO_DATABASE = "sqlite:///data/demo.db"
DEMO_PERSON = "demo"
DEMO_ORGANIZATION = "bh_sitra_women"

NO_TOKEN = """\
TELEGRAM_BOT_TOKEN is not set, so Sanad cannot reach Telegram.

To get a token: open Telegram, talk to @BotFather, send /newbot, choose a name and a
username ending in "bot". BotFather answers with a token like 123456:ABC-DEF...
Put it in the environment or in a .env file next to where you run Sanad:

    TELEGRAM_BOT_TOKEN=123456:ABC-DEF...
    TELEGRAM_BOT_USERNAME=your_bot_username

To try Sanad without Telegram, use the console instead:

    python -m bot demo
"""


NO_POLLING = """\
`python -m bot run` polls Telegram, and TELEGRAM_BOT_TOKEN is not set. WhatsApp has no
polling: Meta posts each event to Sanad, so run `python -m bot webhook` (see docs/whatsapp.md).
"""

NO_CHANNEL = """\
Neither Telegram nor WhatsApp is configured, so Sanad has no one to talk to.

Telegram: set TELEGRAM_BOT_TOKEN (and TELEGRAM_WEBHOOK_SECRET for webhook mode).
WhatsApp: set WHATSAPP_TOKEN, WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_APP_SECRET and
WHATSAPP_VERIFY_TOKEN (see docs/whatsapp.md). Both may be set: one process serves both.

To try Sanad without either, use the console:

    python -m bot demo
"""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings = Settings()
    make_private(settings.data_dir)
    level = logging.INFO if args.action in (_run, _worker, _webhook) else logging.WARNING
    secrets = [
        settings.telegram_bot_token,
        settings.telegram_webhook_secret,
        settings.whatsapp_token,
        settings.whatsapp_app_secret,
        settings.whatsapp_verify_token,
    ]
    logs.configure(
        [s.get_secret_value() for s in secrets if s], level, log_format=settings.log_format
    )
    whatsapp = settings.whatsapp_token is not None
    if args.action in (_run, _set_webhook) and settings.telegram_bot_token is None:
        print(NO_POLLING if whatsapp and args.action is _run else NO_TOKEN, file=sys.stderr)
        return 1
    if args.action in (_worker, _webhook) and settings.telegram_bot_token is None and not whatsapp:
        print(NO_CHANNEL, file=sys.stderr)
        return 1
    try:
        return int(args.action(args, settings) or 0)
    except (FormFileError, NetworkError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Sanad field reporting")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the Telegram bot (long polling), with the "
        "scheduler and the sender unless --without-worker",
    )
    run.add_argument(
        "--without-worker",
        action="store_true",
        help="leave reminders, digests and sending to `python -m bot worker`",
    )
    run.set_defaults(action=_run)

    webhook = commands.add_parser(
        "webhook",
        help="serve Telegram updates and WhatsApp events over HTTP (POST /telegram, GET/POST "
        "/whatsapp, each when configured; GET /health), with the scheduler and the sender "
        "unless --without-worker",
    )
    webhook.add_argument("--host", default="0.0.0.0")
    webhook.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8080")),
        help="default: $PORT (as hosts that run a Procfile set it), else 8080",
    )
    webhook.add_argument(
        "--without-worker",
        action="store_true",
        help="leave reminders, digests and sending to `python -m bot worker`",
    )
    webhook.set_defaults(action=_webhook)

    set_webhook = commands.add_parser(
        "set-webhook", help="register the webhook URL (and TELEGRAM_WEBHOOK_SECRET) with Telegram"
    )
    set_webhook.add_argument("url", help="the public https URL, ending in /telegram")
    set_webhook.set_defaults(action=_set_webhook)

    backup = commands.add_parser(
        "backup",
        help="consistent copy of the SQLite database, also while the bot runs; into a "
        "folder: a copy named by its time, keeping the newest BACKUP_KEEP",
    )
    backup.add_argument("file", help="a file, or a folder (existing, or ending in /)")
    backup.add_argument(
        "--keep", type=int, default=None, help="with a folder: copies kept (default BACKUP_KEEP)"
    )
    backup.set_defaults(action=_backup)

    worker = commands.add_parser("worker", help="only the scheduler and the outbox sender")
    worker.set_defaults(action=_worker)

    console = commands.add_parser("console", help="chat with Sanad in this terminal")
    console.add_argument("--as", dest="person", default="me", help="who you are (a name)")
    console.add_argument("--language", default=None, help="ar, en or fr before registering")
    console.set_defaults(action=_console)

    demo = commands.add_parser("demo", help="example network, a demo worker, the console")
    demo.add_argument("--database", default=DEMO_DATABASE, help="database URL for the demo")
    demo.set_defaults(action=_demo)

    setup = commands.add_parser("setup", help="load or update the network from a YAML file")
    setup.add_argument("file", type=Path)
    setup.set_defaults(action=_setup)

    invite = commands.add_parser(
        "invite",
        help="make single-use invitation codes; list or withdraw the open ones",
        description="Workers are invited at a partner association, coordinators at the "
        "supportive organization of their group, admins at the network. See docs/invitations.md.",
    )
    what = invite.add_mutually_exclusive_group(required=True)
    what.add_argument("--org", help="organization key from the network file: one invitation")
    what.add_argument(
        "--from-file",
        type=Path,
        metavar="FILE",
        help="a .csv or .xlsx table (name, organization, role, language, channel): one "
        "invitation per row, written back with codes and links",
    )
    what.add_argument(
        "--person",
        metavar="P",
        help="an existing person (their number or an address): a code that adds --channel "
        "to them, keeping their reports, role and language",
    )
    what.add_argument("--list", action="store_true", help="list the open codes")
    what.add_argument("--revoke", metavar="CODE", help="withdraw an open code")
    invite.add_argument(
        "--role",
        choices=["worker", "coordinator", "admin"],
        help="with --org; default: the role the organization takes",
    )
    invite.add_argument("--name", default=None, help="with --org: the person's name")
    invite.add_argument(
        "--expires", default="7d", help="e.g. 7d, 12h, 30m; at most 90d (default 7d)"
    )
    invite.add_argument(
        "-o", "--output", type=Path, default=None, help="with --from-file: where to write"
    )
    invite.add_argument(
        "--channel",
        choices=["telegram", "whatsapp"],
        default="telegram",
        help="with --org or --person: the link to print, t.me (default) or wa.me",
    )
    invite.set_defaults(action=_invite)

    templates = commands.add_parser(
        "whatsapp-templates",
        help="print the WhatsApp message templates the bot uses, as JSON to submit to Meta",
    )
    templates.set_defaults(action=_whatsapp_templates)

    export = commands.add_parser("export", help="write reports to CSV or XLSX")
    export.add_argument("form", help="form id (checkin, beneficiaries, recycling) or all")
    export.add_argument("--group", default=None, help="group key")
    export.add_argument(
        "--from",
        dest="date_from",
        type=_day,
        default=None,
        metavar="YYYY-MM-DD",
        help="first day sent, inclusive, in each group's own time zone (e.g. 2026-11-01)",
    )
    export.add_argument(
        "--to",
        dest="date_to",
        type=_day,
        default=None,
        metavar="YYYY-MM-DD",
        help="last day sent, inclusive (e.g. 2026-11-30)",
    )
    export.add_argument("--format", choices=["csv", "xlsx"], required=True)
    export.add_argument("--language", default="ar", choices=["ar", "en", "fr"])
    export.add_argument("-o", "--output", type=Path, required=True)
    export.set_defaults(action=_export)
    return parser


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.channels.telegram import run_polling

    sanad = assemble(settings)
    run_polling(sanad, with_background=not args.without_worker, metrics=_served_metrics(sanad))
    return 0


def _served_metrics(sanad: Sanad) -> Metrics | None:
    """The counters of a process without a web server when METRICS_PORT is set; None when
    it is not, as nothing would read them (and prometheus_client, ~1 MiB, stays unimported)."""
    return _metrics(sanad) if sanad.settings.metrics_port else None


def _metrics(sanad: Sanad, count_errors: bool = True) -> Metrics:
    """The process's counters; served on METRICS_PORT (METRICS_HOST) when it is set."""
    from bot.channels.telegram import ERROR_LOGGERS
    from bot.metrics import Metrics

    settings = sanad.settings
    metrics = Metrics(sanad.engine, settings.metrics_cache_seconds)
    if count_errors:
        metrics.count_errors_of(*ERROR_LOGGERS)
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, settings.metrics_host)
    return metrics


def _webhook(args: argparse.Namespace, settings: Settings) -> int:
    from bot.channels.telegram import build_telegram
    from bot.channels.webhook import create_app, serve, webhook_secret
    from bot.channels.whatsapp.service import assemble_whatsapp

    sanad = assemble(settings)
    try:
        whatsapp = assemble_whatsapp(sanad) if settings.whatsapp_token is not None else None
        if settings.telegram_bot_token is not None:
            webhook_secret(sanad)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    metrics = _metrics(sanad, count_errors=False)  # the app's lifespan counts them
    telegram = None
    if settings.telegram_bot_token is not None:
        others = {"whatsapp": whatsapp.deliver} if whatsapp is not None else None
        paces = {"whatsapp": whatsapp.pace} if whatsapp is not None else None
        telegram = build_telegram(
            sanad,
            with_background=not args.without_worker,
            metrics=metrics,
            other_channels=others,
            other_paces=paces,
        )
    app = create_app(sanad, telegram, metrics, whatsapp, with_background=not args.without_worker)
    serve(app, args.host, args.port, settings)
    return 0


def _set_webhook(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from bot.channels.webhook import set_webhook

    try:
        asyncio.run(set_webhook(assemble(settings), args.url))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"webhook set: {args.url}")
    return 0


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    from bot.backup import BackupError, backup, backup_into

    given = Path(args.file)
    into_folder = given.is_dir() or args.file.endswith(("/", os.sep))
    try:
        if not into_folder:
            backup(settings.database_url, given)
            print(f"database copied to {given}")
            return 0
        keep = args.keep if args.keep is not None else settings.backup_keep
        target, removed = backup_into(settings.database_url, given, keep, utcnow())
    except BackupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"database copied to {target}; {len(removed)} older copies removed (keeping {keep})")
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    import signal

    from bot.background import Background
    from bot.channels.base import by_channel
    from bot.channels.telegram import run_worker
    from bot.channels.whatsapp.service import assemble_whatsapp

    async def work() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        sanad = assemble(settings)
        whatsapp = assemble_whatsapp(sanad) if settings.whatsapp_token is not None else None
        try:
            if settings.telegram_bot_token is not None:
                others = {"whatsapp": whatsapp.deliver} if whatsapp is not None else None
                paces = {"whatsapp": whatsapp.pace} if whatsapp is not None else None
                await run_worker(
                    sanad,
                    stop,
                    metrics=_served_metrics(sanad),
                    other_channels=others,
                    other_paces=paces,
                )
                return
            assert whatsapp is not None
            metrics = _metrics(sanad)
            background = Background(
                sanad,
                by_channel({"whatsapp": whatsapp.deliver}),
                metrics.sent,
                pace=whatsapp.pace,
            )
            await background.start()
            await stop.wait()
            await background.stop()
        finally:
            if whatsapp is not None:
                await whatsapp.close()

    asyncio.run(work())
    return 0


def _console(args: argparse.Namespace, settings: Settings) -> int:
    return _chat(assemble(settings), args.person, args.language)


def _chat(sanad: Sanad, person: str, language: str | None, first: str = "/start") -> int:
    from bot.channels.console import ConsoleChat

    chat = ConsoleChat(sanad.dispatcher, person, sanad.settings.media_dir, sys.stdout, language)
    interactive = sys.stdin.isatty()
    if interactive:
        print(
            "Sanad console. Type the number of an option (#1, #2 ... where a number is the "
            "answer), /help for commands, /quit to leave.\n"
        )
    chat.send(first)
    try:
        chat.run(sys.stdin, prompt=interactive)
    except KeyboardInterrupt:
        print()
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings.model_copy(update={"database_url": args.database})
    sanad = assemble(settings)
    with transaction(sanad.engine) as session:
        apply_network(session, read_network(EXAMPLE_NETWORK))
        registered = session.exec(
            select(Person).where(Person.channel == "console", Person.address == DEMO_PERSON)
        ).first()
        code = None
        if registered is None:
            organization = _organization(session, DEMO_ORGANIZATION)
            code = new_invite(session, organization, "worker", utcnow(), timedelta(hours=1)).code
    return _chat(sanad, DEMO_PERSON, "ar", first=f"/start {code}" if code else "/start")


def _setup(args: argparse.Namespace, settings: Settings) -> int:
    spec = read_network(args.file)
    sanad = assemble(settings)
    with transaction(sanad.engine) as session:
        counts = apply_network(session, spec)
    print(
        f"network applied: {counts['added']} added, {counts['changed']} changed, "
        f"{counts['retired']} retired"
    )
    return 0


def _invite(args: argparse.Namespace, settings: Settings) -> int:
    valid_for = _duration(args.expires)
    sanad = assemble(settings)
    try:
        if args.list:
            return _list_invites(sanad)
        if args.revoke:
            return _revoke_invite(sanad, args.revoke)
        if args.from_file:
            return _invite_from_file(sanad, args.from_file, args.output, valid_for)
        if args.person:
            return _invite_person(sanad, args, valid_for)
        return _invite_one(sanad, args, valid_for)
    except InviteRefused as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _invite_one(sanad: Sanad, args: argparse.Namespace, valid_for: timedelta) -> int:
    with transaction(sanad.engine) as session:
        organization = _organization(session, args.org)
        role = args.role or role_for(organization)
        try:
            check_role(organization, role)
        except RoleMismatch as error:
            where = _where_role_belongs(session, organization, role)
            raise InviteRefused(f"{error}; {where}") from error
        invite = new_invite(session, organization, role, utcnow(), valid_for, name=args.name)
    _print_code_and_link(sanad, args.channel, invite.code)
    assert invite.expires_at is not None
    print(f"expires: {invite.expires_at:%Y-%m-%d %H:%M} UTC")
    return 0


def _invite_person(sanad: Sanad, args: argparse.Namespace, valid_for: timedelta) -> int:
    """A code that adds the channel `args.channel` to an existing person."""
    with transaction(sanad.engine) as session:
        person = _person(session, args.person)
        if any(place.channel == args.channel for place in addresses_of(session, person.id or 0)):
            raise InviteRefused(f"{person.display_name} is already reached on {args.channel}")
        invite = new_address_invite(session, person, utcnow(), valid_for)
    print(f"for: {person.display_name} (person {person.id}), on {args.channel}")
    _print_code_and_link(sanad, args.channel, invite.code)
    assert invite.expires_at is not None
    print(f"expires: {invite.expires_at:%Y-%m-%d %H:%M} UTC")
    return 0


def _person(session: Session, given: str) -> Person:
    """The person `given` names: their number (id), or one of their addresses (a phone
    number, a Telegram user id)."""
    if given.isdigit() and int(given) < 2**31:  # a phone number is no person's number
        person = session.get(Person, int(given))
        if person is not None:
            return person
    found = session.exec(
        select(Person)
        .join(PersonAddress, col(PersonAddress.person_id) == Person.id)
        .where(PersonAddress.address == given.lstrip("+").replace(" ", ""))
    ).all()
    if len(found) == 1:
        return found[0]
    if found:
        raise InviteRefused(f"{given!r} is the address of several people; give their number")
    raise InviteRefused(f"no person {given!r}: give their number or one of their addresses")


def _print_code_and_link(sanad: Sanad, channel: str, code: str) -> None:
    """The code, and the link of `channel` (bot.invite_links) or why there is none yet."""
    print(f"code: {shown(code)}")
    with transaction(sanad.engine) as session:
        link = sanad.dispatcher.services.invite_link(session, channel, code)
    if link:
        print(f"link: {link}")
    elif channel == "whatsapp":
        print(
            "link: unknown until WHATSAPP_NUMBER is set; meanwhile send "
            f"start {code} to the bot on WhatsApp"
        )
    else:
        print(
            "link: unknown until TELEGRAM_BOT_USERNAME is set or the bot has run once;"
            f" meanwhile send /start {code} to the bot"
        )


def _where_role_belongs(session: Session, organization: Organization, role: str) -> str:
    """Which organizations take `role`: the ones of `organization`'s group (the network's)."""
    kind = ROLE_KIND[role]
    query = select(Organization.key).where(Organization.kind == kind, col(Organization.active))
    if kind != "network":
        query = query.where(Organization.group_id == organization.group_id)
    keys = session.exec(query.order_by(col(Organization.id))).all()
    return f"invite a {role} at {', '.join(keys)}" if keys else f"no organization takes a {role}"


def _list_invites(sanad: Sanad) -> int:
    with transaction(sanad.engine) as session:
        rows = open_invites(session, utcnow())
    if not rows:
        print("no open invitations")
        return 0
    for invite, organization in rows:
        assert invite.expires_at is not None
        print(
            f"{shown(invite.code)}  {invite.role:<11}  {organization.key:<20}  "
            f"expires {invite.expires_at:%Y-%m-%d %H:%M} UTC  {invite.name or ''}".rstrip()
        )
    print(f"{len(rows)} open invitation(s); withdraw one with --revoke CODE")
    return 0


def _revoke_invite(sanad: Sanad, code: str) -> int:
    with transaction(sanad.engine) as session:
        withdrawn = revoke_invite(session, code, utcnow())
    if withdrawn is None:
        print(
            f"error: no open invitation {code!r} (used, expired, withdrawn or unknown); "
            "--list shows the open ones",
            file=sys.stderr,
        )
        return 2
    print(f"withdrawn: {shown(withdrawn.code)}; nobody can register with it")
    return 0


def _invite_from_file(sanad: Sanad, source: Path, output: Path | None, valid_for: timedelta) -> int:
    from bot import invite_table

    target = output or invite_table.output_for(source)
    if target.resolve() == source.resolve():
        print(
            "error: write the invitations to a new file (-o), not over the table", file=sys.stderr
        )
        return 2
    if target.suffix.lower() != source.suffix.lower():
        print(f"error: -o must be a {source.suffix} file, as the table", file=sys.stderr)
        return 2
    try:
        table = invite_table.read_table(source)
        with transaction(sanad.engine) as session:
            people = invite_table.check(session, table, source)
            unlinked = invite_table.invite_all(
                session,
                table,
                people,
                sanad.dispatcher.services.invite_link,
                utcnow(),
                target,
                valid_for,
            )
    except invite_table.TableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(people)} invitations written to {target}")
    if "telegram" in unlinked:
        print("Telegram links are empty until TELEGRAM_BOT_USERNAME is set or the bot has run once")
    if "whatsapp" in unlinked:
        print("WhatsApp links are empty until WHATSAPP_NUMBER is set")
    return 0


def _whatsapp_templates(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from bot.channels.whatsapp.templates import submissions

    print(json.dumps(submissions(), ensure_ascii=False, indent=2))
    return 0


def _day(text: str) -> date:
    """A --from/--to date: ISO form only, as 30/11 and 11/30 cannot be told apart."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-11-30"
        ) from None


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from exports.writers import export

    sanad = assemble(settings)
    forms = sanad.dispatcher.services.forms
    form_id = None if args.form == "all" else args.form
    if form_id is not None and form_id not in forms:
        print(
            f"error: unknown form {args.form!r}; choose from {', '.join(forms)} or all",
            file=sys.stderr,
        )
        return 2
    try:
        with transaction(sanad.engine) as session:
            count = export(
                session,
                forms,
                form_id,
                args.language,
                args.format,
                args.output,
                group_key=args.group,
                date_from=args.date_from,
                date_to=args.date_to,
            )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{count} reports written to {args.output}")
    return 0


def _organization(session: object, key: str) -> Organization:
    organization = session.exec(  # type: ignore[attr-defined]
        select(Organization).where(Organization.key == key)
    ).first()
    if organization is None:
        raise NetworkError(
            f"no organization {key!r}; run `python -m bot setup FILE` first, "
            "or check the key in the network file"
        )
    if not organization.active:
        raise NetworkError(
            f"organization {key!r} is retired: it is no longer in the network "
            "file, so nobody can report for it"
        )
    return organization


def _duration(text: str) -> timedelta:
    """--expires: an invitation always expires, within 90 days."""
    match = re.fullmatch(r"(\d{1,6})\s*([dhm])", text.strip())
    if not match or int(match[1]) == 0:
        raise SystemExit(
            f"error: --expires takes e.g. 7d, 12h or 30m (at most {MAX_VALIDITY.days}d), "
            f"not {text!r}: every invitation expires"
        )
    amount, unit = int(match[1]), match[2]
    valid_for = (
        timedelta(days=amount)
        if unit == "d"
        else timedelta(hours=amount)
        if unit == "h"
        else timedelta(minutes=amount)
    )
    if valid_for > MAX_VALIDITY:
        raise SystemExit(
            f"error: --expires is at most {MAX_VALIDITY.days}d (7d unless you need longer)"
        )
    return valid_for
