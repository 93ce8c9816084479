"""Updates per second through the Telegram bot, against a stand-in Bot API on loopback.

The real `vinbot bot` process (offline planner, embedded PostgreSQL and Redis in a
temporary folder) long-polls the Telegram stand-in (tests/standins/telegram_api.py),
which runs in this process. `--updates` text messages from `--chats` private chats (the
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
        [--concurrency N]     the bot's updates in flight (default: the setting, 8)
        [--profile FILE]      run the bot under cProfile and write its stats to FILE

Each round also prints the CPU per update of the stand-in (this process) and of the
embedded PostgreSQL and Redis, to tell whether the bench itself is the bottleneck.

Goal (the issue): >= 100 updates/s on 2 cores, with no lost or duplicated reply.
Everything stops by itself; the bot process and the embedded servers are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

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
STARTUP_TIMEOUT_S = 120.0
ROUND_TIMEOUT_S = 300.0
REPO = Path(__file__).resolve().parents[1]


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
) -> asyncio.subprocess.Process:
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
    command = [str(Path(sys.executable).with_name("vinbot")), "bot"]
    if profile is not None:  # cProfile writes the file when the bot stops on SIGTERM
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), *command]
    with log.open("wb") as output:
        return await asyncio.create_subprocess_exec(
            *command,
            env=env,
            stdout=output,
            stderr=output,
            cwd=REPO,
        )


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
    servers_cpu = sum(map(process_cpu_s, servers))
    started = time.perf_counter()
    for turn in range(max(map(len, per_chat))):
        for person, texts in zip(people, per_chat, strict=True):
            if turn < len(texts):
                state.push_text(person, texts[turn])
    await state.wait_for(lambda: sum(counter.update().values()) >= total, within_s=ROUND_TIMEOUT_S)
    seconds = time.perf_counter() - started
    bot_cpu, standin_cpu = process_cpu_s(pid) - cpu, time.process_time() - own_cpu
    servers_cpu = sum(map(process_cpu_s, servers)) - servers_cpu
    await asyncio.sleep(1.0)  # anything sent late would be a duplicate
    got = counter.update()
    expected = {p["id"]: len(texts) for p, texts in zip(people, per_chat, strict=True)}
    lost = sum(max(0, expected[c] - got[c]) for c in expected)
    duplicated = sum(max(0, got[c] - expected[c]) for c in expected) + sum(
        n for c, n in got.items() if c not in expected
    )
    return BotRound(total, seconds, lost, duplicated, bot_cpu, standin_cpu, servers_cpu)


async def run(args: argparse.Namespace) -> int:
    per_chat = messages_for(args.chats, args.updates)
    print(
        f"bot bench: {args.updates} updates from {args.chats} chats, {args.rounds} rounds; "
        f"load {load_average()}"
    )
    with embedded_infra() as infra:
        data_dir = Path(tempfile.mkdtemp(prefix="vinbot-botbench-"))
        standin = TelegramStandIn()
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
                infra, base_url, data_dir, log, profile=args.profile, concurrency=args.concurrency
            )
            try:
                await state.wait_for(
                    lambda: state.calls_of("deleteWebhook") or process.returncode is not None,
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
            finally:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), timeout=60)
    best = statistics.median(r.per_s for r in rounds)
    clean = all(r.lost == 0 and r.duplicated == 0 for r in rounds)
    print(f"  bot (median of rounds):              {best:8.1f} updates/s")
    bot_cpu = statistics.median(r.bot_cpu_s / r.updates for r in rounds)
    print(f"  bot / Assistant.ask alone:           {best / alone:8.2f}x")
    print(
        f"  bot CPU per update - ask CPU:        {1000 * (bot_cpu - alone_cpu):8.2f} ms (the transport's own)"
    )
    per_update = (standin.requests - requests_before) / sum(r.updates for r in rounds)
    print(f"  Bot API requests per update:         {per_update:8.2f}")
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
        "--concurrency", type=int, help="the bot's updates in flight (VINBOT_TELEGRAM__CONCURRENT_UPDATES)"
    )
    parser.add_argument("--profile", type=Path, help="run the bot under cProfile and write its stats here")
    args = parser.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
