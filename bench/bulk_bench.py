"""A bulk job end to end (submit to results file) against raw `ultravin.decode_batch`, same run.

Starts its own PostgreSQL and Redis (embedded, in a temporary directory) and a real
`celery -A tools.worker worker` (prefork), submits N VINs as one job, waits for it,
writes the CSV results file, and compares the wall time with one `ultravin.decode_batch`
call over the same VINs in this process. Goal: ratio (raw time / job time) >= 0.5.

Both sides decode the job's VINs for the first time, in processes that have decoded
others before, as a long-running worker has: the VINs are generated in a child process
(`ultravin.generate` decodes every VIN it makes, and ultravin decodes a VIN it has seen
faster), and before the timed runs the workers run a warm-up job of other VINs while
this process decodes the same warm-up VINs. `decode_batch` over VINs this process has
decoded already (what earlier versions of this bench timed) is printed too.

    .venv/bin/python -m bench.bulk_bench [--n 100000] [--chunk-size 500] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import ultravin

from tools import bulk
from tools.bulk import BulkDeps, CeleryJobQueue
from tools.embedded import EmbeddedPostgres, EmbeddedRedis
from tools.runtime import tune_gc
from tools.settings import BulkSettings
from tools.storage import migrate
from tools.storage.session import create_engine, session_factory, transaction
from tools.storage.user_repo import get_or_create_user
from tools.vin import Caller

POLL_S = 0.1
"""How often the bench reads the job's status: every read costs the database (and so the
workers) CPU; ten a second adds at most 0.1 s to the figure, where twenty cost the workers ~5%."""


_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(*roots: int) -> float:
    """Return the CPU seconds (user + system) used so far by the processes `roots` and their descendants.

    Read from /proc (Linux): a figure the other sessions' load cannot inflate the way
    it inflates wall time, for the worker processes and PostgreSQL's backends.
    """
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        pid = int(stat.parent.name)
        parent[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) * _TICK_S
    total = 0.0
    for pid, seconds in used.items():
        ancestor: int | None = pid
        while ancestor is not None and ancestor not in roots:
            ancestor = parent.get(ancestor) if ancestor > 1 else None
        if ancestor is not None:
            total += seconds
    return total


def process_cpu_s(pid: int) -> float:
    """Return the CPU seconds (user + system) used so far by the process `pid` alone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S


WARM_UP_VINS = 20_000
"""The warm-up job: ten chunks of the default size, several for each worker process."""


def generated_vins(n: int, *, seed: int) -> list[str]:
    """Return `ultravin.generate(n, seed=seed)` at a fixed clock, made in a child process.

    `generate` decodes every VIN it makes, and ultravin decodes a VIN it has decoded
    before faster (10–15% on this machine): made here, the raw baseline would
    time VINs it has seen against workers that have not.
    """
    code = (
        "import sys, datetime, ultravin; "
        f"vins = ultravin.generate({n}, seed={seed}, now=datetime.datetime(2026, 6, 1)); "
        "sys.stdout.write(chr(10).join(vins))"
    )
    made = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # noqa: S603
    return made.stdout.split("\n")


def timed_decode_batch(vins: list[str]) -> tuple[float, float]:
    """Return the wall and CPU seconds of one `ultravin.decode_batch(vins)` in this process."""
    started, cpu = time.perf_counter(), time.process_time()
    ultravin.decode_batch(vins)
    return time.perf_counter() - started, time.process_time() - cpu


def start_worker(env: dict[str, str], concurrency: int, log: Path) -> subprocess.Popen[bytes]:
    argv = [
        str(Path(sys.executable).with_name("celery")),
        "-A",
        "tools.worker",
        "worker",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel=INFO",
    ]
    with log.open("wb") as handle:
        proc = subprocess.Popen(  # noqa: S603 - our own virtualenv's celery
            argv, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while b" ready." not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("worker did not start:\n" + log.read_text()[-2000:])
        time.sleep(0.05)
    return proc


async def run_job(pg_url: str, redis_url: str, vins: list[str], chunk_size: int, out: Path) -> float:
    engine = create_engine(pg_url)
    sessions = session_factory(engine)
    queue = CeleryJobQueue(bulk.broker_url_for(redis_url))
    deps = BulkDeps(sessions=sessions, queue=queue, settings=BulkSettings(chunk_size=chunk_size))
    try:
        async with transaction(sessions) as session:
            user = await get_or_create_user(session, "bench:bulk", tier="premium")
        caller = Caller(user_id=user.id, tier="premium", channel="cli")
        started, started_at = time.perf_counter(), datetime.now(UTC)
        job = await bulk.submit(bulk.rows_from_list(vins), deps=deps, caller=caller)
        submitted = time.perf_counter()
        while True:
            read_at = time.perf_counter()
            status = await bulk.get_status(job.id, deps=deps, caller=caller)
            if status.finished:
                break
            await asyncio.sleep(POLL_S)
        decoded = time.perf_counter()
        with out.open("wb") as handle:
            async for piece in bulk.stream_results(job.id, "csv", deps=deps, caller=caller):
                handle.write(piece)
        finished = time.perf_counter()
        print(
            f"  submit {submitted - started:.2f} s, decode {decoded - submitted:.2f} s "
            f"({status.progress.rate_per_s} VINs/s in the worker), results file {finished - decoded:.2f} s"
        )
        # The last read carries the summary (counts by make, year and type): part of `decode`.
        print(f"  the last status read (with the summary) took {decoded - read_at:.2f} s")
        if status.started_at is not None:
            # How long the workers waited for lines: the serial head of the job.
            head = (status.started_at - started_at).total_seconds()
            print(f"  the first chunk started {head:.2f} s into the submit")
        return finished - started
    finally:
        queue.close()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=BulkSettings().chunk_size)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    tune_gc()  # this process submits and writes the results file, as `vinbot api` would: tuned alike
    vins = generated_vins(args.n, seed=2026)
    warm_up = generated_vins(WARM_UP_VINS, seed=7)
    tmp = Path(tempfile.mkdtemp(prefix="vinbot-bulk-bench-"))
    pg = EmbeddedPostgres(tmp / "pg", database="vinbot_bench")
    redis = EmbeddedRedis(tmp / "redis")
    worker: subprocess.Popen[bytes] | None = None
    try:
        pg_url = pg.start()
        migrate.upgrade(pg_url)
        redis_url = redis.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("VINBOT_")}
        env.update(DATABASE_URL=pg_url, REDIS_URL=redis_url, VINBOT_BULK__CHUNK_SIZE=str(args.chunk_size))
        worker = start_worker(env, args.concurrency, tmp / "worker.log")

        print(f"warm-up: a job of {len(warm_up):,} other VINs, and decode_batch over them here")
        asyncio.run(run_job(pg_url, redis_url, warm_up, args.chunk_size, tmp / "warm-up.csv"))
        ultravin.decode_batch(warm_up)
        raw, raw_cpu = timed_decode_batch(vins)
        seen, seen_cpu = timed_decode_batch(vins)
        print(
            f"raw ultravin.decode_batch: {args.n:,} VINs in {raw:.2f} s ({args.n / raw:,.0f}/s), "
            f"CPU {raw_cpu:.2f} s; the same VINs again (seen): {seen:.2f} s, CPU {seen_cpu:.2f} s"
        )
        postmaster = int((tmp / "pg" / "postmaster.pid").read_text().split()[0])
        workers_before, pg_before = tree_cpu_s(worker.pid), tree_cpu_s(postmaster)
        main_before = process_cpu_s(worker.pid)
        cpu = time.process_time()
        job = asyncio.run(run_job(pg_url, redis_url, vins, args.chunk_size, tmp / "results.csv"))
        bench_cpu = time.process_time() - cpu
        workers_cpu = tree_cpu_s(worker.pid) - workers_before
        pg_cpu = tree_cpu_s(postmaster) - pg_before
        main_cpu = process_cpu_s(worker.pid) - main_before
        job_cpu = bench_cpu + workers_cpu + pg_cpu
        print(
            f"bulk job (chunk {args.chunk_size}, {args.concurrency} worker processes): "
            f"{args.n:,} VINs in {job:.2f} s ({args.n / job:,.0f}/s)"
        )
        print(f"ratio (raw time / job time): {raw / job:.2f}x  (goal >= 0.5x)")
        print(f"  against decode_batch over VINs it had decoded already: {seen / job:.2f}x")
        print(
            f"CPU: job {job_cpu:.2f} s (this process, the workers, PostgreSQL) vs raw {raw_cpu:.2f} s: "
            f"{raw_cpu / job_cpu:.2f}x (this process {bench_cpu:.2f} s, workers {workers_cpu:.2f} s "
            f"(the Celery main process {main_cpu:.2f} s), "
            f"PostgreSQL {pg_cpu:.2f} s)"
        )
        print(f"load average (1, 5, 15 min) at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        # A retried chunk waits out a back-off: the figure would not be the decoder's.
        trouble = [
            line
            for line in (tmp / "worker.log").read_text().splitlines()
            if "WARNING" in line or "ERROR" in line
        ]
        print(f"worker warnings and errors: {len(trouble)}", *trouble[:5], sep="\n  ")
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        redis.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
