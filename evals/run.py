"""Run the agent evals: every case of a dataset through the real assistant, scored and reported.

    vinbot eval [agent] [--dataset PATH] [--out DIR] [--thresholds PATH] [--concurrency N]
    python -m evals.run [same options]

Both go through `main(argv)`. The run opens its own
infrastructure from the settings (embedded PostgreSQL and Redis when nothing is
configured) and builds the assistant as every transport does, so it evaluates
the offline planner unless an LLM is configured. Each case runs in a fresh
conversation as a fresh anonymous user. The report goes to
`<out>/<date>-<git sha or 'nogit'>.{md,json}`; the exit status is 1 when the run
is below its thresholds.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from agent import prompts
from agent.assistant import Asker, Assistant
from agent.bootstrap import build_assistant
from evals.report import CaseResult, Check, Report, load_thresholds
from evals.scorers import Case, Score, ToolCall, applicable_scorers, score_case
from tools.bootstrap import build_tool_deps, open_infrastructure
from tools.settings import Settings, get_settings

logger = logging.getLogger(__name__)

EVALS_DIR = Path(__file__).resolve().parent
REPO_ROOT = EVALS_DIR.parent
DEFAULT_DATASET = EVALS_DIR / "datasets" / "agent_v1.jsonl"
DEFAULT_OUT = EVALS_DIR / "results"
DEFAULT_THRESHOLDS = EVALS_DIR / "thresholds.toml"
DEFAULT_CONCURRENCY = 4
CHANNEL = "eval"
# Cases with this tag ask about other users' data; they run after every other case,
# so that the other eval users' look-ups exist when they ask for them.
ISOLATION_TAG = "isolation"

EXIT_OK, EXIT_BELOW_THRESHOLDS, EXIT_USAGE = 0, 1, 2


class DatasetError(ValueError):
    """The dataset file is missing or has an invalid line."""


# ---------------------------------------------------------------- dataset


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


class _Planned(Protocol):
    @property
    def planner(self) -> str: ...


CaseT = TypeVar("CaseT", bound=_Identified)
ResultT = TypeVar("ResultT", bound=_Planned)
ThresholdsT = TypeVar("ThresholdsT")
_ThresholdsT_contra = TypeVar("_ThresholdsT_contra", contravariant=True)


def load_jsonl(path: Path, parse: Callable[[str], CaseT]) -> list[CaseT]:
    """Read and validate a JSONL dataset with `parse`: one case per line, blank lines ignored.

    Raises:
        DatasetError: the file is missing, a line is not a valid case, or an id repeats.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror}") from e
    cases: list[CaseT] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            case = parse(line)
        except ValidationError as e:
            raise DatasetError(f"{path.name}:{number}: {e}") from e
        if case.id in seen:
            raise DatasetError(f"{path.name}:{number}: duplicate case id {case.id!r}")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise DatasetError(f"{path} has no cases")
    return cases


def load_cases(path: Path) -> list[Case]:
    """Read and validate the agent dataset (see `load_jsonl`)."""
    return load_jsonl(path, Case.model_validate_json)


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- running


def new_run_id() -> str:
    """Return a run id that is unique across runs (it namespaces the eval users)."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


async def run_case(assistant: Assistant, case: Case, *, run_id: str) -> CaseResult:
    """Ask every turn of `case` in one new conversation and score the last answer."""
    external_id = f"eval:{run_id}:{case.id}"
    asker = Asker(external_id=external_id, channel=CHANNEL, language=case.user_language)
    started = time.perf_counter()
    answers = []
    try:
        for turn in case.turns:
            answers.append(await assistant.ask(turn, conversation_id=external_id, asker=asker))
    except Exception as e:  # the harness is each case's top-level handler: record the failure, go on
        logger.exception("eval case %s raised", case.id)
        return CaseResult(
            case=case,
            answer="",
            language="",
            tool_calls=(),
            planner="",
            latency_ms=0.0,
            wall_ms=_elapsed_ms(started),
            input_tokens=sum(a.usage.input_tokens for a in answers),
            output_tokens=sum(a.usage.output_tokens for a in answers),
            cost_usd=sum(a.usage.estimated_cost_usd for a in answers),
            scores=unscored(applicable_scorers(case.expected), e),
            error=f"{type(e).__name__}: {e}",
            earlier_answers=tuple(a.answer for a in answers),
        )
    last = answers[-1]
    calls = tuple(ToolCall(c.name, dict(c.args)) for c in last.tool_calls)
    return CaseResult(
        case=case,
        answer=last.answer,
        language=last.language,
        tool_calls=calls,
        planner=last.planner,
        latency_ms=last.latency_ms,
        wall_ms=_elapsed_ms(started),
        input_tokens=sum(a.usage.input_tokens for a in answers),
        output_tokens=sum(a.usage.output_tokens for a in answers),
        cost_usd=sum(a.usage.estimated_cost_usd for a in answers),
        scores=score_case(case.expected, answer=last.answer, language=last.language, calls=calls),
        earlier_answers=tuple(a.answer for a in answers[:-1]),
    )


async def run_cases(
    assistant: Assistant,
    cases: Sequence[Case],
    *,
    run_id: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> Report:
    """Run `cases` against `assistant`, at most `concurrency` at a time; results keep dataset order.

    Cases tagged `isolation` start only after every other case has finished.
    """
    run_id = run_id or new_run_id()
    results, meta = await run_all(
        cases,
        lambda case: run_case(assistant, case, run_id=run_id),
        run_id=run_id,
        concurrency=concurrency,
        last=lambda case: ISOLATION_TAG in case.tags,
    )
    return Report(results=results, meta=meta)


async def run_all(
    cases: Sequence[CaseT],
    run: Callable[[CaseT], Awaitable[ResultT]],
    *,
    run_id: str,
    concurrency: int,
    last: Callable[[CaseT], bool] = lambda _: False,
) -> tuple[tuple[ResultT, ...], dict[str, Any]]:
    """Run every case, at most `concurrency` at a time; the cases `last` picks start after all the others.

    Returns:
        The results in `cases` order, and the run's metadata (id, planners, concurrency, wall time).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    gate = asyncio.Semaphore(concurrency)
    results: dict[str, ResultT] = {}

    async def one(case: CaseT) -> None:
        async with gate:
            results[case.id] = await run(case)

    started = time.perf_counter()
    first = [c for c in cases if not last(c)]
    then = [c for c in cases if last(c)]
    for wave in (first, then):
        await asyncio.gather(*(one(c) for c in wave))
    ordered = tuple(results[c.id] for c in cases)
    meta = {
        "run_id": run_id,
        "planners": sorted({r.planner for r in ordered if r.planner}),
        "concurrency": concurrency,
        "wall_s": round(time.perf_counter() - started, 3),
    }
    return ordered, meta


def unscored(names: Iterable[str], error: Exception) -> tuple[Score, ...]:
    """Return a 0.0 verdict of every scorer in `names` for a case that raised `error`."""
    return tuple(Score(name, 0.0, f"not scored: the case raised {type(error).__name__}") for name in names)


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


# ---------------------------------------------------------------- the command


@dataclass(frozen=True, slots=True)
class EvalOptions:
    """What `vinbot eval` was asked to do."""

    dataset: Path = DEFAULT_DATASET
    out: Path = DEFAULT_OUT
    thresholds: Path = DEFAULT_THRESHOLDS
    concurrency: int = DEFAULT_CONCURRENCY
    knowledge: bool = False


def add_suite_arguments(
    parser: argparse.ArgumentParser, *, dataset: Path, thresholds: Path, thresholds_help: str
) -> None:
    """Add the options every suite takes: `--dataset`, `--out`, `--thresholds` and `--concurrency`."""
    parser.add_argument("--dataset", type=Path, default=dataset, help="the cases (JSONL)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where to write the .md and .json report"
    )
    parser.add_argument("--thresholds", type=Path, default=thresholds, help=thresholds_help)
    parser.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="cases run at the same time"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the eval options to `parser` (used by `vinbot eval` and `python -m evals.run`)."""
    add_suite_arguments(
        parser,
        dataset=DEFAULT_DATASET,
        thresholds=DEFAULT_THRESHOLDS,
        thresholds_help="the thresholds (TOML)",
    )
    parser.add_argument(
        "--knowledge",
        action="store_true",
        help="bind the spec, comparison and recall tools too (agent_v1 predates them; `vinbot eval specs` "
        "grades them)",
    )


def options_from(args: argparse.Namespace) -> EvalOptions:
    """Return the options parsed by a parser that `add_arguments` set up."""
    return EvalOptions(
        dataset=args.dataset,
        out=args.out,
        thresholds=args.thresholds,
        concurrency=args.concurrency,
        knowledge=args.knowledge,
    )


async def evaluate(
    settings: Settings, cases: Sequence[Case], *, concurrency: int, knowledge: bool = False
) -> Report:
    """Open the infrastructure, build the assistant from `settings` and run `cases`.

    Without `knowledge` the spec, comparison and recall tools are left out, as they were
    when agent_v1 was written: its "I can't answer MPG yet" cases stay meaningful on a
    database with the vehicle data ingested. The spec suite grades those tools.
    """
    async with open_infrastructure(settings) as infra:
        deps = build_tool_deps(settings, infra)
        if not knowledge:
            deps = replace(deps, knowledge=None)
        assistant = build_assistant(settings, deps)
        return await run_cases(assistant, cases, concurrency=concurrency)


def run_metadata(settings: Settings, dataset: Path) -> dict[str, Any]:
    """Return what identifies a run: code version, model, prompt and dataset."""
    prompt = prompts.CURRENT  # the prompt agent.bootstrap builds the assistant with
    sha, dirty = git_version(REPO_ROOT)
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_sha": sha or "nogit",
        "git_dirty": dirty,
        "planner_configured": f"llm:{settings.llm_model}" if settings.llm_configured else "offline",
        "model": settings.llm_model if settings.llm_configured else None,
        "prompt": f"agent.prompts.{prompts.CURRENT_NAME}",
        "prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest(),
        "dataset": str(dataset),
        "dataset_name": dataset.stem,
        "dataset_sha256": file_sha256(dataset),
    }


def git_version(root: Path) -> tuple[str | None, bool]:
    """Return the short commit of `root` and whether tracked files changed; (None, False) without git."""
    git = shutil.which("git")
    if git is None:
        return None, False
    try:
        head = subprocess.run(  # noqa: S603 - fixed arguments, git from PATH
            [git, "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        status = subprocess.run(  # noqa: S603
            [git, "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None, False
    if head.returncode != 0 or not head.stdout.strip():
        return None, False
    return head.stdout.strip(), bool(status.stdout.strip())


class SuiteReport(Protocol[_ThresholdsT_contra]):
    """What a suite's run reports (`Report`, `SpecReport`), judged against its kind of thresholds."""

    @property
    def meta(self) -> Mapping[str, Any]: ...

    def check(self, thresholds: _ThresholdsT_contra) -> list[Check]: ...

    def to_json(self, thresholds: _ThresholdsT_contra | None = None) -> dict[str, Any]: ...

    def to_markdown(self, thresholds: _ThresholdsT_contra | None = None, *, failures: bool = True) -> str: ...


def write_report(
    report: SuiteReport[ThresholdsT], out: Path, thresholds: ThresholdsT, *, suffix: str = ""
) -> tuple[Path, Path]:
    """Write `<date>-<git sha><suffix>.md` and `.json` into `out`; return both paths."""
    out.mkdir(parents=True, exist_ok=True)
    started = str(report.meta.get("started_at") or datetime.now(UTC).isoformat(timespec="seconds"))
    stamp = started.replace(":", "").replace("+0000", "Z")
    stem = out / f"{stamp}-{report.meta.get('git_sha', 'nogit')}{suffix}"
    markdown, data = stem.with_suffix(".md"), stem.with_suffix(".json")
    markdown.write_text(report.to_markdown(thresholds), encoding="utf-8")
    payload = report.to_json(thresholds)
    data.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return markdown, data


def conclude(
    report: SuiteReport[ThresholdsT], out: Path, thresholds: ThresholdsT, *, suffix: str = ""
) -> int:
    """Write the report, print its summary and every check below its limit; return the exit status."""
    markdown, data = write_report(report, out, thresholds, suffix=suffix)
    print(report.to_markdown(thresholds, failures=False))  # noqa: T201 - a command-line entry point
    print(f"written: {markdown} and {data}")  # noqa: T201
    below = [c for c in report.check(thresholds) if not c.ok]
    for c in below:
        print(f"below threshold: {c.name} = {c.value:g} (limit {c.limit:g})", file=sys.stderr)  # noqa: T201
    return EXIT_BELOW_THRESHOLDS if below else EXIT_OK


async def run_eval(settings: Settings, options: EvalOptions) -> int:
    """Run the evals and write the report; return 0, 1 below thresholds, 2 on bad input."""
    try:
        cases = load_cases(options.dataset)
        thresholds = load_thresholds(options.thresholds)
    except (DatasetError, OSError, ValidationError, ValueError) as e:
        print(f"vinbot eval: {e}", file=sys.stderr)  # noqa: T201 - a command-line entry point
        return EXIT_USAGE
    if options.concurrency < 1:
        print("vinbot eval: --concurrency must be at least 1", file=sys.stderr)  # noqa: T201
        return EXIT_USAGE
    meta = run_metadata(settings, options.dataset)
    report = await evaluate(settings, cases, concurrency=options.concurrency, knowledge=options.knowledge)
    report = replace(report, meta={**meta, **report.meta})
    return conclude(report, options.out, thresholds)


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    """Run `vinbot eval [agent] [options]` (or `python -m evals.run`); return the exit status."""
    parser = argparse.ArgumentParser(prog="vinbot eval", description="Run the agent evals.")
    add_arguments(parser)
    options = options_from(parser.parse_args(argv))
    return asyncio.run(run_eval(settings or get_settings(), options))


if __name__ == "__main__":
    sys.exit(main())
