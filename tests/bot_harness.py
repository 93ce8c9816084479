"""Running the real Telegram bot (`bot.app.run_polling`, the body of `vinbot bot`) in a test.

Shared by the bot's end-to-end tests: the settings that point the bot at the Telegram
stand-in and the session's servers, and the polling loop started and stopped around a block.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from standins.telegram_api import BotState

from bot.app import run_polling
from tools.settings import BulkSettings, LimitSettings, Settings, TelegramSettings


def make_settings(
    database_url: str,
    redis_url: str,
    data_dir: Path,
    base_url: str,
    token: str,
    *,
    chunk_size: int = 10,
    **telegram: Any,
) -> Settings:
    """Settings of a bot on `database_url` polling the stand-in at `base_url`, offline planner."""
    return Settings(
        _env_file=None,
        env="test",
        database_url=database_url,
        redis_url=redis_url,
        data_dir=data_dir,
        openai_api_key=None,
        openai_base_url=None,
        telegram_bot_token=token,
        telegram_api_base_url=base_url,
        telegram=TelegramSettings(poll_timeout_s=1, progress_interval_s=0.2, **telegram),
        limits=LimitSettings(messages_per_minute=1_000),
        bulk=BulkSettings(chunk_size=chunk_size),
    )


@asynccontextmanager
async def polling(settings: Settings, state: BotState) -> AsyncIterator[None]:
    """Run `run_polling` (the body of `vinbot bot`) until the block ends."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_polling(settings, stop=stop))
    try:
        await state.wait_for(lambda: state.calls_of("getMe") or task.done(), within_s=120)
        if task.done():
            task.result()
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
