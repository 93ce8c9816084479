"""Webhook mode: `/telegram/webhook` as a router that the API process mounts (production).

    vinbot api   ->   create_app(settings, routers=[TelegramWebhook(settings).router])

Telegram POSTs each update with the secret given to `setWebhook` in the
`X-Telegram-Bot-Api-Secret-Token` header; a request without it is refused (403).

An update is handled before its request is answered. The Bot API server sends a
chat's next update only after the webhook has answered the previous one (updates
of different chats go in parallel, up to `setWebhook`'s `max_connections`), so
handling inside the request keeps each chat's order even when the updates land in
different API worker processes, while the workers share the load of all chats.
Telegram redelivers an update it thinks failed, and several API processes may
receive it, so each `update_id` is claimed once in Redis (`SET NX` with a TTL) and
a second delivery is acknowledged without being handled again. A handler's error
ends in the bot's error handler and the update is still acknowledged (handled).

The router's lifespan opens the bot's own services next to the API's (the two
rooms stay independent), starts the application and registers the webhook.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from telegram import Update

from bot.app import BotApplication, build_application, open_bot_services
from bot.handlers import register_commands
from tools.providers.base import KvStore
from tools.providers.cache import CACHE_FAILURES
from tools.settings import Settings

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
_CLAIM = "return redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1])"


class TelegramWebhook:
    """The webhook route and the lifespan that runs the bot inside the API process."""

    def __init__(self, settings: Settings) -> None:
        token, secret = settings.telegram_bot_token, settings.telegram.webhook_secret
        if token is None or secret is None:
            raise ValueError("webhook mode needs TELEGRAM_BOT_TOKEN and VINBOT_TELEGRAM__WEBHOOK_SECRET")
        if not settings.database_url or not settings.redis_url:
            # The embedded servers are attached per process; two rooms attaching them in one
            # process would detach them under each other. Production configures both.
            raise ValueError(
                "webhook mode needs DATABASE_URL and REDIS_URL (the embedded servers are for polling)"
            )
        self._settings = settings
        self._token = token.get_secret_value()
        self._secret = secret.get_secret_value().encode()
        self._application: BotApplication | None = None
        self._kv: KvStore | None = None
        self.router = APIRouter(lifespan=self._lifespan)
        self.router.add_api_route(WEBHOOK_PATH, self.receive, methods=["POST"], include_in_schema=False)

    @asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[None]:
        settings = self._settings
        async with open_bot_services(settings, migrate_schema=False) as opened:
            application = build_application(
                self._token, opened.services, base_url=settings.telegram_api_base_url, polling=False
            )
            async with application:
                await register_commands(application.bot, opened.services.texts)
                if settings.telegram.webhook_url:
                    await application.bot.set_webhook(
                        settings.telegram.webhook_url,
                        secret_token=self._secret.decode(),
                        allowed_updates=Update.ALL_TYPES,
                    )
                await application.start()
                self._application, self._kv = application, opened.kv
                try:
                    yield
                finally:
                    self._application = None
                    await application.stop()

    async def receive(self, request: Request) -> Response:
        """Accept one update from Telegram: check the secret, claim the update id, queue it."""
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            return JSONResponse({"error": "forbidden", "message": "Bad webhook secret."}, status_code=403)
        application = self._application
        if application is None:
            return JSONResponse({"error": "unavailable", "message": "The bot is starting."}, status_code=503)
        try:
            body = await request.json()
            update = Update.de_json(body, application.bot)
        except (ValueError, TypeError, KeyError):
            return JSONResponse(
                {"error": "invalid_input", "message": "Not a Telegram update."}, status_code=400
            )
        if not await self._claim(application.bot.id, update.update_id):
            return JSONResponse({"ok": True, "duplicate": True})
        # Through the application's update processor: its per-conversation lock and its
        # limit on updates in flight (the database pool's size) apply here as in polling.
        await application.update_processor.process_update(update, application.process_update(update))
        return JSONResponse({"ok": True})

    async def _claim(self, bot_id: int, update_id: int) -> bool:
        """Return True the first time `update_id` arrives (within the TTL), False after that."""
        if self._kv is None:
            return True
        key = f"tg:update:v1:{bot_id}:{update_id}"
        try:
            claimed = await self._kv.eval(_CLAIM, [key], [self._settings.telegram.dedupe_ttl_s])
        except CACHE_FAILURES as e:
            # Without Redis a duplicate may be answered twice; refusing updates would lose them all.
            logger.warning("update de-duplication unavailable, handling the update: %s", type(e).__name__)
            return True
        return claimed is not None


def webhook_routers(settings: Settings) -> list[APIRouter]:
    """Return the routers the API mounts: the webhook when a token is set and the mode is webhook."""
    if settings.telegram_bot_token is None or settings.telegram.mode != "webhook":
        return []
    return [TelegramWebhook(settings).router]
