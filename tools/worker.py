"""The Celery worker: the composition root of the bulk-job process.

    vinbot worker [--concurrency N]     ->   tools.worker.serve(settings, concurrency)
    celery -A tools.worker worker ...   ->   the same app, configured from the environment

Only `vinbot` imports this module; producers send tasks by name (`tools.bulk.CeleryJobQueue`).
Each task takes ids only. Each worker process builds one `bulk.ChunkRunner` on its first
task: one event loop with one database pool (and, for a remote provider, its Redis and
HTTP clients) that every later task of that process reuses, since opening them per
chunk cost more than the chunk. Async pools never cross event loops: they live and die
in the runner's own loop, closed when the process shuts down.

Tasks are acknowledged late and rejected when their worker dies, so a chunk whose
worker is killed is delivered again; chunks are idempotent, so that is safe. Redis may still
lose a message its worker popped just before being killed, so a worker that starts sends the
unfinished chunks of every queued or running job again (`bulk.resend_unfinished`), and, while
it runs, sends them again whenever no chunk of those jobs has finished for
`VINBOT_BULK__STALL_RESEND_S` (a broker that restarted empty loses every waiting message,
and then no worker starts to notice). A provider
error is retried with exponential backoff, then the chunk is decoded offline; a chunk
that fails even then (or raises anything else on its last attempt) has its lines marked
failed with `decode_failed`, and the job finishes `done` with those failures counted.
Task events are on, so Flower (or `celery events`) can watch the workers.

Concurrency: one prefork process per CPU core by default (`VINBOT_BULK__WORKER_CONCURRENCY`
or `--concurrency`). The decode is CPU-bound Python plus PostgreSQL writes on the same
machine, so more processes than cores only add switching; on a machine where PostgreSQL
runs elsewhere, one per core is still the right start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_shutdown, worker_ready, worker_shutdown

from tools import bulk
from tools.errors import ProviderError, RateLimited
from tools.runtime import tune_gc
from tools.settings import Settings, get_settings
from tools.storage.session import create_engine, session_factory

logger = logging.getLogger(__name__)

app = Celery("vinbot", set_as_current=False)
_settings: dict[str, Settings] = {}
_runners: dict[str, bulk.ChunkRunner] = {}  # this process's runner, built on its first task

DECODE_FAILED_MESSAGE = "This line could not be decoded: the decoders failed on its part of the job."


def configure(settings: Settings) -> None:
    """Point the app at the broker of `settings` (whose `redis_url` and `database_url` are resolved)."""
    if not settings.redis_url or not settings.database_url:
        raise RuntimeError("the worker needs DATABASE_URL and REDIS_URL (vinbot worker resolves them)")
    broker = bulk.broker_url_for(settings.redis_url)
    app.conf.update(
        broker_url=broker,
        result_backend=broker,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_send_task_events=True,
        task_send_sent_event=True,
        broker_connection_retry_on_startup=True,
        # A pool process killed mid-task is noticed at once (the task is rejected and requeued);
        # the visibility timeout covers a whole worker that vanished. A chunk is far shorter.
        broker_transport_options={
            "visibility_timeout": settings.bulk.visibility_timeout_s,
            # Look for such orphans every few seconds, not kombu's default of every 100 s.
            "unacked_restore_interval": max(1, min(10, settings.bulk.visibility_timeout_s // 2)),
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
    )
    _settings["current"] = settings
    tune_gc()  # before the pool forks: every child inherits it (`vinbot worker` has done it already)


@app.on_configure.connect  # type: ignore[untyped-decorator]
def _configure_from_environment(sender: Any = None, **kwargs: Any) -> None:
    # `celery -A tools.worker worker` reads the app's configuration first: take it from
    # the environment unless `serve` has configured the app already.
    if "current" not in _settings:
        configure(get_settings())


@app.task(  # type: ignore[untyped-decorator]
    name=bulk.RUN_CHUNK_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_chunk(self: Task, job_id: str, chunk_no: int) -> dict[str, Any]:
    """Decode one chunk of a job; retry with backoff on provider errors, then decode offline."""
    settings = _settings["current"]
    retries: int = self.request.retries
    spent = retries >= settings.bulk.task_max_retries
    runner = _runner(settings)
    try:
        outcome = runner.run(job_id, chunk_no, offline=spent)
    except RateLimited as e:
        raise self.retry(countdown=max(1.0, e.retry_after), max_retries=None) from e
    except Exception as e:
        # The task's top-level handler: whatever failed, the chunk must not stay unfinished.
        if spent:
            logger.exception(
                "chunk %d of job %s failed even offline; marking its lines failed", chunk_no, job_id
            )
            outcome = runner.fail(job_id, chunk_no, DECODE_FAILED_MESSAGE)
        else:
            countdown = settings.bulk.retry_backoff_s * 2**retries
            code = e.code if isinstance(e, ProviderError) else type(e).__name__
            logger.warning("chunk %d of job %s: %s; retry in %.1f s", chunk_no, job_id, code, countdown)
            raise self.retry(countdown=countdown, max_retries=settings.bulk.task_max_retries + 1) from e
    return {"done": outcome.done, "failed": outcome.failed, "skipped": outcome.skipped}


def _runner(settings: Settings) -> bulk.ChunkRunner:
    runner = _runners.get("current")
    if runner is None:
        runner = _runners["current"] = bulk.ChunkRunner(settings)
    return runner


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]
@worker_shutdown.connect  # type: ignore[untyped-decorator]
def _close_runner(**kwargs: Any) -> None:
    # `worker_process_shutdown` fires in each prefork child, `worker_shutdown` in the main
    # process, where `--pool=solo` runs the tasks (and its runner). Popped: closed once.
    runner = _runners.pop("current", None)
    if runner is not None:
        runner.close()


@worker_ready.connect  # type: ignore[untyped-decorator]
def _resend_unfinished_chunks(**kwargs: Any) -> None:
    # In the main process, once its pool is up: chunks whose messages a killed worker took
    # with it are sent again (`bulk.resend_unfinished`); then the sweep for stalled jobs starts.
    settings = _settings.get("current")
    if settings is not None and settings.database_url and settings.redis_url:
        sent = asyncio.run(_resend(settings.database_url, settings.redis_url))
        logger.info("sent %d unfinished chunks of earlier jobs again", sent)
        if settings.bulk.stall_resend_s:
            _sweeps["current"] = _StallSweep(
                settings.database_url, settings.redis_url, settings.bulk.stall_resend_s
            )


@worker_shutdown.connect  # type: ignore[untyped-decorator]
def _stop_sweep(**kwargs: Any) -> None:
    sweep = _sweeps.pop("current", None)
    if sweep is not None:
        sweep.stop()


class _StallSweep:
    """A thread of the worker's main process: sends the chunks of stalled jobs again.

    Every quarter of `idle_s`, it asks for the unfinished chunks of the queued and running
    jobs when no chunk of theirs finished for `idle_s` (`bulk.resend_unfinished`), and
    sends them. After a send it waits a whole `idle_s`, so workers that cannot finish
    anything (a database down) get one more copy of each chunk per period, not a flood.
    A copy of a chunk that was not lost after all is skipped when it runs. Every worker
    process group runs one; with several, each may send a copy.
    """

    def __init__(self, database_url: str, redis_url: str, idle_s: int) -> None:
        self._urls = (database_url, redis_url)
        self._idle = timedelta(seconds=idle_s)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vinbot-stall-sweep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sweeping (at most one sweep in progress finishes first)."""
        self._stopped.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        wait = self._idle.total_seconds() / 4
        while not self._stopped.wait(wait):
            try:
                sent = asyncio.run(_resend(*self._urls, idle=self._idle))
            except Exception:  # the database or the broker is down: the next sweep tries again
                logger.exception("the sweep for stalled bulk jobs failed")
                sent = 0
            if sent:
                logger.warning("sent %d unfinished chunks of stalled jobs again", sent)
            wait = self._idle.total_seconds() if sent else self._idle.total_seconds() / 4


_sweeps: dict[str, _StallSweep] = {}  # the main process's sweep, started once its pool is ready


async def _resend(database_url: str, redis_url: str, *, idle: timedelta | None = None) -> int:
    engine = create_engine(database_url)
    queue = bulk.CeleryJobQueue(bulk.broker_url_for(redis_url))
    try:
        deps = bulk.BulkDeps(sessions=session_factory(engine), queue=queue)
        return await bulk.resend_unfinished(deps, idle=idle)
    finally:
        queue.close()
        await engine.dispose()


def worker_argv(settings: Settings, *, concurrency: int | None = None, loglevel: str = "INFO") -> list[str]:
    """Return the `celery worker` arguments of `vinbot worker`."""
    processes = concurrency or settings.bulk.worker_concurrency or os.cpu_count() or 1
    return [
        "worker",
        "--pool=prefork",
        f"--concurrency={processes}",
        f"--loglevel={loglevel}",
        "--task-events",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        f"--hostname=vinbot-worker-{os.getpid()}@%h",
    ]


def serve(settings: Settings, *, concurrency: int | None = None, extra: Sequence[str] = ()) -> None:
    """Run the worker until interrupted (the entry function of `vinbot worker`).

    With nothing configured it attaches to the embedded PostgreSQL and Redis in the
    data directory (starting them if needed, as the API does) and migrates the schema.
    """
    from tools.bootstrap import embedded_pg_dir  # the main process only
    from tools.embedded import EmbeddedPostgres, EmbeddedRedis
    from tools.storage import migrate

    with ExitStack() as stack:
        database_url = settings.database_url
        if not database_url:
            pg = EmbeddedPostgres(embedded_pg_dir(settings))
            database_url = pg.start()
            stack.callback(pg.stop)
        migrate.upgrade(database_url)
        redis_url = settings.redis_url
        if not redis_url:
            redis = EmbeddedRedis(settings.redis_dir)
            redis_url = redis.start()
            stack.callback(redis.stop)
        configure(settings.model_copy(update={"database_url": database_url, "redis_url": redis_url}))
        loglevel = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        app.worker_main([*worker_argv(settings, concurrency=concurrency, loglevel=loglevel), *extra])
