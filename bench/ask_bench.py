"""`POST /ask` under concurrent load on loopback, and the agent's own overhead per turn.

Machines are shared and noisy (2 cores), so every figure is printed beside a baseline
measured in the same run:

1. **Load.** The real app (`vinbot api`, its default worker processes: one per core, or
   `--workers`) runs on 127.0.0.1, on embedded PostgreSQL and Redis in temporary folders,
   with the offline planner (no LLM). A realistic mix of conversations (VIN decodes,
   greetings, follow-ups, history) is sent with httpx (one client and connection per
   concurrent worker) in a **closed loop** at concurrency 1 and at `--concurrency` (each
   client sends its next request when the last is answered), each phase bounded by
   `--requests` and `--seconds`. `GET /healthz` (one `SELECT 1` and one Redis `PING` behind
   the same HTTP stack) and `GET /` (a static file: the HTTP stack alone) are measured the
   same way, so the HTTP stack's share is separated from ours. Then an **open loop**:
   `--concurrency` users whose requests arrive as a Poisson process at `--rate` per second
   in total, latency counted from each scheduled arrival. The server's CPU time per request
   comes from /proc (the `vinbot api` process and its workers); the load generator's own CPU
   is printed beside it.
2. **Overhead.** In-process and sequential: `GraphAssistant.ask` with the offline planner,
   directly and through the graph in alternation (A/B), and with an OpenAI-compatible
   stand-in that answers at once (a `decode_vin` tool call, then text;
   `planner_first=False`). Right after each LLM turn, the exact requests the agent sent are
   replayed with the raw `openai` client; the paired difference is the agent's own time per
   turn, as wall clock and as this process's CPU time. `--profile` then shows where
   sequential turns spend their time (cProfile, by package and function) and the SQL
   statements per turn.

    .venv/bin/python -m bench.ask_bench [--requests 600] [--concurrency 50] [--seconds 30]
                                        [--rate 100] [--workers N] [--turns 150]
                                        [--answer-words 40] [--skip-load] [--profile]

Goals (the issue): offline p95 < 60 ms at 50 concurrent; agent overhead < 30 ms per turn.
Everything is bounded by count and time and stops by itself; every server it starts is
stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import itertools
import math
import os
import pstats
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine

from agent.assistant import Asker, GraphAssistant
from agent.bootstrap import build_assistant
from tools.bootstrap import build_tool_deps, open_infrastructure
from tools.embedded import EmbeddedPostgres, EmbeddedRedis
from tools.settings import AgentSettings, LimitSettings, Settings
from tools.storage import migrate

GOAL_P95_MS = 60.0  # offline /ask p95 at 50 concurrent
GOAL_OVERHEAD_MS = 30.0  # the agent's own time per LLM turn
GOAL_CONCURRENCY = 50
UNLIMITED = 1_000_000  # per-minute limits high enough never to answer 429 in the bench
REQUEST_TIMEOUT_S = 10.0
STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
REPO = Path(__file__).resolve().parents[1]
# Variables that would change what the served app does (an LLM, another Redis, Sentry).
STRIPPED_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "UPSTASH_REDIS_REST_URL",
    "UPSTASH_REDIS_REST_TOKEN",
    "SENTRY_DSN",
    "AUTODEV_API_KEY",
    "TELEGRAM_BOT_TOKEN",
)

# A realistic mix, from the offline evals (evals/datasets/agent_v1.jsonl): each tuple is one
# conversation, sent turn by turn with the conversation id the first answer returns.
CONVERSATIONS: tuple[tuple[str, ...], ...] = (
    ("hello", "decode 1HGCM82633A004352", "what year is it?", "thank you!"),
    ("What car is 1FA6P0HD6E5365568?", "and its engine?", "what did I look up?"),
    ("decode 1C6RR6FT9FS518355", "decode 5UXWX9C54D0A15139", "show me my last 2 lookups"),
    ("hi, what can you do?",),
    ("Tell me about the car with VIN 7SAYGAEE9NF432848", "how much horsepower does it have?"),
    ("decodifica 2T2BK1BA0CC138948", "¿qué motor tiene?"),
    ("décode WA1MYAFE8AD008127", "où a-t-elle été fabriquée ?"),
    ("which VINs have I checked so far?",),
    ("decode WP1AB29P28LA47114", "where was it built?", "and what about 1FA6P0HD6E5365568?"),
)
# The LLM turns decode these, three turns per conversation, so history is loaded and trimmed.
LLM_VINS = ("1HGCM82633A004352", "1FA6P0HD6E5365568", "5UXWX9C54D0A15139", "7SAYGAEE9NF432848")
LLM_TURNS_PER_CONVERSATION = 3


# ---------------------------------------------------------------- statistics


def percentile(samples: Sequence[float], pct: int) -> float:
    if not samples:
        return math.nan
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def process_cpu_s(pid: int) -> float:
    """Return the user + system CPU time of process `pid` and its live descendants (uvicorn workers)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            # After "(comm)": ppid is field 4, utime 14 and stime 15 (1-based, proc(5)).
            parents[int(entry.name)] = int(fields[1])
            ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier += children
    return sum(ticks.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- infrastructure


@dataclass
class Infra:
    """Embedded PostgreSQL and Redis in a temporary folder, migrated."""

    directory: Path
    pg_url: str
    redis_url: str
    pids: list[int]  # the server processes we started, to check that they stopped


def _pids_with(fragment: str) -> list[int]:
    """Return the ids of processes whose command line contains `fragment`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if fragment in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(entry.name))
    return found


@contextlib.contextmanager
def embedded_infra() -> Iterator[Infra]:
    directory = Path(tempfile.mkdtemp(prefix="vinbot-askbench-"))
    pg = EmbeddedPostgres(directory / "pg", database="vinbot_bench")
    redis = EmbeddedRedis(directory / "redis")
    pids: list[int] = []
    try:
        pg_url = pg.start()
        pids += _pids_with(str(directory / "pg"))
        migrate.upgrade(pg_url)
        redis_url = redis.start()
        pids += _pids_with(redis.socket_file)
        yield Infra(directory, pg_url, redis_url, pids)
    finally:
        with contextlib.suppress(Exception):
            redis.stop()
        with contextlib.suppress(Exception):
            pg.stop()
        _reap(pids)
        shutil.rmtree(directory, ignore_errors=True)


def _reap(pids: Sequence[int]) -> None:
    """Wait for our servers to exit; kill (by id) any that did not stop when asked."""
    deadline = time.monotonic() + 10
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if Path(f"/proc/{p}").exists() and not _zombie(p)]
        if alive:
            time.sleep(0.1)
    for pid in alive:
        print(f"  (server process {pid} did not stop; killing it)")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return True


def bench_settings(infra: Infra, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": infra.pg_url,
        "REDIS_URL": infra.redis_url,
        "OPENAI_API_KEY": None,
        "OPENAI_BASE_URL": None,
        "UPSTASH_REDIS_REST_URL": None,
        "data_dir": data_dir,
        "limits": LimitSettings(anonymous_requests_per_minute=UNLIMITED, messages_per_minute=UNLIMITED),
    }
    return Settings(_env_file=None, **{**values, **overrides})


# ---------------------------------------------------------------- the served app


@dataclass
class Server:
    base_url: str
    pid: int
    log: Path
    workers: int


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def served_api(infra: Infra, workers: int | None = None, source: Path | None = None) -> Iterator[Server]:
    """Run `vinbot api` on a free loopback port (its default workers: one per core); stop it on exit.

    `source`: run the code of another checkout of the repository (an A/B baseline), with this
    virtual environment.
    """
    port = _free_port()
    data_dir = infra.directory / "api-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VINBOT_") and k not in STRIPPED_ENV}
    env |= {
        "DATABASE_URL": infra.pg_url,
        "REDIS_URL": infra.redis_url,
        "VINBOT_DATA_DIR": str(data_dir),
        "VINBOT_LIMITS__ANONYMOUS_REQUESTS_PER_MINUTE": str(UNLIMITED),
        "VINBOT_LIMITS__MESSAGES_PER_MINUTE": str(UNLIMITED),
    }
    if source is not None:
        env["PYTHONPATH"] = str(source)
    script = Path(sys.executable).with_name("vinbot")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "vinbot.cli"]
    log = infra.directory / f"api-{port}.log"
    with log.open("wb") as out:
        # The temporary folder as the working directory: no .env file is read.
        process = subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
            [
                *command,
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *(["--workers", str(workers)] if workers else []),
            ],
            cwd=infra.directory,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_healthy(process, base_url, log)
        yield Server(base_url, process.pid, log, workers or os.cpu_count() or 1)
    finally:
        if process.poll() is None:
            process.terminate()  # uvicorn shuts down gracefully on SIGTERM
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                print("  (the API server did not stop in time; killing it)")
                process.kill()
                process.wait(5)


def _wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with httpx.Client(base_url=base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"the API server exited during start-up:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get("/healthz").status_code == 200:
                    return
            time.sleep(0.1)
    raise SystemExit(f"the API server was not healthy after {STARTUP_TIMEOUT_S:.0f} s")


# ---------------------------------------------------------------- load


@dataclass
class Phase:
    """One bounded burst of requests at a fixed concurrency."""

    label: str
    concurrency: int
    rate: float | None = None  # open loop: the offered requests per second (None: closed loop)
    latencies_ms: list[float] = field(default_factory=list)
    in_assistant_ms: list[float] = field(default_factory=list)  # the Answer's own latency_ms
    # Open loop, per answered request: (latency, time queued behind the user's previous request
    # before it was sent, the Answer's own latency_ms), all in ms.
    parts_ms: list[tuple[float, float, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    not_offline: int = 0  # answers not planned by the offline planner (should be none)
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0  # the load generator's own CPU (it shares the machine's cores)
    cut: bool = False  # the hard time cap stopped requests in flight

    @property
    def done(self) -> int:
        return len(self.latencies_ms)

    def p(self, pct: int) -> float:
        return percentile(self.latencies_ms, pct)

    @property
    def throughput(self) -> float:
        return self.done / self.wall_s if self.wall_s else math.nan

    @property
    def server_cpu_ms_per_request(self) -> float:
        count = self.done + len(self.errors)
        return self.server_cpu_s * 1000 / count if count else math.nan

    @property
    def client_cpu_ms_per_request(self) -> float:
        count = self.done + len(self.errors)
        return self.client_cpu_s * 1000 / count if count else math.nan


class Budget:
    """Hands out at most `count` request slots, and none after `deadline`."""

    def __init__(self, count: int, seconds: float) -> None:
        self.left = count
        self.deadline = time.monotonic() + seconds

    def take(self) -> bool:
        if self.left <= 0 or time.monotonic() >= self.deadline:
            return False
        self.left -= 1
        return True


Worker = Callable[[httpx.AsyncClient, Budget, Phase], Awaitable[None]]


async def _timed(phase: Phase, send: Awaitable[httpx.Response]) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await send
    except httpx.HTTPError as e:
        phase.errors.append(type(e).__name__)
        return None
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        phase.errors.append(f"HTTP {response.status_code}")
        return None
    phase.latencies_ms.append(elapsed)
    return response


def ask_worker(conversations: Iterator[tuple[str, ...]]) -> Worker:
    """Each worker holds one conversation at a time and sends its turns in order."""

    async def work(client: httpx.AsyncClient, budget: Budget, phase: Phase) -> None:
        for turns in conversations:
            conversation_id: str | None = None
            for message in turns:
                if not budget.take():
                    return
                body: dict[str, str] = {"message": message}
                if conversation_id is not None:
                    body["conversation_id"] = conversation_id
                response = await _timed(phase, client.post("/ask", json=body))
                if response is None:
                    break  # the rest of this conversation depends on the failed turn
                answer = response.json()
                conversation_id = answer["conversation_id"]
                phase.in_assistant_ms.append(float(answer["latency_ms"]))
                if answer["planner"] != "offline":
                    phase.not_offline += 1

    return work


def get_worker(path: str) -> Worker:
    async def work(client: httpx.AsyncClient, budget: Budget, phase: Phase) -> None:
        while budget.take():
            await _timed(phase, client.get(path))

    return work


async def run_phase(
    server: Server, label: str, worker: Worker, *, concurrency: int, requests: int, seconds: float
) -> Phase:
    phase = Phase(label, concurrency)
    # One client and one keep-alive connection per worker: a single shared pool of 50
    # connections costs the load generator several times more CPU per request (httpcore
    # scans its pool), and the generator shares the machine's two cores with the server.
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=server.base_url,
                    timeout=REQUEST_TIMEOUT_S,
                    limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                )
            )
            for _ in range(concurrency)
        ]
        # Open every connection first, so the phase does not time TCP set-up.
        await asyncio.gather(*(client.get("/healthz") for client in clients))
        budget = Budget(requests, seconds)
        cpu_before, client_before = process_cpu_s(server.pid), time.process_time()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(seconds + REQUEST_TIMEOUT_S + 5):
                await asyncio.gather(*(worker(client, budget, phase) for client in clients))
        except TimeoutError:
            phase.cut = True
        phase.wall_s = time.perf_counter() - started
        phase.server_cpu_s = process_cpu_s(server.pid) - cpu_before
        phase.client_cpu_s = time.process_time() - client_before
    return phase


async def run_open_phase(
    server: Server, *, users: int, rate: float, requests: int, seconds: float, seed: int = 20261125
) -> Phase:
    """Open loop: `users` users whose requests arrive at `rate` per second in total (Poisson).

    Each user holds one conversation and one connection at a time and arrives at `rate / users`
    per second; a request whose user is still waiting for the previous answer queues behind
    it. Latency is counted from the request's scheduled arrival, so time spent queued counts
    (no coordinated omission). Unlike the closed loop, the number in flight is whatever the
    arrivals and the server's speed make it, as with real users.
    """
    phase = Phase("POST /ask", users, rate=rate)
    conversations = itertools.cycle(CONVERSATIONS)
    budget = Budget(requests, seconds)
    randoms = random.Random(seed)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=server.base_url,
                    timeout=REQUEST_TIMEOUT_S,
                    limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                )
            )
            for _ in range(users)
        ]
        await asyncio.gather(*(client.get("/healthz") for client in clients))
        started = time.perf_counter()
        gaps = [[randoms.expovariate(rate / users) for _ in range(requests)] for _ in range(users)]

        async def user(client: httpx.AsyncClient, arrivals: list[float]) -> None:
            due = started
            for turns in conversations:
                conversation_id: str | None = None
                for message in turns:
                    if not arrivals or not budget.take():
                        return
                    due += arrivals.pop()
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                    body: dict[str, str] = {"message": message}
                    if conversation_id is not None:
                        body["conversation_id"] = conversation_id
                    sent = time.perf_counter()
                    try:
                        response = await client.post("/ask", json=body)
                    except httpx.HTTPError as e:
                        phase.errors.append(type(e).__name__)
                        break
                    if response.status_code != 200:
                        phase.errors.append(f"HTTP {response.status_code}")
                        break
                    latency = (time.perf_counter() - due) * 1000
                    phase.latencies_ms.append(latency)
                    answer = response.json()
                    conversation_id = answer["conversation_id"]
                    phase.in_assistant_ms.append(float(answer["latency_ms"]))
                    phase.parts_ms.append((latency, (sent - due) * 1000, float(answer["latency_ms"])))
                    if answer["planner"] != "offline":
                        phase.not_offline += 1

        cpu_before, client_before = process_cpu_s(server.pid), time.process_time()
        try:
            async with asyncio.timeout(seconds + REQUEST_TIMEOUT_S + 5):
                await asyncio.gather(*(user(c, g) for c, g in zip(clients, gaps, strict=True)))
        except TimeoutError:
            phase.cut = True
        phase.wall_s = time.perf_counter() - started
        phase.server_cpu_s = process_cpu_s(server.pid) - cpu_before
        phase.client_cpu_s = time.process_time() - client_before
    return phase


async def measure_load(
    server: Server, *, concurrency: int, requests: int, seconds: float, rate: float
) -> list[Phase]:
    conversations = itertools.cycle(CONVERSATIONS)
    # Warm-up: import-time caches, the DB pool, tiktoken, the planner's tables (in every worker).
    warm_up = ask_worker(conversations)
    await run_phase(server, "warm-up", warm_up, concurrency=8, requests=120, seconds=seconds)
    phases = []
    for level in (1, concurrency):
        for label, worker in (
            ("POST /ask", ask_worker(conversations)),
            ("GET /healthz", get_worker("/healthz")),
            ("GET / (static)", get_worker("/")),
        ):
            phases.append(
                await run_phase(server, label, worker, concurrency=level, requests=requests, seconds=seconds)
            )
    phases.append(
        await run_open_phase(server, users=concurrency, rate=rate, requests=requests, seconds=seconds)
    )
    return phases


def print_load(phases: Sequence[Phase], concurrency: int, workers: int) -> None:
    print(
        f"\nload on 127.0.0.1 (`vinbot api`, {workers} worker processes, offline planner), latency in ms "
        "as the client saw it"
    )
    print(
        f"  {'route':<16}{'conc':>5}{'ok':>6}{'err':>5}{'p50':>8}{'p95':>8}{'p99':>8}{'req/s':>8}"
        f"{'cpu ms/req srv|cli':>19}{'in-assistant p50/p95':>22}"
    )
    closed = [ph for ph in phases if ph.rate is None]
    opened = [ph for ph in phases if ph.rate is not None]
    for ph in closed:
        _print_phase(ph)
    for ph in phases:
        if ph.errors:
            kinds = ", ".join(f"{e} x{ph.errors.count(e)}" for e in sorted(set(ph.errors)))
            print(f"  errors in {ph.label} @{ph.concurrency}: {kinds}")
        if ph.not_offline:
            print(
                f"  {ph.not_offline} answers in {ph.label} @{ph.concurrency} were not the offline planner's"
            )

    def find(label: str, level: int) -> Phase:
        return next(p for p in closed if p.label == label and p.concurrency == level)

    ask1, ask_n = find("POST /ask", 1), find("POST /ask", concurrency)
    health_n, static_n = find("GET /healthz", concurrency), find("GET / (static)", concurrency)
    n = concurrency
    ratios = (
        (f"p95 /ask @{n} / p95 /ask @1", ask_n.p(95) / ask1.p(95)),
        (f"p95 /ask @{n} / p95 /healthz @{n}", ask_n.p(95) / health_n.p(95)),
        (f"p95 /ask @{n} / p95 static @{n}", ask_n.p(95) / static_n.p(95)),
        (
            f"server CPU per /ask / per static request @{n}",
            ask_n.server_cpu_ms_per_request / static_n.server_cpu_ms_per_request,
        ),
    )
    print("\nratios (same run)")
    for label, value in ratios:
        print(f"  {label:<46}{value:7.1f}x")
    # One uvicorn worker is one event loop on at most one core, so N requests always in flight
    # wait N x (its CPU per request) / workers on average, at best (Little's law).
    cpu = ask_n.server_cpu_ms_per_request
    cores = min(workers, os.cpu_count() or 1)
    print(
        f"  closed loop, CPU-bound: at most {1000 * cores / cpu:.0f} req/s on {cores} cores; mean latency "
        f"with {n} always in flight >= {n * cpu / cores:.0f} ms ({n} x {cpu:.1f} ms of server CPU per "
        f"/ask / {cores})"
    )
    for ph in opened:
        rate = ph.rate or math.nan
        print(
            f"\nopen loop: {ph.concurrency} users, Poisson arrivals at {ph.rate:.0f} req/s in total "
            "(latency from each request's scheduled arrival; a user's next request queues behind its last)"
        )
        _print_phase(ph)
        print(
            f"  offered {rate:.0f} req/s x {ph.server_cpu_ms_per_request:.1f} ms of server CPU = "
            f"{rate * ph.server_cpu_ms_per_request / 10 / cores:.0f}% of {cores} cores"
        )
        _print_tail(ph)
    if concurrency == GOAL_CONCURRENCY:
        met = ask_n.p(95) < GOAL_P95_MS and not ask_n.errors
        print(
            f"\ngoal: offline /ask p95 < {GOAL_P95_MS:.0f} ms at {GOAL_CONCURRENCY} concurrent — closed "
            f"loop ({GOAL_CONCURRENCY} always in flight): {'MET' if met else 'NOT MET'} "
            f"(p95 {ask_n.p(95):.1f} ms, {len(ask_n.errors)} errors)"
        )
        for ph in opened:
            met = ph.p(95) < GOAL_P95_MS and not ph.errors and not ph.cut
            print(
                f"      open loop ({ph.concurrency} users, {ph.rate:.0f} req/s): "
                f"{'MET' if met else 'NOT MET'} (p95 {ph.p(95):.1f} ms, {len(ph.errors)} errors)"
            )
    else:
        print(f"\ngoal: judged at {GOAL_CONCURRENCY} concurrent only (this run used {concurrency})")


def _print_tail(ph: Phase) -> None:
    """Split the slowest 5% of an open loop's requests: queued before sending, in the assistant, the rest.

    "Behind its previous" is the time a request waited for its user's previous answer (and for
    the load generator's own event loop); "in the assistant" is the Answer's `latency_ms` (the
    turn's CPU, its round trips to PostgreSQL and Redis, and waits for the worker's event loop
    while it runs); the rest is the HTTP stack and the wait before the worker starts the request.
    """
    if not ph.parts_ms:
        return
    threshold = ph.p(95)
    tail = [parts for parts in ph.parts_ms if parts[0] >= threshold]
    total, behind, inside = (statistics.fmean(column) for column in zip(*tail, strict=True))
    rest = total - behind - inside
    print(
        f"  slowest 5% ({len(tail)} requests, >= {threshold:.1f} ms): mean {total:.1f} ms = "
        f"{behind:.1f} queued behind the user's previous request ({100 * behind / total:.0f}%) + "
        f"{inside:.1f} in the assistant ({100 * inside / total:.0f}%) + {rest:.1f} HTTP and waiting "
        f"for the worker ({100 * rest / total:.0f}%)"
    )


def _print_phase(ph: Phase) -> None:
    inside = (
        f"{percentile(ph.in_assistant_ms, 50):.1f} / {percentile(ph.in_assistant_ms, 95):.1f}"
        if ph.in_assistant_ms
        else "-"
    )
    print(
        f"  {ph.label:<16}{ph.concurrency:>5}{ph.done:>6}{len(ph.errors):>5}{ph.p(50):>8.1f}"
        f"{ph.p(95):>8.1f}{ph.p(99):>8.1f}{ph.throughput:>8.0f}"
        f"{ph.server_cpu_ms_per_request:>12.1f} |{ph.client_cpu_ms_per_request:>5.1f}"
        f"{inside:>22}" + ("  (cut by the time cap)" if ph.cut else "")
    )


# ---------------------------------------------------------------- agent overhead


@dataclass
class Overhead:
    offline_ms: list[float] = field(default_factory=list)  # direct offline turns (the default)
    graph_ms: list[float] = field(default_factory=list)  # the same turns through the graph
    offline_cpu_ms: list[float] = field(default_factory=list)
    graph_cpu_ms: list[float] = field(default_factory=list)
    llm_ms: list[float] = field(default_factory=list)
    raw_ms: list[float] = field(default_factory=list)  # the stand-in's round trips of each LLM turn
    own_ms: list[float] = field(default_factory=list)  # llm - raw, paired per turn
    llm_cpu_ms: list[float] = field(default_factory=list)  # this process's CPU (stand-in included)
    raw_cpu_ms: list[float] = field(default_factory=list)
    own_cpu_ms: list[float] = field(default_factory=list)  # llm - raw CPU, paired per turn
    llm_requests: int = 0
    failures: list[str] = field(default_factory=list)
    cut: bool = False  # the time cap stopped the turns early


@dataclass(frozen=True)
class Agents:
    offline: GraphAssistant
    offline_graph: GraphAssistant  # the same planner, every turn through the compiled graph
    llm: GraphAssistant  # against the stand-in, planner_first=False
    standin: Any  # tests/standins/openai_api.py OpenAIStandIn
    llm_url: str
    engine: AsyncEngine


@contextlib.asynccontextmanager
async def assistants(infra: Infra) -> AsyncIterator[Agents]:
    """Build both assistants as a composition root does, on one set of connections."""
    if str(REPO / "tests") not in sys.path:
        sys.path.insert(0, str(REPO / "tests"))  # the stand-in servers live with the tests
    from standins import serving
    from standins.openai_api import OpenAIStandIn

    data_dir = infra.directory / "bench-data"
    offline_settings = bench_settings(infra, data_dir)
    standin = OpenAIStandIn(slow_s=1.0)
    async with serving(standin.app) as url, open_infrastructure(offline_settings, migrate_schema=False) as io:
        llm_settings = bench_settings(
            infra,
            data_dir,
            OPENAI_API_KEY="bench-key",
            OPENAI_BASE_URL=f"{url}/v1",
            agent=AgentSettings(planner_first=False, llm_timeout_s=REQUEST_TIMEOUT_S),
        )
        offline = build_assistant(offline_settings, build_tool_deps(offline_settings, io))
        offline_graph = build_assistant(offline_settings, build_tool_deps(offline_settings, io), direct=False)
        llm = build_assistant(llm_settings, build_tool_deps(llm_settings, io))
        try:
            yield Agents(offline, offline_graph, llm, standin, f"{url}/v1", io.engine)
        finally:
            standin.release()


def _plan_turn(standin: Any, vin: str, words: int) -> None:
    from standins.openai_api import text, tool_call

    # The stand-in streams text word by word, as the real API streams tokens, and the agent's
    # cost grows with the chunks, so the answer has the length of a typical decode answer.
    sentence = f"The VIN {vin} belongs to the vehicle described above, built at the plant listed.".split()
    answer = " ".join(itertools.islice(itertools.cycle(sentence), words))
    standin.reset()
    standin.plan(
        tool_call("decode_vin", {"vin": vin}, prompt_tokens=420, completion_tokens=20),
        text(answer, prompt_tokens=700, completion_tokens=words),
    )


async def measure_overhead(infra: Infra, turns: int, seconds: float, words: int) -> Overhead:
    import openai

    result = Overhead()
    deadline = time.monotonic() + seconds
    conversations = itertools.cycle(CONVERSATIONS)
    async with assistants(infra) as agents:
        offline, llm, standin = agents.offline, agents.llm, agents.standin
        raw_client = openai.AsyncOpenAI(
            api_key="bench-key", base_url=agents.llm_url, max_retries=0, timeout=REQUEST_TIMEOUT_S
        )
        try:
            offline_turns = _offline_turns(conversations)
            llm_turns = _llm_turns()
            for index in range(turns + 10):  # the first 10 of each warm up and are dropped
                if time.monotonic() >= deadline:
                    result.cut = True
                    break
                keep = index >= 10
                conversation_id, message = next(offline_turns)
                # The same turn, directly and through the graph, in alternating order (A/B).
                runs = [
                    (offline, conversation_id, result.offline_ms, result.offline_cpu_ms),
                    (
                        agents.offline_graph,
                        conversation_id.replace("offline", "graph"),
                        result.graph_ms,
                        result.graph_cpu_ms,
                    ),
                ]
                for assistant, conversation, wall, cpu in runs if index % 2 else runs[::-1]:
                    started, cpu_started = time.perf_counter(), time.process_time()
                    answer = await assistant.ask(
                        message, conversation_id=conversation, asker=_asker(conversation)
                    )
                    if keep:
                        wall.append((time.perf_counter() - started) * 1000)
                        cpu.append((time.process_time() - cpu_started) * 1000)
                    if answer.planner != "offline":
                        result.failures.append(f"offline turn planned by {answer.planner}")

                conversation_id, vin = next(llm_turns)
                _plan_turn(standin, vin, words)
                started, cpu_started = time.perf_counter(), time.process_time()
                answer = await llm.ask(
                    f"decode {vin}", conversation_id=conversation_id, asker=_asker(conversation_id)
                )
                llm_ms = (time.perf_counter() - started) * 1000
                llm_cpu_ms = (time.process_time() - cpu_started) * 1000
                bodies = [r.body for r in standin.received]
                called = [c.name for c in answer.tool_calls]
                if not answer.planner.startswith("llm") or called != ["decode_vin"]:
                    result.failures.append(f"LLM turn: planner {answer.planner}, calls {answer.tool_calls}")
                _plan_turn(standin, vin, words)
                raw_ms = 0.0
                cpu_started = time.process_time()
                for body in bodies:  # the very requests the agent sent, replayed raw
                    started = time.perf_counter()
                    reply = await raw_client.chat.completions.create(**body)
                    if body.get("stream"):  # the agent streams only when a caller wants tokens
                        async for _ in reply:
                            pass
                    raw_ms += (time.perf_counter() - started) * 1000
                raw_cpu_ms = (time.process_time() - cpu_started) * 1000
                if keep:
                    result.llm_ms.append(llm_ms)
                    result.raw_ms.append(raw_ms)
                    result.own_ms.append(llm_ms - raw_ms)
                    result.llm_cpu_ms.append(llm_cpu_ms)
                    result.raw_cpu_ms.append(raw_cpu_ms)
                    result.own_cpu_ms.append(llm_cpu_ms - raw_cpu_ms)
                    result.llm_requests += len(bodies)
        finally:
            await raw_client.close()
    return result


def _asker(conversation_id: str) -> Asker:
    return Asker(external_id=f"bench:{conversation_id}", channel="bench")


def _offline_turns(conversations: Iterator[tuple[str, ...]]) -> Iterator[tuple[str, str]]:
    for number in itertools.count():
        for message in next(conversations):
            yield f"bench:offline:{number}", message


def _llm_turns() -> Iterator[tuple[str, str]]:
    vins = itertools.cycle(LLM_VINS)
    for number in itertools.count():
        for _ in range(LLM_TURNS_PER_CONVERSATION):
            yield f"bench:llm:{number}", next(vins)


def print_overhead(result: Overhead, words: int) -> None:
    def row(label: str, samples: Sequence[float]) -> None:
        print(
            f"  {label:<44}{percentile(samples, 50):>8.1f}{percentile(samples, 95):>8.1f}"
            f"{percentile(samples, 99):>8.1f}"
        )

    per_turn = result.llm_requests / len(result.llm_ms) if result.llm_ms else 0
    print(
        f"\nagent overhead, in-process and sequential ({len(result.llm_ms)} turns of each kind; "
        f"LLM answers of {words} words), ms" + (" (cut by the time cap)" if result.cut else "")
    )
    print(f"  {'wall clock':<44}{'p50':>8}{'p95':>8}{'p99':>8}")
    row("offline planner turn, direct (the default)", result.offline_ms)
    row("  the same turns through the graph (A/B)", result.graph_ms)
    row("LLM turn, instant stand-in (tool call + text)", result.llm_ms)
    row(f"  raw stand-in round trips ({per_turn:.0f} per turn)", result.raw_ms)
    row("  agent's own time per LLM turn (paired)", result.own_ms)
    print(f"  {'CPU time of this process (PostgreSQL and Redis excluded)':<44}")
    row("offline planner turn, direct (the default)", result.offline_cpu_ms)
    row("  the same turns through the graph (A/B)", result.graph_cpu_ms)
    row("LLM turn (the in-process stand-in included)", result.llm_cpu_ms)
    row("  raw stand-in round trips", result.raw_cpu_ms)
    row("  agent's own CPU per LLM turn (paired)", result.own_cpu_ms)
    if result.offline_cpu_ms and result.graph_cpu_ms:
        ratio = statistics.fmean(result.offline_cpu_ms) / statistics.fmean(result.graph_cpu_ms)
        print(f"  offline CPU per turn, direct / graph (mean, interleaved): {ratio:.2f}x")
    for failure in sorted(set(result.failures)):
        print(f"  problem: {failure} (x{result.failures.count(failure)})")
    own95 = percentile(result.own_ms, 95)
    met = own95 < GOAL_OVERHEAD_MS and not result.failures
    print(
        f"\ngoal: agent overhead < {GOAL_OVERHEAD_MS:.0f} ms per turn — {'MET' if met else 'NOT MET'} "
        f"(wall clock p95 {own95:.1f} ms, p50 {percentile(result.own_ms, 50):.1f} ms; CPU p95 "
        f"{percentile(result.own_cpu_ms, 95):.1f} ms, p50 {percentile(result.own_cpu_ms, 50):.1f} ms; "
        f"load average {load_average()})"
    )


# ---------------------------------------------------------------- profile


async def profile_turns(infra: Infra, turns: int, seconds: float, words: int) -> None:
    """Print where sequential turns spend their time, by package and by function, and their SQL.

    cProfile inflates Python calls (about 2x here): read the figures as shares.
    """
    conversations = itertools.cycle(CONVERSATIONS)
    async with assistants(infra) as agents:
        offline_turns, llm_turns = _offline_turns(conversations), _llm_turns()
        statements: Counter[str] = Counter()
        # Counted at psycopg's cursor: SQLAlchemy's statements, its pool's pings and the turn's
        # own two statements (which go to the pooled psycopg connection directly).
        execute = psycopg.AsyncCursor.execute

        async def counted(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            text = query if isinstance(query, str) else str(query)
            statements[" ".join(text.split()[:3])] += 1
            return await execute(cursor, query, *args, **kwargs)

        psycopg.AsyncCursor.execute = counted  # type: ignore[method-assign, assignment]

        async def one(kind: str) -> None:
            if kind == "offline":
                conversation_id, message = next(offline_turns)
                await agents.offline.ask(
                    message, conversation_id=conversation_id, asker=_asker(conversation_id)
                )
            else:
                conversation_id, vin = next(llm_turns)
                _plan_turn(agents.standin, vin, words)
                await agents.llm.ask(
                    f"decode {vin}", conversation_id=conversation_id, asker=_asker(conversation_id)
                )

        for kind, label in (
            ("offline", "offline turns"),
            ("llm", "LLM turns (the stand-in server and the openai client run in this process too)"),
        ):
            for _ in range(10):
                await one(kind)
            statements.clear()
            profiler = cProfile.Profile()
            deadline, done, started = time.monotonic() + seconds, 0, time.perf_counter()
            profiler.enable()
            while done < turns and time.monotonic() < deadline:
                await one(kind)
                done += 1
            profiler.disable()
            wall = (time.perf_counter() - started) * 1000 / done
            print(f"\nprofile: {done} {label}; {wall:.1f} ms/turn under the profiler")
            _print_by_package(pstats.Stats(profiler), done)
            print("  SQL statements per turn (psycopg cursor executes, pool pings included):")
            for statement, number in statements.most_common(10):
                print(f"    {number / done:5.2f}  {statement}")
            print("  top functions by own time:")
            pstats.Stats(profiler).sort_stats(pstats.SortKey.TIME).print_stats(12)
        psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]


def _package(filename: str, function: str) -> str:
    if filename == "~":  # a built-in: name the C function ("<method 'poll' of ...>")
        return "C: " + function.split("'")[1] if "'" in function else "C: " + function
    if "site-packages/" in filename:
        return filename.split("site-packages/")[1].split("/")[0].removesuffix(".py")
    if filename.startswith(str(REPO)):
        return "vinbot: " + "/".join(Path(filename).relative_to(REPO).parts[:2])
    path = Path(filename)  # the standard library: name its package (asyncio), else its module
    return "stdlib: " + (path.stem if path.parent.name.startswith("python3") else path.parent.name)


def _print_by_package(stats: pstats.Stats, turns: int) -> None:
    own: Counter[str] = Counter()
    for (filename, _, function), row in stats.stats.items():  # type: ignore[attr-defined]
        own[_package(filename, function)] += row[2]
    total = sum(own.values())
    print(f"  own time by package ({total * 1000 / turns:.1f} ms/turn profiled):")
    for name, seconds in own.most_common(14):
        print(f"    {seconds * 1000 / turns:6.2f} ms/turn {100 * seconds / total:5.1f}%  {name}")


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ask_bench", description=__doc__)
    parser.add_argument("--requests", type=int, default=600, help="requests per load phase (default 600)")
    parser.add_argument("--concurrency", type=int, default=GOAL_CONCURRENCY, help="the loaded level")
    parser.add_argument("--seconds", type=float, default=30.0, help="time cap per load phase (default 30)")
    parser.add_argument("--turns", type=int, default=150, help="sequential turns of each kind (overhead)")
    parser.add_argument("--answer-words", type=int, default=40, help="length of the stand-in's answers")
    parser.add_argument("--skip-load", action="store_true", help="only measure the agent overhead")
    parser.add_argument(
        "--rate", type=float, default=100.0, help="open-loop arrivals per second in total (default 100)"
    )
    parser.add_argument("--workers", type=int, help="`vinbot api --workers` (default: its own, one per core)")
    parser.add_argument("--profile", action="store_true", help="also cProfile sequential turns")
    args = parser.parse_args(argv)
    if args.requests < 20 or args.concurrency < 2 or args.seconds <= 0 or args.turns < 20:
        parser.error("--requests and --turns must be at least 20, --concurrency at least 2, --seconds > 0")
    if args.answer_words < 1:
        parser.error("--answer-words must be positive")
    if args.rate <= 0 or (args.workers is not None and args.workers < 1):
        parser.error("--rate and --workers must be positive")

    print(
        f"ask bench {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {os.cpu_count()} CPUs, shared machine; "
        f"load average {load_average()}; per phase ≤ {args.requests} requests and ≤ {args.seconds:.0f} s"
    )
    with embedded_infra() as infra:
        if not args.skip_load:
            with served_api(infra, args.workers) as server:
                phases = asyncio.run(
                    measure_load(
                        server,
                        concurrency=args.concurrency,
                        requests=args.requests,
                        seconds=args.seconds,
                        rate=args.rate,
                    )
                )
            print_load(phases, args.concurrency, server.workers)
        overhead = measure_overhead(infra, args.turns, 2 * args.seconds, args.answer_words)
        print_overhead(asyncio.run(overhead), args.answer_words)
        if args.profile:
            asyncio.run(profile_turns(infra, min(args.turns, 100), 2 * args.seconds, args.answer_words))
    print(f"\nload average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
