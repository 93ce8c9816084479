"""Bulk jobs end to end on a real Celery worker process, the session's PostgreSQL and Redis.

Each test starts its own `celery -A tools.worker worker` (prefork, two processes) in its
own process group and kills the group in teardown, checking that no process is left.
Jobs are committed for real (the worker reads them from its own connections), by users
created for this module and deleted at its end.
"""

from __future__ import annotations

import asyncio
import collections
import csv
import dataclasses
import io
import itertools
import json
import signal
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import celery_worker
import psycopg
import pytest
import redis as redis_sync
import ultravin
from celery_worker import QUEUE, WorkerProcess
from sqlalchemy import delete, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tools import bulk
from tools.bulk import BulkDeps, CeleryJobQueue, InputRow, JobNotFound, JobStatus
from tools.domain.vehicle import DecodedVehicle
from tools.domain.vin import Vin
from tools.embedded import EmbeddedPostgres
from tools.providers.base import DecodeRequest, Limit
from tools.providers.kv import RedisKvStore
from tools.providers.ratelimit import GcraRateLimiter
from tools.providers.ultravin import UltravinDecoder
from tools.settings import BulkSettings
from tools.storage import job_repo, migrate
from tools.storage.job_repo import RESULT_FIELDS, ResultLayoutMismatch
from tools.storage.models import User
from tools.storage.session import create_engine, session_factory, transaction
from tools.storage.user_repo import get_or_create_user
from tools.vin import Caller, VinDeps

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1)  # noqa: DTZ001 - ultravin.generate takes a naive date
CHUNK_SIZE = 500
VISIBILITY_TIMEOUT_S = 2  # a killed worker's unacknowledged chunks come back quickly


@pytest.fixture(scope="module")
def worker_env(pg_url: str, redis_url: str) -> dict[str, str]:
    return celery_worker.worker_env(
        pg_url,
        redis_url,
        VINBOT_BULK__CHUNK_SIZE=str(CHUNK_SIZE),
        VINBOT_BULK__VISIBILITY_TIMEOUT_S=str(VISIBILITY_TIMEOUT_S),
        # A chunk that cannot be decoded at all is given up quickly.
        VINBOT_BULK__TASK_MAX_RETRIES="1",
        VINBOT_BULK__RETRY_BACKOFF_S="0.1",
    )


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis_sync.Redis]:
    client = redis_sync.Redis(unix_socket_path=redis_url.removeprefix("unix://"))
    client.delete(QUEUE, "unacked", "unacked_index")
    yield client
    client.delete(QUEUE, "unacked", "unacked_index")
    client.close()


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


async def all_rows(job_id: str, deps: BulkDeps, caller: Caller) -> list[dict[str, object]]:
    return [row async for row in bulk.iter_results(job_id, deps=deps, caller=caller)]


async def results_json(job_id: str, deps: BulkDeps, caller: Caller) -> bytes:
    return b"".join([piece async for piece in bulk.stream_results(job_id, "json", deps=deps, caller=caller)])


async def csv_both_ways(
    job_id: str, deps: BulkDeps, caller: Caller
) -> tuple[list[list[str]], list[list[str]]]:
    """The results CSV as PostgreSQL renders it (`stream_results`) and as Python renders it."""
    fast = b"".join([piece async for piece in bulk.stream_results(job_id, "csv", deps=deps, caller=caller)])
    rows = bulk.iter_results(job_id, deps=deps, caller=caller)
    slow = "".join([piece async for piece in bulk.iter_rendered(rows, "csv")])
    return list(csv.reader(io.StringIO(fast.decode()))), list(csv.reader(io.StringIO(slow)))


@dataclass
class Jobs:
    """A job test's kit: the deps, a fresh user, and real workers started on demand (killed at the end)."""

    deps: BulkDeps
    sessions: async_sessionmaker[AsyncSession]
    env: dict[str, str]
    logs: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self, name: str = "worker", **settings: str) -> WorkerProcess:
        worker = WorkerProcess({**self.env, **settings}, self.logs / f"{name}.log")
        self.workers.append(worker)
        worker.start()
        return worker

    async def caller(self, tier: str = "premium") -> Caller:
        return await make_caller(self.sessions, tier)

    async def submit(self, lines: list[str], caller: Caller) -> JobStatus:
        return await bulk.submit(bulk.rows_from_list(lines), deps=self.deps, caller=caller)

    async def status(self, job_id: str, caller: Caller) -> JobStatus:
        return await bulk.get_status(job_id, deps=self.deps, caller=caller)

    async def wait_for(
        self, job_id: str, caller: Caller, *, until: str = "finished", timeout_s: float = 60.0
    ) -> JobStatus:
        deadline = time.monotonic() + timeout_s
        while True:
            status = await self.status(job_id, caller)
            if (until == "finished" and status.finished) or (until == "started" and status.chunks_done >= 2):
                return status
            if time.monotonic() > deadline:
                pytest.fail(f"job {job_id} did not get {until} in {timeout_s} s: {status.progress}")
            await asyncio.sleep(0.2)

    async def rows(self, job_id: str, caller: Caller) -> list[dict[str, object]]:
        return await all_rows(job_id, self.deps, caller)

    async def assert_downloads_agree(
        self, job_id: str, caller: Caller, rows: list[dict[str, object]]
    ) -> None:
        """The CSV file equals the rows rendered in Python; the JSON file is the rows."""
        fast, slow = await csv_both_ways(job_id, self.deps, caller)
        assert fast == slow
        assert json.loads(await results_json(job_id, self.deps, caller)) == rows


@pytest.fixture
def jobs(
    deps: BulkDeps,
    sessions: async_sessionmaker[AsyncSession],
    worker_env: dict[str, str],
    broker: redis_sync.Redis,
    tmp_path: Path,
) -> Iterator[Jobs]:
    kit = Jobs(deps, sessions, worker_env, tmp_path)
    yield kit
    for worker in kit.workers:
        worker.stop()


def assert_each_line_once(rows: list[dict[str, object]], vins: list[str]) -> None:
    assert [row["line"] for row in rows] == list(range(1, len(vins) + 1))
    assert [row["input"] for row in rows] == vins


async def test_every_line_is_in_the_results_exactly_once_when_a_10000_vin_job_completes(jobs: Jobs) -> None:
    vins = ultravin.generate(10_000, seed=11, now=NOW)
    caller = await jobs.caller()
    jobs.start_worker()

    job = await jobs.submit(vins, caller)
    status = await jobs.wait_for(job.id, caller)

    assert status.status == "done"
    assert status.lines == 10_000
    assert status.invalid == 0
    assert status.unique_vins + status.duplicates == 10_000
    assert status.chunks_done == status.chunks == -(-status.unique_vins // CHUNK_SIZE)
    assert status.progress.done + status.progress.failed == status.unique_vins
    assert status.summary is not None
    assert sum(status.summary.by_model_year.values()) > 0
    rows = await jobs.rows(job.id, caller)
    assert_each_line_once(rows, vins)
    assert all(row["vin"] == vin for row, vin in zip(rows, vins, strict=True))
    assert all(row["error"] is None for row in rows)
    assert sum(status.summary.by_make.values()) <= sum(1 for row in rows if row["make"] is not None)


def corrupt(vin: str, index: int) -> str:
    kinds = (vin[:-1], vin + "9", vin[:8] + "O" + vin[9:], vin[:5] + "-!" + vin[7:], "")
    return kinds[index % len(kinds)]


async def test_exactly_the_invalid_rows_are_reported_when_a_tenth_of_the_lines_are_invalid(
    jobs: Jobs,
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
    caller = await jobs.caller()
    jobs.start_worker()

    job = await jobs.submit(lines, caller)
    assert job.invalid == 100
    assert {row.line for row in job.invalid_rows} == bad_lines
    status = await jobs.wait_for(job.id, caller)

    assert status.status == "done"
    assert {row.line for row in status.invalid_rows} == bad_lines
    rows = await jobs.rows(job.id, caller)
    assert_each_line_once(rows, lines)
    errors = {int(str(row["line"])) for row in rows if row["error"] is not None}
    assert errors == bad_lines
    codes = {row["error"]["error"] for row in rows if isinstance(row["error"], dict)}
    assert codes == {"invalid_vin"}
    await jobs.assert_downloads_agree(job.id, caller, rows)


async def test_no_line_is_lost_or_duplicated_when_the_worker_is_killed_mid_job_and_restarted(
    jobs: Jobs,
) -> None:
    vins = ultravin.generate(20_000, seed=13, now=NOW)
    caller = await jobs.caller()
    first = jobs.start_worker("first")

    job = await jobs.submit(vins, caller)
    before = await jobs.wait_for(job.id, caller, until="started")
    first.kill(signal.SIGKILL)
    killed = await jobs.status(job.id, caller)
    assert killed.status == "running"
    assert killed.chunks_done < killed.chunks, "the job finished before the kill; make it longer"
    assert before.chunks_done <= killed.chunks_done

    jobs.start_worker("second")
    status = await jobs.wait_for(job.id, caller, timeout_s=45)

    assert status.status == "done"
    assert status.chunks_done == status.chunks
    assert status.progress.done + status.progress.failed == status.unique_vins
    rows = await jobs.rows(job.id, caller)
    assert_each_line_once(rows, vins)
    wrong = [
        row for row, vin in zip(rows, vins, strict=True) if row["error"] is not None or row["vin"] != vin
    ]
    assert wrong == []


async def test_a_chunk_whose_message_the_broker_lost_is_sent_again_when_a_worker_starts(
    jobs: Jobs, broker: redis_sync.Redis
) -> None:
    vins = ultravin.generate(CHUNK_SIZE * 3, seed=15, now=NOW)
    caller = await jobs.caller()
    job = await jobs.submit(vins, caller)
    # What a worker killed between popping a message and recording it unacknowledged leaves.
    assert broker.llen(QUEUE) == 3
    assert broker.rpop(QUEUE) is not None

    jobs.start_worker()
    status = await jobs.wait_for(job.id, caller, timeout_s=30)

    assert status.status == "done"
    assert status.chunks_done == status.chunks == 3
    assert_each_line_once(await jobs.rows(job.id, caller), vins)


def drop_messages_of(broker: redis_sync.Redis, job_id: str) -> int:
    """Delete the job's chunk messages waiting in the queue, as a broker restarted empty loses them."""
    dropped = 0
    for message in broker.lrange(QUEUE, 0, -1):
        if job_id in json.loads(message)["headers"]["argsrepr"]:
            dropped += broker.lrem(QUEUE, 1, message)
    return dropped


async def test_a_job_whose_messages_the_broker_lost_is_finished_when_the_running_worker_sees_it_stall(
    jobs: Jobs, broker: redis_sync.Redis
) -> None:
    caller = await jobs.caller()
    worker = jobs.start_worker(VINBOT_BULK__STALL_RESEND_S="2")
    busy = await jobs.submit(ultravin.generate(CHUNK_SIZE * 30, seed=16, now=NOW), caller)
    vins = ultravin.generate(CHUNK_SIZE * 3, seed=17, now=NOW)
    job = await jobs.submit(vins, caller)
    # Queued behind the first job's chunks, the second's messages are still waiting: lose them all.
    assert drop_messages_of(broker, job.id) == 3

    await jobs.wait_for(busy.id, caller, timeout_s=60)
    status = await jobs.wait_for(job.id, caller, timeout_s=30)

    assert status.status == "done"
    assert status.chunks_done == status.chunks == 3
    assert_each_line_once(await jobs.rows(job.id, caller), vins)
    assert "sent 3 unfinished chunks of stalled jobs again" in worker.log.read_text()


async def test_cancellation_stops_further_chunks_when_a_job_is_cancelled_mid_run(
    jobs: Jobs, broker: redis_sync.Redis
) -> None:
    vins = ultravin.generate(20_000, seed=14, now=NOW)
    caller = await jobs.caller()
    jobs.start_worker()

    job = await jobs.submit(vins, caller)
    await jobs.wait_for(job.id, caller, until="started")
    cancelled = await bulk.cancel(job.id, deps=jobs.deps, caller=caller)
    assert cancelled.status == "cancelled"
    deadline = time.monotonic() + 30
    while broker.llen(QUEUE):
        assert time.monotonic() < deadline, "the worker did not drain the cancelled job's chunks"
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # the last chunks taken from the queue finish (and are skipped)

    final = await jobs.status(job.id, caller)
    assert final.status == "cancelled"
    assert final.chunks_done == cancelled.chunks_done < final.chunks
    rows = await jobs.rows(job.id, caller)
    assert_each_line_once(rows, vins)
    not_decoded = [row for row in rows if row["error"] is not None]
    assert not_decoded
    assert all(isinstance(r["error"], dict) and r["error"]["error"] == "not_decoded" for r in not_decoded)
    await jobs.assert_downloads_agree(job.id, caller, rows)


async def test_another_user_cannot_read_or_cancel_the_job(jobs: Jobs) -> None:
    owner = await jobs.caller(tier="free")
    other = await jobs.caller(tier="free")
    job = await bulk.submit(
        [InputRow(1, "1HGCM82633A004352"), InputRow(2, "not a vin")], deps=jobs.deps, caller=owner
    )

    with pytest.raises(JobNotFound):
        await jobs.status(job.id, other)
    with pytest.raises(JobNotFound):
        await jobs.rows(job.id, other)
    with pytest.raises(JobNotFound):
        await results_json(job.id, jobs.deps, other)
    with pytest.raises(JobNotFound):
        await bulk.cancel(job.id, deps=jobs.deps, caller=other)
    assert (await jobs.status(job.id, owner)).status == "queued"


async def test_lines_are_failed_and_the_job_finishes_when_a_chunk_fails_even_offline(
    jobs: Jobs, sessions: async_sessionmaker[AsyncSession]
) -> None:
    vins = ultravin.generate(1_500, seed=15, now=NOW)
    # A duplicate of a line in the broken chunk, and an invalid line with characters COPY escapes.
    lines = [*vins, vins[3], 'not\\a\tvin, "é"']
    caller = await jobs.caller()
    job = await jobs.submit(lines, caller)
    # Corrupt one stored line of chunk 0 before any worker runs: no decoder can read the
    # chunk, so every attempt fails (retried with backoff, then offline, then given up).
    async with transaction(sessions) as session:
        chunk_lines = set(
            (
                await session.execute(
                    text("SELECT line FROM job_items WHERE job_id = :job AND chunk_no = 0"), {"job": job.id}
                )
            ).scalars()
        )
        await session.execute(
            text("UPDATE job_items SET vin = 'BAD' WHERE job_id = :job AND line = :line"),
            {"job": job.id, "line": min(chunk_lines)},
        )
    jobs.start_worker()

    status = await jobs.wait_for(job.id, caller)

    assert status.status == "done"
    assert status.chunks_done == status.chunks == 3
    assert status.progress.failed >= CHUNK_SIZE
    rows = await jobs.rows(job.id, caller)
    assert_each_line_once(rows, lines)
    failed = {
        int(str(r["line"]))
        for r in rows
        if isinstance(r["error"], dict) and r["error"]["error"] == "decode_failed"
    }
    # Chunk 0 (the 500 lowest VINs), and the duplicate of line 4 if that is one of them.
    assert len(chunk_lines) == CHUNK_SIZE
    assert failed == chunk_lines | ({len(vins) + 1} if 4 in chunk_lines else set())
    assert all(
        r["vin"] == vin and r["error"] is None
        for r, vin in zip(rows[:1500], vins, strict=True)
        if int(str(r["line"])) not in chunk_lines
    )
    assert rows[-1]["error"]["error"] == "invalid_vin"  # type: ignore[index]
    await jobs.assert_downloads_agree(job.id, caller, rows)


async def test_watch_yields_every_change_until_the_job_has_finished(jobs: Jobs) -> None:
    vins = ultravin.generate(3_000, seed=16, now=NOW)
    caller = await jobs.caller()
    jobs.start_worker()
    job = await jobs.submit(vins, caller)

    seen = [s async for s in bulk.watch(job.id, deps=jobs.deps, caller=caller, interval_s=0.02)]

    assert seen[-1].finished
    assert seen[-1].status == "done"
    assert seen[-1].summary is not None
    assert not any(s.finished for s in seen[:-1])
    progress = [(s.chunks_done, s.progress.done + s.progress.failed) for s in seen]
    assert progress == sorted(progress)
    states = [(s.status, s.chunks_done, s.progress.done, s.progress.failed) for s in seen]
    assert all(a != b for a, b in itertools.pairwise(states))  # only changes are yielded
    with pytest.raises(JobNotFound):
        await anext(bulk.watch(job.id, deps=jobs.deps, caller=await jobs.caller()))


class _NoQueue:
    """Keeps the chunks to itself: the test runs them in-process with `bulk.process_chunk`."""

    async def enqueue(self, job_id: str, chunks: Sequence[int]) -> None:
        return None


class _HookedDecoder:
    """The offline decoder with a hook run while it decodes (as a remote provider's HTTP calls would)."""

    name = "hooked"

    def __init__(self, during: Callable[[], Awaitable[None]] | None = None) -> None:
        self._offline = UltravinDecoder()
        self._during = during

    async def decode(self, request: DecodeRequest) -> DecodedVehicle:
        return (await self.decode_many([request]))[0]

    async def decode_many(self, requests: Sequence[DecodeRequest]) -> list[DecodedVehicle]:
        if self._during is not None:
            await self._during()
        return self._offline.decode_many_sync(requests)


async def _in_process_job(
    sessions: async_sessionmaker[AsyncSession], vins: list[str]
) -> tuple[BulkDeps, Caller, str]:
    deps = BulkDeps(
        sessions=sessions, queue=_NoQueue(), limiter=None, settings=BulkSettings(chunk_size=CHUNK_SIZE)
    )
    caller = await make_caller(sessions)
    job = await bulk.submit(bulk.rows_from_list(vins), deps=deps, caller=caller)
    return deps, caller, job.id


class _RunningQueue:
    """Runs each chunk in-process as soon as it is enqueued, and looks at the job meanwhile."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], caller: Caller) -> None:
        self.sessions = sessions
        self.caller = caller
        self.deps = BulkDeps(
            sessions=sessions, queue=self, limiter=None, settings=BulkSettings(chunk_size=CHUNK_SIZE)
        )
        self.vin = VinDeps(decoders={"offline": UltravinDecoder()})
        self.seen: list[tuple[int, str, bool]] = []  # chunk, outcome, whether the owner could see the job

    async def enqueue(self, job_id: str, chunks: Sequence[int]) -> None:
        for chunk_no in chunks:
            outcome = await bulk.process_chunk(job_id, chunk_no, sessions=self.sessions, vin=self.vin)
            try:
                await bulk.get_status(job_id, deps=self.deps, caller=self.caller)
                visible = True
            except JobNotFound:
                visible = False
            self.seen.append((chunk_no, outcome.skipped or "run", visible))


async def test_chunks_run_while_the_rest_is_stored_and_the_job_is_seen_only_whole_when_submitted(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    vins = ultravin.generate(CHUNK_SIZE * 3 + 7, seed=37, now=NOW)
    lines = [*vins, vins[0], "not a vin"]
    caller = await make_caller(sessions)
    queue = _RunningQueue(sessions, caller)

    job = await bulk.submit(bulk.rows_from_list(lines), deps=queue.deps, caller=caller)

    # Batches of 1 then 2 chunks: the first three ran before the last lines were stored, unseen.
    assert queue.seen[:3] == [(0, "run", False), (1, "run", False), (2, "run", False)]
    assert queue.seen[3] == (3, "run", True)
    assert job.status == "running"  # as the last commit left it, before its last chunk ran
    status = await bulk.get_status(job.id, deps=queue.deps, caller=caller)
    assert status.status == "done"
    assert status.chunks_done == status.chunks == 4
    assert status.progress.done + status.progress.failed == status.unique_vins == len(vins)
    assert [r.line for r in status.invalid_rows] == [len(lines)]
    rows = await all_rows(job.id, queue.deps, caller)
    assert [row["line"] for row in rows] == list(range(1, len(lines) + 1))
    assert rows[len(vins)] == {**rows[0], "line": len(vins) + 1}


async def test_the_csv_file_reads_its_segments_in_order_and_a_reader_that_stops_leaves_no_connection_out(
    sessions: async_sessionmaker[AsyncSession], pg_url: str
) -> None:
    caller = await make_caller(sessions)
    queue = _RunningQueue(sessions, caller)
    step = job_repo.CSV_SEGMENT_LINES
    # Lines in the first, second and fourth segments (the third has none), a duplicate, an invalid one.
    lines = [1, step - 1, step, 3 * step + 5, 3 * step + 6]
    vin, other = ultravin.generate(2, seed=43, now=NOW, invalid_rate=0.0)
    inputs = [vin, other, vin, "not a vin", other]
    job = await bulk.submit(
        [InputRow(line, text) for line, text in zip(lines, inputs, strict=True)],
        deps=queue.deps,
        caller=caller,
    )

    fast, slow = await csv_both_ways(job.id, queue.deps, caller)
    assert fast == slow
    assert [row[:2] for row in fast[1:]] == [
        [str(line), text] for line, text in zip(lines, inputs, strict=True)
    ]

    engine = create_engine(pg_url)  # a pool of its own, which no other test uses
    own = BulkDeps(sessions=session_factory(engine), queue=None)
    try:
        stream = bulk.stream_results(job.id, "csv", deps=own, caller=caller)
        assert (await anext(stream)).startswith(b"line,input,")
        assert (await anext(stream)).startswith(b"1,")
        await stream.aclose()  # the client went away: the segment still being read is cancelled
        assert engine.sync_engine.pool.checkedout() == 0
    finally:
        await engine.dispose()


class _BrokenQueue(_RunningQueue):
    """Runs the first batch's chunks, then loses the broker."""

    async def enqueue(self, job_id: str, chunks: Sequence[int]) -> None:
        if self.seen:
            raise ConnectionError("the broker went away")
        await super().enqueue(job_id, chunks)


async def test_a_half_stored_job_is_deleted_with_its_results_when_the_submission_fails(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    caller = await make_caller(sessions)
    queue = _BrokenQueue(sessions, caller)

    with pytest.raises(ConnectionError):
        await bulk.submit(
            bulk.rows_from_list(ultravin.generate(CHUNK_SIZE * 2, seed=41, now=NOW)),
            deps=queue.deps,
            caller=caller,
        )

    assert queue.seen == [(0, "run", False)]
    async with transaction(sessions) as session:
        left = (
            "SELECT (SELECT count(*) FROM jobs WHERE user_id = :user),"
            " (SELECT count(*) FROM job_items i JOIN jobs j ON j.id = i.job_id WHERE j.user_id = :user),"
            " (SELECT count(*) FROM job_results r WHERE r.job_id NOT IN (SELECT id FROM jobs)),"
            " (SELECT count(*) FROM job_chunks c WHERE c.job_id NOT IN (SELECT id FROM jobs))"
        )
        assert (await session.execute(text(left), {"user": caller.user_id})).one() == (0, 0, 0, 0)


async def test_the_quota_a_failed_submission_spent_is_given_back(
    sessions: async_sessionmaker[AsyncSession], kv: RedisKvStore
) -> None:
    caller = await make_caller(sessions)
    queue = _BrokenQueue(sessions, caller)
    limiter = GcraRateLimiter(kv)
    settings = BulkSettings(chunk_size=CHUNK_SIZE, vins_per_day_premium=CHUNK_SIZE * 2)
    deps = dataclasses.replace(queue.deps, limiter=limiter, settings=settings)
    rows = bulk.rows_from_list(ultravin.generate(CHUNK_SIZE * 2, seed=42, now=NOW))

    with pytest.raises(ConnectionError):
        await bulk.submit(rows, deps=deps, caller=caller)

    day = Limit(CHUNK_SIZE * 2, timedelta(days=1))
    assert (await limiter.hit(f"user:{caller.user_id}:bulk:day", day, cost=CHUNK_SIZE * 2)).allowed


async def test_a_submission_left_half_way_is_deleted_when_its_owner_submits_again_later(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    deps, caller, job_id = await _in_process_job(sessions, ultravin.generate(12, seed=43, now=NOW))
    async with transaction(sessions) as session:
        # As a submitter killed between two commits leaves its job, an hour and more ago.
        await session.execute(
            text(
                "UPDATE jobs SET status = 'submitting', created_at = now() - interval '61 minutes' "
                "WHERE id = :job"
            ),
            {"job": job_id},
        )
    with pytest.raises(JobNotFound):
        await bulk.get_status(job_id, deps=deps, caller=caller)

    await bulk.submit(bulk.rows_from_list(ultravin.generate(3, seed=47, now=NOW)), deps=deps, caller=caller)

    async with transaction(sessions) as session:
        count = (
            "SELECT (SELECT count(*) FROM jobs WHERE id = :job),"
            " (SELECT count(*) FROM job_items WHERE job_id = :job)"
        )
        assert (await session.execute(text(count), {"job": job_id})).one() == (0, 0)


async def test_a_cancel_while_a_chunk_decodes_is_neither_blocked_nor_overwritten(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    deps, caller, job_id = await _in_process_job(sessions, ultravin.generate(20, seed=17, now=NOW))

    async def cancel_meanwhile() -> None:
        # The decode holds no transaction: the job row can be locked at once, and cancelled.
        async with transaction(sessions) as session:
            await session.execute(
                text("SELECT 1 FROM jobs WHERE id = :job FOR UPDATE NOWAIT"), {"job": job_id}
            )
        await bulk.cancel(job_id, deps=deps, caller=caller)

    vin = VinDeps(decoders={"hooked": _HookedDecoder(cancel_meanwhile)}, default_provider="hooked")

    outcome = await bulk.process_chunk(job_id, 0, sessions=sessions, vin=vin)

    assert outcome.skipped == "cancelled"
    async with transaction(sessions) as session:
        states = (
            await session.execute(
                text("SELECT state, count(*) FROM job_items WHERE job_id = :job GROUP BY state"),
                {"job": job_id},
            )
        ).all()
        results = (
            await session.execute(
                text("SELECT count(*) FROM job_results WHERE job_id = :job"), {"job": job_id}
            )
        ).scalar_one()
        chunks = (
            await session.execute(
                text("SELECT count(*) FROM job_chunks WHERE job_id = :job"), {"job": job_id}
            )
        ).scalar_one()
    assert [tuple(s) for s in states] == [("pending", 20)]
    assert results == 0
    assert chunks == 0
    assert (await bulk.get_status(job_id, deps=deps, caller=caller)).status == "cancelled"


async def test_a_chunk_run_twice_writes_each_line_once_when_it_is_decoded_in_process(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    vins = ultravin.generate(30, seed=19, now=NOW)
    deps, caller, job_id = await _in_process_job(sessions, vins)
    vin = VinDeps(decoders={"hooked": _HookedDecoder()}, default_provider="hooked")

    first = await bulk.process_chunk(job_id, 0, sessions=sessions, vin=vin)
    again = await bulk.process_chunk(job_id, 0, sessions=sessions, vin=vin)

    assert first.skipped is None
    assert first.done + first.failed == len(set(vins))
    assert again.skipped == "done"
    status = await bulk.get_status(job_id, deps=deps, caller=caller)
    assert status.status == "done"
    assert status.progress.done + status.progress.failed == len(set(vins))
    assert_each_line_once(await all_rows(job_id, deps, caller), vins)


async def test_results_a_chunk_left_without_finishing_are_replaced_when_it_runs(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    vins = ultravin.generate(30, seed=21, now=NOW)
    deps, caller, job_id = await _in_process_job(sessions, vins)
    async with transaction(sessions) as session:
        # As a chunk whose job was cancelled while it ran leaves them: results, no finished chunk.
        await session.execute(
            text(
                "INSERT INTO job_results (job_id, line, layout, cells) "
                "SELECT job_id, line, :layout, 'stale' FROM job_items "
                "WHERE job_id = :job AND chunk_no = 0 AND line IN (3, 17)"
            ),
            {"job": job_id, "layout": job_repo.RESULT_LAYOUT_VERSION},
        )
    vin = VinDeps(decoders={"offline": UltravinDecoder()})

    outcome = await bulk.process_chunk(job_id, 0, sessions=sessions, vin=vin)

    assert outcome.skipped is None
    assert outcome.done + outcome.failed == len(set(vins))
    rows = await all_rows(job_id, deps, caller)
    assert_each_line_once(rows, vins)
    assert [r["vin"] for r in rows] == vins


async def test_a_stored_result_of_another_layout_is_rejected_when_a_job_is_read(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    deps, caller, job_id = await _in_process_job(sessions, ultravin.generate(10, seed=23, now=NOW))
    vin = VinDeps(decoders={"hooked": _HookedDecoder()}, default_provider="hooked")
    await bulk.process_chunk(job_id, 0, sessions=sessions, vin=vin)
    async with transaction(sessions) as session:
        await session.execute(
            text("UPDATE job_results SET layout = 999 WHERE job_id = :job AND line = 4"), {"job": job_id}
        )

    with pytest.raises(ResultLayoutMismatch, match="layout 999"):
        await results_json(job_id, deps, caller)
    with pytest.raises((DBAPIError, psycopg.Error), match="stored job result of layout 999"):
        await csv_both_ways(job_id, deps, caller)
    # The summary reads the typed columns, which no layout changes.
    assert (await bulk.get_status(job_id, deps=deps, caller=caller)).summary is not None


async def test_lines_and_results_need_their_job_and_go_with_it_when_written_renamed_or_deleted(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # Migration 0009 checks the reference once per statement (triggers), not per row (a foreign key).
    _, _, job_id = await _in_process_job(sessions, ultravin.generate(12, seed=31, now=NOW))
    await bulk.process_chunk(
        job_id, 0, sessions=sessions, vin=VinDeps(decoders={"offline": UltravinDecoder()})
    )
    missing = "f" * 32
    orphans = {
        "job_items": "INSERT INTO job_items (job_id, line, input, state) "
        "SELECT :job, line, input, state FROM job_items WHERE job_id = :owner",
        "job_results": "INSERT INTO job_results (job_id, line, layout, cells) "
        "SELECT :job, line, layout, cells FROM job_results WHERE job_id = :owner",
    }
    for table, insert in orphans.items():
        with pytest.raises(DBAPIError, match=f"a row of {table} names a job that does not exist"):
            async with transaction(sessions) as session:
                await session.execute(text(insert), {"job": missing, "owner": job_id})
    with pytest.raises(DBAPIError, match="a job's id cannot change"):
        async with transaction(sessions) as session:
            await session.execute(
                text("UPDATE jobs SET id = :new WHERE id = :job"), {"new": missing, "job": job_id}
            )

    async with transaction(sessions) as session:
        counts = (
            "SELECT (SELECT count(*) FROM job_items WHERE job_id = :job),"
            " (SELECT count(*) FROM job_results WHERE job_id = :job)"
        )
        assert (await session.execute(text(counts), {"job": job_id})).one() == (12, 12)
        await session.execute(text("DELETE FROM jobs WHERE id = :job"), {"job": job_id})
        assert (await session.execute(text(counts), {"job": job_id})).one() == (0, 0)


def layout_1(vehicle: DecodedVehicle) -> list[object]:
    """A result as migration 0007 left it in `job_items.result`: layout 1, a JSON array."""
    dumped = vehicle.model_dump(mode="json", exclude={"raw"})
    values: list[object] = [1]
    for f in RESULT_FIELDS:
        value = dumped[f.path[0]] if len(f.path) == 1 else dumped[f.path[0]][f.path[1]]
        if f.column == "errors":
            value = "; ".join(f"{e['code']}: {e['message']}" for e in value) or None
        elif f.column == "suggestions":
            value = " ".join(value) or None
        values.append(value)
    return [*values, [[e["code"], e["message"]] for e in dumped["errors"]], list(dumped["suggestions"])]


async def test_results_stored_before_0008_read_the_same_when_the_schema_is_migrated() -> None:
    vins = ultravin.generate(40, seed=29, now=NOW, invalid_rate=0.3)
    decoder = UltravinDecoder()
    vehicles = decoder.decode_many_sync([DecodeRequest(Vin.parse(v)) for v in vins])
    vehicles[5] = vehicles[5].model_copy(update={"model": 'Accord, "EX"\nSedan', "trim": ""})
    assert any(v.errors for v in vehicles)
    failure = {"error": "decode_failed", "message": "It failed, badly."}
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="vinbot-pg0008-")), database="vinbot_0008")
    url = server.start()
    try:
        migrate.upgrade(url, "0007")
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn) as conn:
            user = conn.execute(
                "INSERT INTO users (external_id, tier) VALUES ('old', 'premium') RETURNING id"
            )
            user_id = user.fetchone()[0]  # type: ignore[index]
            conn.execute(
                "INSERT INTO jobs (id, user_id, channel, status, lines, invalid, unique_vins, chunk_size, "
                "chunks) VALUES (%s, %s, 'cli', 'done', 43, 1, 41, 500, 1)",
                ("a" * 32, user_id),
            )
            for line, vehicle in enumerate(vehicles, start=1):
                # Layout 1 for most lines; the JSON object of the first compact-less jobs for some.
                stored = (
                    vehicle.model_dump(mode="json", exclude={"raw"}) if line % 3 == 0 else layout_1(vehicle)
                )
                conn.execute(
                    "INSERT INTO job_items (job_id, line, input, vin, chunk_no, state, result) "
                    "VALUES (%s, %s, %s, %s, 0, %s, %s)",
                    ("a" * 32, line, vehicle.vin, vehicle.vin, "done", json.dumps(stored)),
                )
            conn.execute(
                "INSERT INTO job_items (job_id, line, input, vin, chunk_no, state, error) VALUES "
                "(%s, 41, %s, %s, 0, 'failed', %s)",
                ("a" * 32, vins[0], vins[0], json.dumps(failure)),
            )
            conn.execute(
                "INSERT INTO job_items (job_id, line, input, vin, dup_of, state) "
                "VALUES (%s, 42, %s, %s, 2, 'pending')",
                ("a" * 32, vehicles[1].vin, vehicles[1].vin),
            )
            conn.execute(
                "INSERT INTO job_items (job_id, line, input, state, error) "
                "VALUES (%s, 43, 'x', 'invalid', %s)",
                ("a" * 32, json.dumps({"error": "invalid_vin", "message": "No."})),
            )

        migrate.upgrade(url)

        engine = create_engine(url)
        try:
            deps = BulkDeps(sessions=session_factory(engine), queue=None)
            caller = Caller(user_id=user_id, tier="premium", channel="cli")
            rows = await all_rows("a" * 32, deps, caller)
            status = await bulk.get_status("a" * 32, deps=deps, caller=caller)
            fast, slow = await csv_both_ways("a" * 32, deps, caller)
        finally:
            await engine.dispose()
    finally:
        server.stop()

    decoded = [
        {"line": line, "input": v.vin, **v.model_dump(mode="json", exclude={"raw"}), "error": None}
        for line, v in enumerate(vehicles, start=1)
    ]
    assert rows[:40] == decoded
    assert rows[40] == {"line": 41, "input": vins[0], "vin": None, "valid": False, "error": failure}
    assert rows[41] == {**decoded[1], "line": 42}
    assert rows[42]["error"] == {"error": "invalid_vin", "message": "No."}
    assert fast == slow
    assert status.summary is not None
    makes = collections.Counter(m for m in [*(v.make for v in vehicles), vehicles[1].make] if m is not None)
    assert all(makes[make] == n for make, n in status.summary.by_make.items())
    assert len(status.summary.by_make) == min(len(makes), bulk.SUMMARY_GROUPS)


async def test_chunks_finishing_together_neither_deadlock_nor_fail_when_two_workers_write_at_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    deps, caller, job_id = await _in_process_job(
        sessions, ultravin.generate(CHUNK_SIZE * 2, seed=31, now=NOW)
    )
    status = await bulk.get_status(job_id, deps=deps, caller=caller)
    assert status.chunks == 2
    both_decoding = asyncio.Barrier(2)

    async def together() -> None:
        await both_decoding.wait()  # both chunks write their results at the same moment

    vin = VinDeps(decoders={"hooked": _HookedDecoder(together)}, default_provider="hooked")

    outcomes = await asyncio.gather(
        bulk.process_chunk(job_id, 0, sessions=sessions, vin=vin),
        bulk.process_chunk(job_id, 1, sessions=sessions, vin=vin),
    )

    assert [o.skipped for o in outcomes] == [None, None]
    status = await bulk.get_status(job_id, deps=deps, caller=caller)
    assert status.status == "done"
    assert all(row["error"] is None for row in await all_rows(job_id, deps, caller))
