"""Webhook mode: `/telegram/webhook` mounted in the real API app, served by uvicorn on loopback.

The API is built as `vinbot api` builds it in webhook mode (`create_app` with
`bot.webhook.webhook_routers`), on the session's PostgreSQL and Redis; the bot's
replies go to the Telegram stand-in. Updates are POSTed the way Telegram POSTs them.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standins import serving
from standins.telegram_api import BotState, TelegramStandIn, create_app, user

from api.app import create_app as create_api
from bot.webhook import SECRET_HEADER, WEBHOOK_PATH, webhook_routers
from tools.settings import LimitSettings, Settings, TelegramSettings

pytestmark = pytest.mark.e2e

TOKEN = "4646464646:AAH-standin-token-webhook-tests-0123456789"
SECRET = "webhook-secret-0123456789"
PUBLIC_URL = "https://vinbot.example.org/telegram/webhook"
_ids = itertools.count(int(time.time() * 1000) % 10_000_000 * 100 + 50)


@pytest.fixture(scope="module")
async def webhook(
    pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[BotState, httpx.AsyncClient]]:
    standin = TelegramStandIn()
    async with serving(create_app(standin)) as telegram_url:
        settings = Settings(
            _env_file=None,
            env="test",
            database_url=pg_url,
            redis_url=redis_url,
            data_dir=tmp_path_factory.mktemp("webhook-data"),
            openai_api_key=None,
            openai_base_url=None,
            telegram_bot_token=TOKEN,
            telegram_api_base_url=telegram_url,
            telegram=TelegramSettings(mode="webhook", webhook_url=PUBLIC_URL, webhook_secret=SECRET),
            limits=LimitSettings(messages_per_minute=1_000, anonymous_requests_per_minute=1_000),
        )
        routers = webhook_routers(settings)
        assert len(routers) == 1
        async with (
            serving(create_api(settings, routers=routers), lifespan="on") as api_url,
            httpx.AsyncClient(base_url=api_url, timeout=30) as client,
        ):
            yield standin.bot(TOKEN), client


def update(update_id: int, person: dict[str, Any], text: str) -> dict[str, Any]:
    """An update as Telegram POSTs it to a webhook."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": person["id"], "type": "private", "first_name": person["first_name"]},
            "from": person,
            "text": text,
            **(
                {"entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]}
                if text.startswith("/")
                else {}
            ),
        },
    }


async def test_the_webhook_is_registered_with_its_secret_when_the_api_starts(
    webhook: tuple[BotState, httpx.AsyncClient],
) -> None:
    state, _client = webhook
    assert state.webhook["url"] == PUBLIC_URL
    assert state.webhook["secret_token"] == SECRET
    assert set(state.commands) == {"", "es", "fr", "de"}


@pytest.mark.parametrize("headers", [{}, {SECRET_HEADER: "guessed"}, {SECRET_HEADER: SECRET + "x"}])
async def test_a_forged_update_is_refused_when_the_secret_is_missing_or_wrong(
    webhook: tuple[BotState, httpx.AsyncClient], headers: dict[str, str]
) -> None:
    state, client = webhook
    person = user(next(_ids), "en")
    response = await client.post(WEBHOOK_PATH, json=update(next(_ids), person, "/start"), headers=headers)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    await asyncio.sleep(0.3)
    assert state.sent_messages(person["id"]) == []


async def test_an_update_is_handled_once_when_telegram_delivers_it_twice(
    webhook: tuple[BotState, httpx.AsyncClient],
) -> None:
    state, client = webhook
    person = user(next(_ids), "de")
    first = update(next(_ids), person, "/start")
    headers = {SECRET_HEADER: SECRET}

    accepted = await client.post(WEBHOOK_PATH, json=first, headers=headers)
    again = await client.post(WEBHOOK_PATH, json=first, headers=headers)
    assert accepted.status_code == 200
    assert accepted.json() == {"ok": True}
    assert again.status_code == 200
    assert again.json() == {"ok": True, "duplicate": True}

    # A later update of the same chat is handled after the earlier ones (per-chat order),
    # so once its reply is there, a second handling of the duplicate would be too.
    later = await client.post(WEBHOOK_PATH, json=update(next(_ids), person, "/plan"), headers=headers)
    assert later.status_code == 200
    await state.wait_for(
        lambda: any(m["text"].startswith("Dein Tarif") for m in state.sent_messages(person["id"]))
    )
    greetings = [m for m in state.sent_messages(person["id"]) if m["text"].startswith("Hallo Ana!")]
    assert len(greetings) == 1


async def test_a_body_that_is_not_an_update_is_refused_when_the_secret_is_right(
    webhook: tuple[BotState, httpx.AsyncClient],
) -> None:
    _state, client = webhook
    response = await client.post(
        WEBHOOK_PATH,
        content=b"{not json",
        headers={SECRET_HEADER: SECRET, "content-type": "application/json"},
    )
    assert response.status_code == 400


async def test_the_api_still_answers_its_own_routes_when_the_webhook_is_mounted(
    webhook: tuple[BotState, httpx.AsyncClient], tmp_path: Path
) -> None:
    _state, client = webhook
    assert (await client.get("/healthz")).status_code == 200
    assert WEBHOOK_PATH not in (await client.get("/openapi.json")).json()["paths"]
