"""`vinbot ask` and `vinbot chat`: the terminal transports of the assistant."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console

from agent.answer import Answer, AnswerEvent, Language, TokenEvent, ToolCallEvent
from agent.assistant import Asker, GraphAssistant
from agent.bootstrap import build_assistant
from tools.bootstrap import build_tool_deps, open_infrastructure
from tools.errors import AppError
from tools.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class AskOptions:
    """What the user asked `vinbot ask` for."""

    question: str | None = None
    as_json: bool = False
    conversation: str | None = None
    language: Language | None = None


@asynccontextmanager
async def _assistant(settings: Settings) -> AsyncIterator[GraphAssistant]:
    async with open_infrastructure(settings) as infra:
        yield build_assistant(settings, build_tool_deps(settings, infra))


def _asker(settings: Settings) -> Asker:
    return Asker(
        external_id=f"cli:{settings.cli_user}",
        channel="cli",
        username=settings.cli_user,
        tier=settings.cli_tier,
    )


def _conversation(given: str | None) -> str:
    return given if given else f"cli:{uuid.uuid4().hex}"


async def run_ask(settings: Settings, options: AskOptions, *, stdin: TextIO | None = None) -> int:
    """Answer one question, or one per line of standard input (JSON lines, in order)."""
    stdin = stdin or sys.stdin
    err = Console(stderr=True)
    if options.question is not None and not options.question.strip():
        err.print("[red]The question is empty.[/red]")
        return EXIT_USAGE
    asker = _asker(settings)
    async with _assistant(settings) as assistant:
        if options.question is not None:
            try:
                answer = await assistant.ask(
                    options.question,
                    conversation_id=_conversation(options.conversation),
                    asker=asker,
                    language=options.language,
                )
            except AppError as e:
                err.print(f"[red]{e.public_message}[/red]")
                return EXIT_FAILED
            if options.as_json:
                sys.stdout.write(answer.model_dump_json(indent=2) + "\n")
            else:
                print_answer(Console(soft_wrap=True), answer)
            return EXIT_OK
        status = EXIT_OK
        for line in stdin:
            question = line.strip()
            if not question:
                continue
            try:
                answer = await assistant.ask(
                    question,
                    conversation_id=_conversation(options.conversation),
                    asker=asker,
                    language=options.language,
                )
                sys.stdout.write(answer.model_dump_json() + "\n")
            except AppError as e:
                status = EXIT_FAILED
                sys.stdout.write(json.dumps({"question": question, **e.to_dict()}, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        return status


async def run_chat(
    settings: Settings, *, language: Language | None = None, stdin: TextIO | None = None
) -> int:
    """An interactive conversation in the terminal; answers stream in as they are written."""
    stdin = stdin or sys.stdin
    console = Console(soft_wrap=True)
    if stdin.isatty():
        import readline  # noqa: F401 - line editing and history for input()
    conversation = _conversation(None)
    asker = _asker(settings)
    async with _assistant(settings) as assistant:
        console.print("vinbot — ask about a VIN or a vehicle. 'quit' to leave.", highlight=False)
        while True:
            console.print("[bold]you>[/bold] ", end="")
            line = stdin.readline()
            if not line or line.strip().lower() in {"quit", "exit", "q", "/quit"}:
                return EXIT_OK
            if not line.strip():
                continue
            console.print("[bold]vinbot>[/bold] ", end="")
            try:
                async for event in assistant.stream(
                    line, conversation_id=conversation, asker=asker, language=language
                ):
                    if isinstance(event, TokenEvent):
                        console.print(event.text, end="", highlight=False, markup=False)
                    elif isinstance(event, ToolCallEvent):
                        console.print(f"[dim]({event.name})[/dim] ", end="")
                    elif isinstance(event, AnswerEvent):
                        console.print()
                        _print_footer(console, event.answer)
            except AppError as e:
                console.print(f"\n[red]{e.public_message}[/red]")


def print_answer(console: Console, answer: Answer) -> None:
    """Print the answer text and a short footer with sources and the planner."""
    console.print(answer.answer, highlight=False, markup=False)
    _print_footer(console, answer)


def _print_footer(console: Console, answer: Answer) -> None:
    sources = "; ".join(
        " ".join(p for p in (s.dataset, s.record_id, f"({s.data_date})" if s.data_date else None) if p)
        for s in answer.sources
    )
    footer = f"planner: {answer.planner}, {answer.latency_ms:.0f} ms"
    if sources:
        footer = f"sources: {sources} — {footer}"
    console.print(footer, style="dim", highlight=False, markup=False)
