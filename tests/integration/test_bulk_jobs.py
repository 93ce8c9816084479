"""Bulk jobs end to end on a real Celery worker process, the session's PostgreSQL and Redis.

Each test starts its own `celery -A tools.worker worker` (prefork, two processes) in its
own process group and kills the group in teardown, checking that no process is left.
Jobs are committed for real (the worker reads them from its own connections), by users
created for this module and deleted at its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import redis as redis_sync
import ultravin
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tools import bulk
from tools.bulk import BulkDeps, CeleryJobQueue, InputRow, JobNotFound, JobStatus
from tools.settings import BulkSettings
from tools.storage.models import User
from tools.storage.session import create_engine, session_factory, transaction
from tools.storage.user_repo import get_or_create_user
from tools.vin import Caller

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1)  # noqa: DTZ001 - ultravin.generate takes a naive date
CHUNK_SIZE = 500
VISIBILITY_TIMEOUT_S = 2  # a killed worker's unacknowledged chunks come back quickly
QUEUE = "celery"


class WorkerProcess:
    """A real `celery -A tools.worker worker` in its own process group."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        argv = [
            str(Path(sys.executable).with_name("celery")),
            "-A",
            "tools.worker",
            "worker",
            "--pool=prefork",
            "--concurrency=2",
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


@pytest.fixture(scope="module")
def worker_env(pg_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VINBOT_")}
    env.update(
        DATABASE_URL=pg_url,
        REDIS_URL=redis_url,
        VINBOT_ENV="test",
        VINBOT_BULK__CHUNK_SIZE=str(CHUNK_SIZE),
        VINBOT_BULK__VISIBILITY_TIMEOUT_S=str(VISIBILITY_TIMEOUT_S),
    )
    return env


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis_sync.Redis]:
    client = redis_sync.Redis(unix_socket_path=redis_url.removeprefix("unix://"))
    client.delete(QUEUE, "unacked", "unacked_index")
    yield client
    client.delete(QUEUE, "unacked", "unacked_index")
    client.close()


@pytest.fixture
def start_worker(
    worker_env: dict[str, str], broker: redis_sync.Redis, tmp_path: Path
) -> Iterator[list[WorkerProcess]]:
    """Start workers on demand (`start_worker.append(...)` via `new_worker`); kill them all at the end."""
    workers: list[WorkerProcess] = []
    yield workers
    for worker in workers:
        worker.stop()


def new_worker(workers: list[WorkerProcess], env: dict[str, str], log: Path) -> WorkerProcess:
    worker = WorkerProcess(env, log)
    workers.append(worker)
    worker.start()
    return worker


@pytest.fixture(scope="module")
async def sessions(pg_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(pg_url)
    factory = session_factory(engine)
    yield factory
    async with transaction(factory) as session:
        await session.execute(delete(User).where(User.external_id.like("bulk-test:%")))
    await engine.dispose()


@pytest.fixture
async def deps(sessions: async_sessionmaker[AsyncSession], redis_url: str) -> AsyncIterator[BulkDeps]:
    queue = CeleryJobQueue(bulk.broker_url_for(redis_url))
    yield BulkDeps(sessions=sessions, queue=queue, limiter=None, settings=BulkSettings(chunk_size=CHUNK_SIZE))
    queue.close()


async def make_caller(sessions: async_sessionmaker[AsyncSession], tier: str = "premium") -> Caller:
    async with transaction(sessions) as session:
        user = await get_or_create_user(session, f"bulk-test:{uuid.uuid4().hex}", tier=tier)
    return Caller(user_id=user.id, tier=tier, channel="cli")  # type: ignore[arg-type]


async def wait_for(
    job_id: str, deps: BulkDeps, caller: Caller, *, until: str = "finished", timeout_s: float = 60.0
) -> JobStatus:
    deadline = time.monotonic() + timeout_s
    while True:
        status = await bulk.get_status(job_id, deps=deps, caller=caller)
        if (until == "finished" and status.finished) or (until == "started" and status.chunks_done >= 2):
            return status
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} did not get {until} in {timeout_s} s: {status.progress}")
        await asyncio.sleep(0.2)


async def all_rows(job_id: str, deps: BulkDeps, caller: Caller) -> list[dict[str, object]]:
    return [row async for row in bulk.iter_results(job_id, deps=deps, caller=caller)]


def assert_each_line_once(rows: list[dict[str, object]], vins: list[str]) -> None:
    assert [row["line"] for row in rows] == list(range(1, len(vins) + 1))
    assert [row["input"] for row in rows] == vins


async def test_every_line_is_in_the_results_exactly_once_when_a_10000_vin_job_completes(
    deps: BulkDeps,
    sessions: async_sessionmaker[AsyncSession],
    start_worker: list[WorkerProcess],
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    vins = ultravin.generate(10_000, seed=11, now=NOW)
    caller = await make_caller(sessions)
    new_worker(start_worker, worker_env, tmp_path / "worker.log")

    started = time.perf_counter()
    job = await bulk.submit(bulk.rows_from_list(vins), deps=deps, caller=caller)
    status = await wait_for(job.id, deps, caller)
    time.perf_counter() - started

    assert status.status == "done"
    assert status.lines == 10_000
    assert status.invalid == 0
    assert status.unique_vins + status.duplicates == 10_000
    assert status.chunks_done == status.chunks == -(-status.unique_vins // CHUNK_SIZE)
    assert status.progress.done + status.progress.failed == status.unique_vins
    assert status.summary is not None
    assert sum(status.summary.by_model_year.values()) > 0
    rows = await all_rows(job.id, deps, caller)
    assert_each_line_once(rows, vins)
    assert all(row["vin"] == vin for row, vin in zip(rows, vins, strict=True))
    assert all(row["error"] is None for row in rows)


def corrupt(vin: str, index: int) -> str:
    kinds = (vin[:-1], vin + "9", vin[:8] + "O" + vin[9:], vin[:5] + "-!" + vin[7:], "")
    return kinds[index % len(kinds)]


async def test_exactly_the_invalid_rows_are_reported_when_a_tenth_of_the_lines_are_invalid(
    deps: BulkDeps,
    sessions: async_sessionmaker[AsyncSession],
    start_worker: list[WorkerProcess],
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    good = ultravin.generate(900, seed=12, now=NOW)
    lines: list[str] = []
    bad_lines: set[int] = set()
    for index in range(1_000):
        if index % 10 == 9:
            lines.append(corrupt(good[index % 900], index // 10))
            bad_lines.add(index + 1)
        else:
            lines.append(good[index - index // 10])
    caller = await make_caller(sessions)
    new_worker(start_worker, worker_env, tmp_path / "worker.log")

    job = await bulk.submit(bulk.rows_from_list(lines), deps=deps, caller=caller)
    assert job.invalid == 100
    assert {row.line for row in job.invalid_rows} == bad_lines
    status = await wait_for(job.id, deps, caller)

    assert status.status == "done"
    assert {row.line for row in status.invalid_rows} == bad_lines
    rows = await all_rows(job.id, deps, caller)
    assert_each_line_once(rows, lines)
    errors = {int(str(row["line"])) for row in rows if row["error"] is not None}
    assert errors == bad_lines
    codes = {row["error"]["error"] for row in rows if isinstance(row["error"], dict)}
    assert codes == {"invalid_vin"}


async def test_no_line_is_lost_or_duplicated_when_the_worker_is_killed_mid_job_and_restarted(
    deps: BulkDeps,
    sessions: async_sessionmaker[AsyncSession],
    start_worker: list[WorkerProcess],
    worker_env: dict[str, str],
    broker: redis_sync.Redis,
    tmp_path: Path,
) -> None:
    vins = ultravin.generate(20_000, seed=13, now=NOW)
    caller = await make_caller(sessions)
    first = new_worker(start_worker, worker_env, tmp_path / "first.log")

    job = await bulk.submit(bulk.rows_from_list(vins), deps=deps, caller=caller)
    before = await wait_for(job.id, deps, caller, until="started")
    first.kill(signal.SIGKILL)
    killed = await bulk.get_status(job.id, deps=deps, caller=caller)
    assert killed.status == "running"
    assert killed.chunks_done < killed.chunks, "the job finished before the kill; make it longer"
    assert before.chunks_done <= killed.chunks_done

    new_worker(start_worker, worker_env, tmp_path / "second.log")
    status = await wait_for(job.id, deps, caller, timeout_s=45)

    assert status.status == "done"
    assert status.chunks_done == status.chunks
    assert status.progress.done + status.progress.failed == status.unique_vins
    rows = await all_rows(job.id, deps, caller)
    assert_each_line_once(rows, vins)
    assert all(row["error"] is None and row["vin"] == vin for row, vin in zip(rows, vins, strict=True))


async def test_cancellation_stops_further_chunks_when_a_job_is_cancelled_mid_run(
    deps: BulkDeps,
    sessions: async_sessionmaker[AsyncSession],
    start_worker: list[WorkerProcess],
    worker_env: dict[str, str],
    broker: redis_sync.Redis,
    tmp_path: Path,
) -> None:
    vins = ultravin.generate(20_000, seed=14, now=NOW)
    caller = await make_caller(sessions)
    new_worker(start_worker, worker_env, tmp_path / "worker.log")

    job = await bulk.submit(bulk.rows_from_list(vins), deps=deps, caller=caller)
    await wait_for(job.id, deps, caller, until="started")
    cancelled = await bulk.cancel(job.id, deps=deps, caller=caller)
    assert cancelled.status == "cancelled"
    deadline = time.monotonic() + 30
    while broker.llen(QUEUE):
        assert time.monotonic() < deadline, "the worker did not drain the cancelled job's chunks"
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # the last chunks taken from the queue finish (and are skipped)

    final = await bulk.get_status(job.id, deps=deps, caller=caller)
    assert final.status == "cancelled"
    assert final.chunks_done == cancelled.chunks_done < final.chunks
    rows = await all_rows(job.id, deps, caller)
    assert_each_line_once(rows, vins)
    not_decoded = [row for row in rows if row["error"] is not None]
    assert not_decoded
    assert all(isinstance(r["error"], dict) and r["error"]["error"] == "not_decoded" for r in not_decoded)


async def test_another_user_cannot_read_or_cancel_the_job(
    deps: BulkDeps, sessions: async_sessionmaker[AsyncSession], broker: redis_sync.Redis
) -> None:
    owner = await make_caller(sessions, tier="free")
    other = await make_caller(sessions, tier="free")
    job = await bulk.submit(
        [InputRow(1, "1HGCM82633A004352"), InputRow(2, "not a vin")], deps=deps, caller=owner
    )

    with pytest.raises(JobNotFound):
        await bulk.get_status(job.id, deps=deps, caller=other)
    with pytest.raises(JobNotFound):
        await all_rows(job.id, deps, other)
    with pytest.raises(JobNotFound):
        await bulk.cancel(job.id, deps=deps, caller=other)
    assert (await bulk.get_status(job.id, deps=deps, caller=owner)).status == "queued"
