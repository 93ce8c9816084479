"""Webhook mode over real processes: `vinbot api --workers 2`, the stand-in POSTing updates as Telegram does.

The stand-in (tests/standins/telegram_api.py, `deliver_webhooks=True`) sends the updates to
the URL each worker registers with `setWebhook`, as the Bot API server does: up to 40 at
once, a chat's next update only after its previous one was answered, a failed one again.
The two worker processes take connections from one socket, so a chat's updates land in
either; each is handled before its request is answered, which is what keeps a chat's order.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import ultravin
from standins import serving
from standins.telegram_api import BotState, TelegramStandIn, button_data, create_app, user

from tools.domain.vin import Vin
from tools.errors import InvalidVin

pytestmark = pytest.mark.e2e

TOKEN = "4747474747:AAH-standin-token-webhook-workers-0123456789"
SECRET = "webhook-workers-secret-0123456789"
WORKERS = 2
CHATS = 12
MESSAGES_PER_CHAT = 5
VINBOT = str(Path(sys.executable).parent / "vinbot")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _valid_vins(n: int) -> list[str]:
    """`n` distinct VINs with a right check digit (each answer names its VIN in its buttons)."""
    found: list[str] = []
    for generated in ultravin.generate(3 * n, seed=47, now=datetime(2026, 6, 1)):  # noqa: DTZ001
        try:
            vin = Vin.parse(str(generated)).value
        except InvalidVin:
            continue
        if vin not in found:
            found.append(vin)
    assert len(found) >= n
    return found[:n]


@pytest.fixture(scope="module")
async def api_workers(
    pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[BotState, Path]]:
    """The stand-in, and `vinbot api --workers 2` in webhook mode registered with it."""
    standin = TelegramStandIn(deliver_webhooks=True)
    state = standin.bot(TOKEN)
    folder = tmp_path_factory.mktemp("webhook-workers")
    port = _free_port()
    async with serving(create_app(standin)) as telegram_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VINBOT_", "OPENAI_", "TELEGRAM_"))}
        env |= {
            "DATABASE_URL": pg_url,
            "REDIS_URL": redis_url,
            "VINBOT_DATA_DIR": str(folder / "data"),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": telegram_url,
            "VINBOT_TELEGRAM__MODE": "webhook",
            "VINBOT_TELEGRAM__WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/webhook",
            "VINBOT_TELEGRAM__WEBHOOK_SECRET": SECRET,
            "VINBOT_LIMITS__MESSAGES_PER_MINUTE": "100000",
        }
        log_path = folder / "api.log"
        command = [VINBOT, "api", "--port", str(port), "--workers", str(WORKERS)]
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(*command, env=env, stdout=log, stderr=log)
        try:
            try:
                await state.wait_for(
                    lambda: len(state.calls_of("setWebhook")) >= WORKERS or process.returncode is not None,
                    within_s=180,
                )
            except TimeoutError:
                pytest.fail(f"the workers did not register the webhook: {log_path.read_text()[-3000:]}")
            assert process.returncode is None, log_path.read_text()[-3000:]
            yield state, log_path
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            status = await asyncio.wait_for(process.wait(), timeout=60)
            await standin.aclose()
        assert status == 0, log_path.read_text()[-3000:]


async def test_every_worker_registers_the_webhook_with_its_secret(api_workers: tuple[BotState, Path]) -> None:
    state, _log = api_workers
    assert state.webhook["secret_token"] == SECRET
    assert state.webhook["url"].endswith("/telegram/webhook")
    assert {c.params["url"] for c in state.calls_of("setWebhook")} == {state.webhook["url"]}


async def test_updates_over_two_workers_are_answered_once_each_and_in_order_per_chat(
    api_workers: tuple[BotState, Path],
) -> None:
    state, log_path = api_workers
    vins = _valid_vins(CHATS * MESSAGES_PER_CHAT)
    first_id = int(time.time() * 1000) % 10_000_000 * 100
    people = [user(first_id + i, ("en", "es", "fr", "de")[i % 4]) for i in range(CHATS)]
    sent: dict[int, list[str]] = {p["id"]: [] for p in people}
    acknowledged = state.webhook_acknowledged
    # All at once, interleaved across chats, as a busy bot receives them.
    for turn in range(MESSAGES_PER_CHAT):
        for i, person in enumerate(people):
            vin = vins[i * MESSAGES_PER_CHAT + turn]
            sent[person["id"]].append(vin)
            state.push_text(person, f"decode {vin}")
    total = CHATS * MESSAGES_PER_CHAT

    def answered(chat_id: int) -> list[str]:
        """The VIN each answer in the chat is about (its follow-up buttons name it), oldest first."""
        return [
            data.removeprefix("fu:sp:")
            for message in state.sent_messages(chat_id)
            for data in button_data(message)
            if data.startswith("fu:sp:")
        ]

    try:
        # Each update is answered before the webhook acknowledges it, so once every update
        # is acknowledged, every answer has been sent: a duplicate would be there too.
        await state.wait_for(lambda: state.webhook_acknowledged - acknowledged >= total, within_s=300)
    except TimeoutError:
        got = sum(len(answered(p["id"])) for p in people)
        pytest.fail(f"{got} of {total} answers; log: {log_path.read_text()[-3000:]}")

    for person in people:
        assert answered(person["id"]) == sent[person["id"]], "each message answered once, in the chat's order"
    assert state.webhook_acknowledged - acknowledged == total
    assert not state.calls_of("getUpdates"), "webhook mode never polls"
