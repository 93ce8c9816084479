"""A real `celery -A tools.worker worker` process for integration and end-to-end tests.

Each worker runs in its own process group; `stop` (or `kill`) ends the group and checks
that no process of it is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

QUEUE = "celery"  # the default Celery queue, a Redis list on the broker


def worker_env(pg_url: str, redis_url: str, **settings: str) -> dict[str, str]:
    """Return a worker's environment: the session's servers, and `VINBOT_*` settings as given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VINBOT_")}
    env.update(DATABASE_URL=pg_url, REDIS_URL=redis_url, VINBOT_ENV="test", **settings)
    return env


class WorkerProcess:
    """A real `celery -A tools.worker worker` in its own process group."""

    def __init__(
        self, env: dict[str, str], log: Path, *, concurrency: int = 2, pool: str = "prefork"
    ) -> None:
        self.env = env
        self.log = log
        self.concurrency = concurrency
        self.pool = pool  # "solo": the worker runs tasks in its own process
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        argv = [
            str(Path(sys.executable).with_name("celery")),
            "-A",
            "tools.worker",
            "worker",
            f"--pool={self.pool}",
            f"--concurrency={self.concurrency}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
            f"--hostname=test-{uuid.uuid4().hex[:8]}@%h",
        ]
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own virtualenv's celery
            argv, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        handle.close()
        deadline = time.monotonic() + timeout_s
        while b" ready." not in self.log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail("the worker did not start:\n" + self.log.read_text()[-3000:])
            time.sleep(0.05)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
        proc.wait(timeout=30)
        _wait_until_gone(proc.pid)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL whatever is left of the group."""
        if self.proc is None:
            return
        pid = self.proc.pid
        with_term = self.proc
        try:
            os.killpg(pid, signal.SIGTERM)
            with_term.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        self.kill()


def _group_members(pgid: int) -> list[str]:
    out = subprocess.run(
        ["/bin/ps", "-eo", "pid=,pgid=,stat=,args="], capture_output=True, text=True, check=True
    ).stdout
    members = []
    for row in out.splitlines():
        parts = row.split(None, 3)
        if len(parts) >= 3 and parts[1] == str(pgid) and not parts[2].startswith("Z"):
            members.append(row)
    return members


def _wait_until_gone(pgid: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _group_members(pgid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            pytest.fail(f"worker processes left behind: {_group_members(pgid)}")
        time.sleep(0.05)
