"""Updates per second through the Telegram bot, against a stand-in Bot API on loopback.

The real `vinbot bot` process (offline planner, embedded PostgreSQL and Redis in a
temporary folder) long-polls the Telegram stand-in (tests/standins/telegram_api.py),
which runs in this process; or, with `--mode webhook`, the real `vinbot api --workers N`
in webhook mode registers its `/telegram/webhook` with the stand-in, which POSTs the
updates to it as the Bot API server does (a chat's next update after the previous
one was answered, up to 40 requests at once). `--updates` text messages from `--chats` private chats (the
ask bench's conversation mix: decodes in four languages, greetings, follow-ups,
history) are queued at once; the clock runs until every update has its answer. Each
chat must get exactly one answer per message (checked after a quiet second): no reply
lost, none duplicated.

Baselines, measured in the same run on the same machine:

* the stand-in's raw round trip: `sendMessage` POSTs from httpx at the same concurrency
  (the ceiling the Bot API side alone allows), and
* `Assistant.ask` alone: the same messages through `GraphAssistant.ask` in this process,
  `--chats` at a time (what the bot wraps: the transport's cost is the difference).

    .venv/bin/python -m bench.bot_bench [--updates 1000] [--chats 50] [--rounds 2]
        [--mode polling|webhook]  `vinbot bot` long-polling (default), or `vinbot api` in
                              webhook mode, the stand-in POSTing updates as Telegram does
        [--workers N]         webhook mode: the API's worker processes (default 2)
        [--concurrency N]     updates in flight per process (default: the setting, 8)
        [--typing-after-s S]  the typing action's delay (default: the setting, 1.0; 0: at once)
        [--profile FILE]      polling: run the bot under cProfile and write its stats to FILE

Each round also prints the CPU per update of the stand-in (this process) and of the
embedded PostgreSQL and Redis, to tell whether the bench itself is the bottleneck, and in
webhook mode each worker process's CPU (how evenly the chats spread). At the end: every
process's CPU per update, and the updates/s the machine's cores allow at that cost.

Goal (the issue): >= 100 updates/s on 2 cores, with no lost or duplicated reply.
Everything stops by itself; the bot process and the embedded servers are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvloop

from agent.assistant import Asker
from agent.bootstrap import build_assistant
from bench.ask_bench import (
    CONVERSATIONS,
    UNLIMITED,
    Infra,
    bench_settings,
    embedded_infra,
    load_average,
    process_cpu_s,
)
from tests.standins import serving
from tests.standins.telegram_api import BotState, TelegramStandIn, create_app, user
from tools.bootstrap import build_tool_deps, open_infrastructure

GOAL_UPDATES_PER_S = 100.0
TOKEN = "5050505050:AAH-bench-token-not-a-real-telegram-token-01"  # noqa: S105 - the stand-in's
WEBHOOK_SECRET = "bench-webhook-secret-0123456789"  # noqa: S105 - the stand-in's
STARTUP_TIMEOUT_S = 120.0
ROUND_TIMEOUT_S = 300.0
REPO = Path(__file__).resolve().parents[1]
# `vinbot` under cProfile timed by the process's CPU clock, not the wall clock: on a shared
# machine a wall-clock profile charges the time spent waiting for a core to whatever ran last.
CPU_PROFILE = """
import cProfile, sys, time
from vinbot.cli import main
out, sys.argv = sys.argv[1], ["vinbot", *sys.argv[2:]]
profile = cProfile.Profile(time.process_time)
try:
    profile.runcall(main)
finally:
    profile.dump_stats(out)
"""


def messages_for(chats: int, updates: int) -> list[list[str]]:
    """Split `updates` messages over `chats` chats, each chat replaying the ask bench's conversations."""
    turns = itertools.cycle([turn for conversation in CONVERSATIONS for turn in conversation])
    per_chat: list[list[str]] = [[] for _ in range(chats)]
    for i in range(updates):
        per_chat[i % chats].append(next(turns))
    return per_chat


# ---------------------------------------------------------------- baselines


async def raw_round_trip(base_url: str, state: BotState, *, requests: int, concurrency: int) -> float:
    """Return `sendMessage` calls/s against the stand-in from plain httpx clients."""
    url = f"{base_url}/bot{state.token}/sendMessage"
    counter = itertools.count()

    async def worker(client: httpx.AsyncClient) -> None:
        while next(counter) < requests:
            response = await client.post(url, data={"chat_id": "1", "text": "pong"})
            response.raise_for_status()

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    state.messages.pop(1, None)
    return requests / (time.perf_counter() - started)


async def assistant_alone(
    infra: Infra, data_dir: Path, per_chat: Sequence[Sequence[str]]
) -> tuple[float, float]:
    """Return questions/s and CPU s/question of `GraphAssistant.ask` in this process, a task per chat."""
    settings = bench_settings(infra, data_dir)
    async with open_infrastructure(settings, migrate_schema=False) as opened:
        assistant = build_assistant(settings, build_tool_deps(settings, opened))
        run = os.urandom(4).hex()

        async def chat(index: int, texts: Sequence[str]) -> None:
            asker = Asker(external_id=f"bench:{run}:{index}", channel="telegram", language="en")
            for text in texts:
                await assistant.ask(text, conversation_id=f"bench:{run}:{index}", asker=asker)

        await chat(-1, ["hello", "decode 1HGCM82633A004352"])  # warm-up: graph, tiktoken, decoder
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(chat(i, texts) for i, texts in enumerate(per_chat)))
        questions = sum(map(len, per_chat))
        return questions / (time.perf_counter() - started), (time.process_time() - cpu) / questions


# ---------------------------------------------------------------- the bot


@dataclass
class BotRound:
    updates: int
    seconds: float
    lost: int
    duplicated: int
    bot_cpu_s: float
    worker_cpu_s: list[float]  # each bot process's share: the API's workers, or the one polling process
    standin_cpu_s: float
    servers_cpu_s: float  # embedded PostgreSQL and Redis

    @property
    def per_s(self) -> float:
        return self.updates / self.seconds


async def spawn_bot(
    infra: Infra,
    base_url: str,
    data_dir: Path,
    log: Path,
    *,
    profile: Path | None = None,
    concurrency: int | None = None,
    webhook_workers: int | None = None,
    typing_after_s: float | None = None,
) -> asyncio.subprocess.Process:
    """Start `vinbot bot` polling the stand-in, or `vinbot api` in webhook mode with that many workers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VINBOT_", "OPENAI_", "TELEGRAM_"))}
    env.update(
        DATABASE_URL=infra.pg_url,
        REDIS_URL=infra.redis_url,
        VINBOT_DATA_DIR=str(data_dir),
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=base_url,
        VINBOT_TELEGRAM__POLL_TIMEOUT_S="1",
        VINBOT_TELEGRAM__MESSAGES_PER_DAY_FREE=str(UNLIMITED),
        VINBOT_LIMITS__MESSAGES_PER_MINUTE=str(UNLIMITED),
        VINBOT_LIMITS__DECODES_PER_MINUTE=str(UNLIMITED),
        VINBOT_LIMITS__DECODES_PER_DAY_FREE=str(UNLIMITED),
    )
    if concurrency is not None:
        env["VINBOT_TELEGRAM__CONCURRENT_UPDATES"] = str(concurrency)
    if typing_after_s is not None:
        env["VINBOT_TELEGRAM__TYPING_AFTER_S"] = str(typing_after_s)
    command = [str(Path(sys.executable).with_name("vinbot")), "bot"]
    if webhook_workers is not None:
        port = _free_port()
        env.update(
            VINBOT_TELEGRAM__MODE="webhook",
            VINBOT_TELEGRAM__WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/webhook",
            VINBOT_TELEGRAM__WEBHOOK_SECRET=WEBHOOK_SECRET,
            VINBOT_LIMITS__ANONYMOUS_REQUESTS_PER_MINUTE=str(UNLIMITED),
        )
        command = [command[0], "api", "--port", str(port), "--workers", str(webhook_workers)]
    if profile is not None:  # the stats are written when the bot stops on SIGTERM
        command = [sys.executable, "-c", CPU_PROFILE, str(profile), *command[1:]]
    with log.open("wb") as output:
        return await asyncio.create_subprocess_exec(
            *command,
            env=env,
            stdout=output,
            stderr=output,
            cwd=REPO,
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AnswerCounter:
    """Count the bot's answers per chat from the stand-in's calls, reading each call once."""

    def __init__(self, state: BotState) -> None:
        self.state = state
        self.seen = len(state.calls)
        self.per_chat: Counter[int] = Counter()

    def update(self) -> Counter[int]:
        calls = self.state.calls
        for call in calls[self.seen :]:
            if call.method == "sendMessage" and _is_answer(call.params.get("reply_markup")):
                self.per_chat[int(call.params["chat_id"])] += 1
        self.seen = len(calls)
        return self.per_chat


def _is_answer(markup: object) -> bool:
    # Every answer carries the 👍/👎 buttons.
    if not isinstance(markup, dict):
        return False
    return any(
        str(b.get("callback_data", "")).startswith("fb:") for row in markup["inline_keyboard"] for b in row
    )


async def bot_round(
    state: BotState, pid: int, per_chat: Sequence[Sequence[str]], first_id: int, servers: Sequence[int] = ()
) -> BotRound:
    people = [user(first_id + i, ("en", "es", "fr", "de")[i % 4]) for i in range(len(per_chat))]
    total = sum(map(len, per_chat))
    counter = AnswerCounter(state)
    cpu, own_cpu = process_cpu_s(pid), time.process_time()
    workers = _bot_processes(pid)
    workers_cpu = [_own_cpu_s(p) for p in workers]
    servers_cpu = sum(map(process_cpu_s, servers))
    started = time.perf_counter()
    for turn in range(max(map(len, per_chat))):
        for person, texts in zip(people, per_chat, strict=True):
            if turn < len(texts):
                state.push_text(person, texts[turn])
    await state.wait_for(lambda: sum(counter.update().values()) >= total, within_s=ROUND_TIMEOUT_S)
    seconds = time.perf_counter() - started
    bot_cpu, standin_cpu = process_cpu_s(pid) - cpu, time.process_time() - own_cpu
    workers_cpu = [_own_cpu_s(p) - before for p, before in zip(workers, workers_cpu, strict=True)]
    servers_cpu = sum(map(process_cpu_s, servers)) - servers_cpu
    await asyncio.sleep(1.0)  # anything sent late would be a duplicate
    got = counter.update()
    expected = {p["id"]: len(texts) for p, texts in zip(people, per_chat, strict=True)}
    lost = sum(max(0, expected[c] - got[c]) for c in expected)
    duplicated = sum(max(0, got[c] - expected[c]) for c in expected) + sum(
        n for c, n in got.items() if c not in expected
    )
    return BotRound(total, seconds, lost, duplicated, bot_cpu, workers_cpu, standin_cpu, servers_cpu)


def _bot_processes(pid: int) -> list[int]:
    """The processes that handle updates: the API's worker processes, else `pid` itself."""
    children = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            if (
                entry.name.isdigit()
                and int(_stat(int(entry.name))[1]) == pid
                and b"spawn_main" in (entry / "cmdline").read_bytes()
            ):
                children.append(int(entry.name))
    return sorted(children) or [pid]


def _own_cpu_s(pid: int) -> float:
    fields = _stat(pid)  # after "(comm)": utime is field 14 and stime 15 (1-based, proc(5))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


async def run(args: argparse.Namespace) -> int:
    per_chat = messages_for(args.chats, args.updates)
    print(
        f"bot bench: {args.updates} updates from {args.chats} chats, {args.rounds} rounds; "
        f"load {load_average()}"
    )
    with embedded_infra() as infra:
        data_dir = Path(tempfile.mkdtemp(prefix="vinbot-botbench-"))
        webhook = args.mode == "webhook"
        standin = TelegramStandIn(deliver_webhooks=webhook)
        state = standin.bot(TOKEN)
        async with serving(create_app(standin)) as base_url:
            raw = await raw_round_trip(base_url, state, requests=2000, concurrency=args.chats)
            print(f"  stand-in raw sendMessage round trip: {raw:8.0f} calls/s")
            alone, alone_cpu = await assistant_alone(infra, data_dir, per_chat)
            print(
                f"  Assistant.ask alone (in process):    {alone:8.1f} questions/s, "
                f"CPU {1000 * alone_cpu:.2f} ms/question"
            )
            log = data_dir / "bot.log"
            process = await spawn_bot(
                infra,
                base_url,
                data_dir,
                log,
                profile=args.profile,
                concurrency=args.concurrency,
                webhook_workers=args.workers if webhook else None,
                typing_after_s=args.typing_after_s,
            )
            shape = f"vinbot api --workers {args.workers}, webhook" if webhook else "vinbot bot, polling"
            print(f"  bot: {shape}")

            def started() -> bool:
                if webhook:  # every worker has registered the webhook
                    return len(state.calls_of("setWebhook")) >= args.workers
                return bool(state.calls_of("deleteWebhook"))

            try:
                await state.wait_for(
                    lambda: started() or process.returncode is not None,
                    within_s=STARTUP_TIMEOUT_S,
                )
                if process.returncode is not None:
                    print(log.read_text()[-3000:])
                    return 1
                await bot_round(state, process.pid, messages_for(4, 40), first_id=9_000_000)  # warm-up
                rounds = []
                requests_before = standin.requests
                for r in range(args.rounds):
                    result = await bot_round(
                        state, process.pid, per_chat, first_id=10_000_000 * (r + 1), servers=infra.pids
                    )
                    rounds.append(result)
                    print(
                        f"  round {r + 1}: {result.per_s:6.1f} updates/s ({result.seconds:.2f} s), "
                        f"bot CPU {1000 * result.bot_cpu_s / result.updates:.2f} ms/update, "
                        f"stand-in CPU {1000 * result.standin_cpu_s / result.updates:.2f}, "
                        f"PostgreSQL+Redis CPU {1000 * result.servers_cpu_s / result.updates:.2f} ms/update, "
                        f"lost {result.lost}, duplicated {result.duplicated}"
                    )
                    if len(result.worker_cpu_s) > 1:
                        shares = ", ".join(f"{cpu:.1f}" for cpu in result.worker_cpu_s)
                        print(f"           CPU s per worker process: {shares}")
            finally:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), timeout=60)
                await standin.aclose()
    best = statistics.median(r.per_s for r in rounds)
    clean = all(r.lost == 0 and r.duplicated == 0 for r in rounds)
    print(f"  bot (median of rounds):              {best:8.1f} updates/s")
    bot_cpu = statistics.median(r.bot_cpu_s / r.updates for r in rounds)
    print(f"  bot / Assistant.ask alone:           {best / alone:8.2f}x")
    print(
        f"  bot CPU per update - ask CPU:        {1000 * (bot_cpu - alone_cpu):8.2f} ms (the transport's own)"
    )
    # What the machine's cores allow if nothing else ran: every process's CPU per update (the
    # bot, the stand-in, PostgreSQL and Redis) against the cores. Steadier than updates/s on a
    # shared machine; reached only if the bot's work spreads over all of them.
    all_cpu = statistics.median((r.bot_cpu_s + r.standin_cpu_s + r.servers_cpu_s) / r.updates for r in rounds)
    cores = len(os.sched_getaffinity(0))
    print(
        f"  CPU per update, all processes:       {1000 * all_cpu:8.2f} ms: "
        f"at most {cores / all_cpu:.0f} updates/s on {cores} cores"
    )
    per_update = (standin.requests - requests_before) / sum(r.updates for r in rounds)
    print(f"  Bot API requests per update:         {per_update:8.2f}")
    if webhook:
        print(f"  webhook POSTs (redeliveries too):    {state.webhook_deliveries:8d}")
    met = best >= GOAL_UPDATES_PER_S and clean
    print(
        f"goal >= {GOAL_UPDATES_PER_S:.0f} updates/s with no lost or duplicated reply: "
        f"{'MET' if met else 'NOT MET'}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--mode", choices=["polling", "webhook"], default="polling", help="how the bot gets its updates"
    )
    parser.add_argument("--workers", type=int, default=2, help="webhook mode: the API's worker processes")
    parser.add_argument(
        "--concurrency",
        type=int,
        help="updates in flight per process (VINBOT_TELEGRAM__CONCURRENT_UPDATES)",
    )
    parser.add_argument(
        "--typing-after-s",
        type=float,
        help="the typing action's delay (VINBOT_TELEGRAM__TYPING_AFTER_S; 0: at once, as before)",
    )
    parser.add_argument("--profile", type=Path, help="run the bot under cProfile and write its stats here")
    args = parser.parse_args(argv)
    # uvloop, as the bot and the API run: the stand-in shares the machine's cores with them.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
