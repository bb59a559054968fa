"""The operator's side of WhatsApp: invitation links, the templates to submit, and
`python -m bot webhook` serving WhatsApp alone in its own process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLE_NETWORK, ROOT
from tests.fakes.whatsapp_cloud import FakeCloudApi, serving_cloud
from tests.test_cli import Shell, invited, shell  # noqa: F401  (the fixture)

WHATSAPP_VARIABLES = (
    "WHATSAPP_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_NUMBER",
    "WHATSAPP_BASE_URL",
)


def test_invite_prints_the_wa_me_link(shell: Shell) -> None:  # noqa: F811
    shell.sanad("setup", str(EXAMPLE_NETWORK))
    shell.export("WHATSAPP_NUMBER", "+973 1700 0000")
    ran = shell.sanad(
        "invite", "--org", "bh_sitra_women", "--role", "worker", "--channel", "whatsapp"
    )
    assert ran.code == 0, ran.err
    code = invited(ran)
    assert f"link: https://wa.me/97317000000?text=start%20{code}\n" in ran.out


def test_the_templates_printed_are_the_ones_meta_approves_and_the_bot_sends(
    shell: Shell,  # noqa: F811
) -> None:
    ran = shell.sanad("whatsapp-templates")
    assert ran.code == 0, ran.err
    templates = json.loads(ran.out)
    assert {(t["name"], t["language"]) for t in templates} == {
        (name, language)
        for name in ("sanad_reminder", "sanad_message")
        for language in ("ar", "en", "fr")
    }
    api = FakeCloudApi()
    for template in templates:
        assert template["category"] == "UTILITY"
        assert api.approve(template).parameters == 1  # Meta's review rules, as the fake has them
    arabic = next(t for t in templates if t == {**t, "name": "sanad_reminder", "language": "ar"})
    assert "أبلغ الآن" in json.dumps(arabic, ensure_ascii=False)


def test_webhook_without_any_channel_says_so(shell: Shell) -> None:  # noqa: F811
    for name in WHATSAPP_VARIABLES:
        shell.monkeypatch.delenv(name, raising=False)
    ran = shell.sanad("webhook")
    assert ran.code == 1
    assert "Neither Telegram nor WhatsApp is configured" in ran.err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            assert process.poll() is None, "the webhook process stopped"
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(url)


async def test_webhook_serves_whatsapp_alone_in_its_own_process(tmp_path: Path) -> None:
    api = FakeCloudApi(token="EAAG-never-logged", app_secret="s3cret")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "WHATSAPP_"))
    }
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'sanad.db'}",
        "DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
        "WHATSAPP_TOKEN": api.token,
        "WHATSAPP_PHONE_NUMBER_ID": api.phone_number_id,
        "WHATSAPP_APP_SECRET": api.app_secret,
        "WHATSAPP_VERIFY_TOKEN": "verify",
        "WHATSAPP_NUMBER": api.display_number,
    }
    bot = [sys.executable, "-m", "bot"]
    run = {"env": env, "cwd": tmp_path, "capture_output": True, "text": True, "check": True}
    subprocess.run([*bot, "setup", str(EXAMPLE_NETWORK)], **run)  # type: ignore[call-overload]
    ran = subprocess.run(  # type: ignore[call-overload]
        [*bot, "invite", "--org", "bh_rural_girls", "--role", "worker", "--channel", "whatsapp"],
        **run,
    )
    code = ran.stdout.split("text=start%20")[1].split()[0]
    port = free_port()
    async with serving_cloud(api) as base:
        env["WHATSAPP_BASE_URL"] = base
        log = tmp_path / "webhook.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [*bot, "webhook", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=tmp_path,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
            try:
                await wait_until_up(f"http://127.0.0.1:{port}/health", process)
                api.webhook_url = f"http://127.0.0.1:{port}/whatsapp"
                api.user("212600000009", "Amina").text(f"start {code}")
                await api.push()
                [languages] = api.to("212600000009")
                assert [t for _, t in languages.choices] == ["العربية", "English", "Français"]
            finally:
                process.send_signal(signal.SIGTERM)
                await asyncio.to_thread(process.wait, 20)  # off the loop: the fake serves on it
    written = log.read_text(encoding="utf-8", errors="replace")
    assert api.token not in written and api.app_secret not in written


@pytest.fixture(autouse=True)
def _no_whatsapp_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in WHATSAPP_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_run_with_only_whatsapp_points_to_the_webhook(shell: Shell) -> None:  # noqa: F811
    shell.export("WHATSAPP_TOKEN", "EAAG-token")
    ran = shell.sanad("run")
    assert ran.code == 1
    assert "python -m bot webhook" in ran.err and "EAAG-token" not in ran.err + ran.out
