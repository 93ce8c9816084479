"""The Telegram bot's composition root and `serve`, the entry function of `vinbot bot`.

    vinbot bot    ->   bot.app.serve(settings)   (long polling)

`open_bot_services` opens the infrastructure and builds the tools' dependencies and
the assistant, as every composition root does; `build_application` wires the PTB
`Application` and its handlers over them. Webhook mode (production) is served by the
API process instead: see `bot.webhook`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvloop
from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from agent.bootstrap import build_assistant
from bot.handlers import BotServices, Handlers, conversation_id, register_commands
from bot.i18n import Texts
from bot.ocr import VinPlateReader
from bot.request import AnswerBot, StreamRequest
from tools.bootstrap import build_tool_deps, open_infrastructure
from tools.providers.base import KvStore
from tools.settings import Settings

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_NOT_CONFIGURED = 0, 1
BotApplication = Application[Any, Any, Any, Any, Any, Any]
TELEGRAM_API = "https://api.telegram.org"


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    """Process updates of different conversations concurrently and those of one in order.

    A conversation's turns must reach the assistant in the order they were sent (its
    memory is the conversation), while one slow conversation (a photo being read) must
    not hold up the others. The key is the handlers' conversation id: a private chat,
    or one member of a group chat.
    """

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: defaultdict[str | None, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._waiting: defaultdict[str | None, int] = defaultdict(int)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the update's handlers after the earlier updates of its conversation."""
        chat = update.effective_chat if isinstance(update, Update) else None
        user = update.effective_user if isinstance(update, Update) else None
        key = conversation_id(chat, user) if chat is not None else None
        self._waiting[key] += 1
        try:
            async with self._locks[key]:
                await coroutine
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                self._locks.pop(key, None)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True)
class OpenedBot:
    """The bot's services with the key-value store (webhook de-duplication)."""

    services: BotServices
    kv: KvStore


@asynccontextmanager
async def open_bot_services(settings: Settings, *, migrate_schema: bool = True) -> AsyncIterator[OpenedBot]:
    """Open the infrastructure and build the bot's services; close everything on exit."""
    async with open_infrastructure(settings, migrate_schema=migrate_schema) as infra:
        deps = build_tool_deps(settings, infra)
        services = BotServices(
            assistant=build_assistant(settings, deps),
            sessions=deps.sessions,
            limiter=deps.limiter,
            texts=Texts.load(),
            ocr=VinPlateReader(),
            telegram=settings.telegram,
            limits=settings.limits,
            bulk=deps.bulk,
            vin=deps.vin,
        )
        yield OpenedBot(services=services, kv=infra.kv)


def build_application(
    token: str, services: BotServices, *, base_url: str | None = None, polling: bool = True
) -> BotApplication:
    """Return the PTB application with every handler; `base_url` points at a self-hosted Bot API.

    Requests then go to `{base_url}/bot{token}/{method}` and files to
    `{base_url}/file/bot{token}/{path}`.
    """
    quiet_http_logs()
    base = (base_url or TELEGRAM_API).rstrip("/")
    bot = AnswerBot(
        token,
        base_url=f"{base}/bot",
        base_file_url=f"{base}/file/bot",
        request=StreamRequest(),
        # Two: stopping sends one last getUpdates (to confirm the offset) while the long poll
        # that was cancelled may still hold its connection.
        get_updates_request=StreamRequest(pool_size=2),
    )
    builder = (
        ApplicationBuilder()
        .bot(bot)
        .concurrent_updates(ChatOrderedUpdateProcessor(services.telegram.concurrent_updates))
    )
    if not polling:
        builder = builder.updater(None)
    application: BotApplication = builder.build()
    add_handlers(application, Handlers(services))
    return application


def add_handlers(application: BotApplication, handlers: Handlers) -> None:
    """Register the commands, messages, buttons and the one error handler."""
    commands = {
        "start": handlers.start,
        "help": handlers.help,
        "vin": handlers.vin,
        "compare": handlers.compare,
        "recalls": handlers.recalls,
        "history": handlers.history,
        "language": handlers.language,
        "bulk": handlers.bulk_help,
        "plan": handlers.plan,
        "forget": handlers.forget,
    }
    for name, callback in commands.items():
        application.add_handler(CommandHandler(name, callback))
    application.add_handler(MessageHandler(filters.COMMAND, handlers.unknown_command))
    application.add_handler(MessageHandler(filters.PHOTO | filters.Document.IMAGE, handlers.photo))
    application.add_handler(MessageHandler(filters.Document.ALL, handlers.document))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, handlers.text))
    application.add_handler(CallbackQueryHandler(handlers.button))
    application.add_error_handler(handlers.on_error)


def quiet_http_logs() -> None:
    """Keep the bot token out of the logs: httpx logs every request URL, and the token is in it."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


async def run_polling(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Long-poll the Bot API and answer until `stop` is set (or SIGINT/SIGTERM)."""
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    stop = stop or _stop_on_signals()
    async with open_bot_services(settings) as opened:
        application = build_application(
            settings.telegram_bot_token.get_secret_value(),
            opened.services,
            base_url=settings.telegram_api_base_url,
        )
        async with application:
            await register_commands(application.bot, opened.services.texts)
            await application.start()
            updater = application.updater
            if updater is None:  # pragma: no cover - built with an updater above
                raise RuntimeError("the polling application has no updater")
            await updater.start_polling(
                poll_interval=0.0,
                timeout=settings.telegram.poll_timeout_s,
                allowed_updates=Update.ALL_TYPES,
            )
            logger.info("bot @%s is polling for updates", application.bot.username)
            await stop.wait()
            await updater.stop()
            await application.stop()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def serve(settings: Settings) -> int:
    """Run the bot with long polling until interrupted (the entry function of `vinbot bot`)."""
    if settings.telegram_bot_token is None:
        logger.error("TELEGRAM_BOT_TOKEN is not set; the bot cannot start (try `vinbot chat`)")
        return EXIT_NOT_CONFIGURED
    if settings.telegram.mode == "webhook":
        logger.error(
            "VINBOT_TELEGRAM__MODE is webhook: `vinbot api` serves /telegram/webhook; "
            "unset it to long-poll with `vinbot bot`"
        )
        return EXIT_NOT_CONFIGURED
    # uvloop, as `vinbot api` runs on: each update makes several small HTTP, PostgreSQL and
    # Redis round trips, and uvloop's event loop and transports cost less per round trip.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run_polling(settings))
    return EXIT_OK
