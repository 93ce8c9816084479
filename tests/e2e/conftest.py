"""Shared end-to-end fixtures: the `vinbot` console script as a real process, a Telegram
stand-in per module and a Celery worker process, on the test session's PostgreSQL and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from celery_worker import WorkerProcess, worker_env
from standins import serving
from standins.telegram_api import TelegramStandIn, create_app

VINBOT = str(Path(sys.executable).parent / "vinbot")

RunVinbot = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(pg_url: str, redis_url: str, tmp_path: Path) -> RunVinbot:
    """Return a function running `vinbot ARGS...` (with optional `stdin=`) as its own user.

    No LLM is configured, so the assistant uses the offline planner.
    """
    env = {
        **os.environ,
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "VINBOT_DATA_DIR": str(tmp_path / "data"),
        "VINBOT_CLI_USER": f"e2e-{tmp_path.name}",
    }
    env.pop("OPENAI_API_KEY", None)
    env.pop("OPENAI_BASE_URL", None)

    def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own console script
            [VINBOT, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False
        )

    return _run


@pytest.fixture(scope="module")
async def telegram() -> AsyncIterator[tuple[TelegramStandIn, str]]:
    """A Telegram Bot API stand-in served on loopback for the module, and its base URL."""
    standin = TelegramStandIn()
    async with serving(create_app(standin)) as url:
        yield standin, url


@pytest.fixture
def worker(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[None]:
    """A real Celery worker process (solo pool) on the session's PostgreSQL and Redis."""
    process = WorkerProcess(worker_env(pg_url, redis_url), tmp_path / "worker.log", pool="solo")
    process.start(timeout_s=60)
    try:
        yield
    finally:
        process.stop()
