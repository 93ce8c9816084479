"""Run the spec suite: spec, comparison and recall questions answered from the ingested data.

    vinbot eval specs [--dataset PATH] [--out DIR] [--thresholds PATH] [--concurrency N]

The dataset (`datasets/specs_v1.jsonl`) is built from the data files by
`evals/build_specs_dataset.py`; the run asks every case of it through the real
assistant (the offline planner unless an LLM is configured) on the configured or
embedded database, which must hold the ingested EPA, EPA test-car and NHTSA recall
data (`vinbot ingest all`). It reports recall@5 and MRR of retrieval (over the
ranked record ids the knowledge tools return), fact accuracy of the answers (the
expected numbers in the answer text, read in the answer's locale), refusals (no
invented number where the data has no answer) and tool choice, overall, by language
and by kind; writes `<out>/<UTC date-time>-<git sha>-specs.{md,json}`; and exits 1
below the `[specs]` thresholds of `thresholds.toml`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.assistant import Asker, Assistant
from agent.bootstrap import build_assistant
from evals.report import Check, percentile
from evals.run import (
    DEFAULT_CONCURRENCY,
    DEFAULT_THRESHOLDS,
    EVALS_DIR,
    EXIT_USAGE,
    DatasetError,
    add_suite_arguments,
    conclude,
    load_jsonl,
    new_run_id,
    run_all,
    run_metadata,
    unscored,
)
from evals.scorers import (
    MRR,
    RECALL_AT_K,
    SPEC_FACTS,
    SPEC_LANGUAGE,
    SPEC_REFUSAL,
    SPEC_SCORERS,
    SPEC_TOOL,
    RankedCall,
    Score,
    SpecCase,
    applicable_spec_scorers,
    score_spec_case,
)
from tools.bootstrap import build_tool_deps, open_infrastructure
from tools.settings import Settings, get_settings

logger = logging.getLogger(__name__)

DEFAULT_DATASET = EVALS_DIR / "datasets" / "specs_v1.jsonl"
CHANNEL = "eval"
MAX_SHOWN_ANSWER = 500
# The tools whose calls carry ranked record ids.
KNOWLEDGE_TOOLS = frozenset({"search_specs", "get_specs", "compare_vehicles", "find_recalls"})


class SpecThresholds(BaseModel):
    """The `[specs]` table of `thresholds.toml`: what a spec-suite run must reach."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_cases: int = Field(0, ge=0)
    recall_at_5: float = Field(0.0, ge=0, le=1, description="Mean recall@5 of retrieval.")
    mrr: float = Field(0.0, ge=0, le=1, description="Mean reciprocal rank of retrieval.")
    facts: float = Field(0.0, ge=0, le=1, description="Mean fact accuracy of the answers.")
    refusals: float = Field(
        0.0, ge=0, le=1, description="Share of refusal cases refused with no invented number."
    )
    tool: float = Field(0.0, ge=0, le=1, description="Mean tool-choice score.")
    language: float = Field(0.0, ge=0, le=1, description="Share of answers in the question's language.")
    pass_rate: float = Field(0.0, ge=0, le=1, description="Share of cases whose every scorer is 1.0.")
    latency_p95_ms: float | None = Field(None, gt=0)


def load_spec_thresholds(path: Path) -> SpecThresholds:
    """Read the `[specs]` table of a thresholds file (missing: no floor)."""
    with path.open("rb") as f:
        data = tomllib.load(f)
    return SpecThresholds.model_validate(data.get("specs", {}))


def load_spec_cases(path: Path) -> list[SpecCase]:
    """Read and validate a spec dataset (see `evals.run.load_jsonl`)."""
    return load_jsonl(path, SpecCase.model_validate_json)


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class SpecCaseResult:
    """What the assistant did on one spec case, and how it scored."""

    case: SpecCase
    answer: str
    language: str
    calls: tuple[RankedCall, ...]
    planner: str
    latency_ms: float
    scores: tuple[Score, ...]
    attachments: int = 0
    sources: int = 0
    error: str | None = None

    @property
    def passed(self) -> bool:
        """True when the case ran and every scorer that applies gave 1.0 (MRR is a rank, not a verdict).

        A comparison's second vehicle is ranked second by design, so MRR is reported, never failed.
        """
        return self.error is None and all(s.passed for s in self.scores if s.name != MRR)

    def score(self, name: str) -> Score | None:
        """Return the named scorer's verdict, if it applied."""
        return next((s for s in self.scores if s.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """Return the case result as JSON-ready data."""
        return {
            "id": self.case.id,
            "kind": self.case.kind,
            "language": self.case.language,
            "turns": list(self.case.turns),
            "passed": self.passed,
            "answer": self.answer,
            "answer_language": self.language,
            "planner": self.planner,
            "latency_ms": self.latency_ms,
            "tool_calls": [
                {"name": c.name, "args": dict(c.args), "record_ids": list(c.record_ids[:10])}
                for c in self.calls
            ],
            "attachments": self.attachments,
            "sources": self.sources,
            "scores": [{"name": s.name, "value": s.value, "reason": s.reason} for s in self.scores],
            "error": self.error,
        }


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class SpecReport:
    """A whole spec-suite run."""

    results: tuple[SpecCaseResult, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def metrics(self, results: Iterable[SpecCaseResult] | None = None) -> dict[str, float | None]:
        """Return cases, pass rate and the mean of every scorer (None when no case applies)."""
        chosen = list(self.results if results is None else results)
        values: dict[str, list[float]] = {name: [] for name in SPEC_SCORERS}
        for r in chosen:
            for name in applicable_spec_scorers(r.case.expected):
                s = r.score(name)
                values[name].append(s.value if s is not None and r.error is None else 0.0)
        return {
            "cases": float(len(chosen)),
            "pass_rate": _mean([1.0 if r.passed else 0.0 for r in chosen]),
            **{name: _mean(v) for name, v in values.items()},
        }

    def by(self, attribute: str) -> dict[str, dict[str, float | None]]:
        """Return the metrics per language or per kind."""
        groups: dict[str, list[SpecCaseResult]] = {}
        for r in self.results:
            groups.setdefault(str(getattr(r.case, attribute)), []).append(r)
        return {key: self.metrics(group) for key, group in sorted(groups.items())}

    def latency(self) -> dict[str, float]:
        """Return p50, p95 and max latency of the graded turns."""
        values = [r.latency_ms for r in self.results if r.error is None]
        if not values:
            return {"p50": 0.0, "p95": 0.0, "max": 0.0}
        return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values)}

    def check(self, thresholds: SpecThresholds) -> list[Check]:
        """Compare the run with the thresholds."""
        m = self.metrics()

        def value(name: str) -> float:
            v = m.get(name)
            return 1.0 if v is None else v

        checks = [
            Check("cases", "min", thresholds.min_cases, len(self.results)),
            Check("pass rate", "min", thresholds.pass_rate, value("pass_rate")),
            Check("recall@5", "min", thresholds.recall_at_5, value(RECALL_AT_K)),
            Check("mrr", "min", thresholds.mrr, value(MRR)),
            Check("facts", "min", thresholds.facts, value(SPEC_FACTS)),
            Check("refusals", "min", thresholds.refusals, value(SPEC_REFUSAL)),
            Check("tool", "min", thresholds.tool, value(SPEC_TOOL)),
            Check("language", "min", thresholds.language, value(SPEC_LANGUAGE)),
        ]
        if thresholds.latency_p95_ms is not None:
            checks.append(Check("latency p95 ms", "max", thresholds.latency_p95_ms, self.latency()["p95"]))
        return checks

    def to_json(self, thresholds: SpecThresholds | None = None) -> dict[str, Any]:
        """Return the whole run as JSON-ready data."""
        return {
            "meta": self.meta,
            "summary": self.metrics(),
            "by_language": self.by("language"),
            "by_kind": self.by("kind"),
            "latency_ms": self.latency(),
            "checks": [
                {"name": c.name, "kind": c.kind, "limit": c.limit, "value": c.value, "ok": c.ok}
                for c in (self.check(thresholds) if thresholds else [])
            ],
            "cases": [r.to_json() for r in self.results],
        }

    def to_markdown(self, thresholds: SpecThresholds | None = None, *, failures: bool = True) -> str:
        """Render the run: summary, per-language and per-kind tables, checks and failures."""
        columns = ("cases", "pass_rate", *SPEC_SCORERS)
        lines = ["# Spec suite", ""]
        for key, value in self.meta.items():
            if key in ("dataset_name", "git_sha", "planners", "wall_s", "started_at"):
                lines.append(f"- {key}: {value}")
        lines += ["", "| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        rows = [("**all**", self.metrics())]
        rows += [(f"lang {k}", v) for k, v in self.by("language").items()]
        rows += [(f"kind {k}", v) for k, v in self.by("kind").items()]
        for label, metrics in rows:
            cells = [_cell(metrics.get(c), integer=c == "cases") for c in columns]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        latency = self.latency()
        lines += [
            "",
            f"Latency of the graded turn: p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms.",
        ]
        if thresholds is not None:
            lines += ["", "| check | value | limit | ok |", "|---|---|---|---|"]
            for c in self.check(thresholds):
                mark = "yes" if c.ok else "**no**"
                lines.append(f"| {c.name} | {c.value:.4g} | {c.kind} {c.limit:g} | {mark} |")
        failed = [r for r in self.results if not r.passed]
        if failures and failed:
            lines += ["", f"## Failures ({len(failed)})", ""]
            for r in failed:
                lines.append(f"### {r.case.id}")
                lines.append(f"- asked: {' / '.join(t[:200] for t in r.case.turns)}")
                for s in r.scores:
                    if not s.passed:
                        lines.append(f"- {s.name} {s.value:g}: {s.reason}")
                if r.error:
                    lines.append(f"- error: {r.error}")
                shown = r.answer if len(r.answer) <= MAX_SHOWN_ANSWER else r.answer[:MAX_SHOWN_ANSWER] + "…"
                lines.append("- answer: " + " ".join(shown.split()))
                lines.append("")
        return "\n".join(lines).rstrip() + "\n"


def _cell(value: float | None, *, integer: bool = False) -> str:
    if value is None:
        return "–"
    return str(int(value)) if integer else f"{value:.3f}"


# ---------------------------------------------------------------- running


async def run_spec_case(assistant: Assistant, case: SpecCase, *, run_id: str) -> SpecCaseResult:
    """Ask every turn of `case` in one new conversation and score the last answer."""
    external_id = f"eval:{run_id}:{case.id}"
    asker = Asker(external_id=external_id, channel=CHANNEL)
    try:
        answers = [
            await assistant.ask(turn, conversation_id=external_id, asker=asker, language=None)
            for turn in case.turns
        ]
    except Exception as e:  # the harness is each case's top-level handler: record the failure, go on
        logger.exception("spec eval case %s raised", case.id)
        return SpecCaseResult(
            case=case,
            answer="",
            language="",
            calls=(),
            planner="",
            latency_ms=0.0,
            scores=unscored(applicable_spec_scorers(case.expected), e),
            error=f"{type(e).__name__}: {e}",
        )
    last = answers[-1]
    calls = tuple(RankedCall(c.name, dict(c.args), tuple(c.record_ids)) for c in last.tool_calls)
    return SpecCaseResult(
        case=case,
        answer=last.answer,
        language=last.language,
        calls=calls,
        planner=last.planner,
        latency_ms=last.latency_ms,
        scores=score_spec_case(case, answer=last.answer, calls=calls, language=last.language),
        attachments=len(last.attachments),
        sources=len(last.sources),
    )


async def run_spec_cases(
    assistant: Assistant,
    cases: Sequence[SpecCase],
    *,
    run_id: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> SpecReport:
    """Run `cases` against `assistant`, at most `concurrency` at a time; results keep dataset order."""
    run_id = run_id or new_run_id()
    results, meta = await run_all(
        cases,
        lambda case: run_spec_case(assistant, case, run_id=run_id),
        run_id=run_id,
        concurrency=concurrency,
    )
    return SpecReport(results=results, meta=meta)


async def run_specs_eval(settings: Settings, options: Mapping[str, Any]) -> int:
    """Run the spec suite and write the report; return 0, 1 below thresholds, 2 on bad input."""
    dataset: Path = options["dataset"]
    try:
        cases = load_spec_cases(dataset)
        thresholds = load_spec_thresholds(options["thresholds"])
    except (DatasetError, OSError, ValidationError, ValueError) as e:
        print(f"vinbot eval specs: {e}", file=sys.stderr)  # noqa: T201 - a command-line entry point
        return EXIT_USAGE
    concurrency: int = options["concurrency"]
    if concurrency < 1:
        print("vinbot eval specs: --concurrency must be at least 1", file=sys.stderr)  # noqa: T201
        return EXIT_USAGE
    meta = run_metadata(settings, dataset)
    async with open_infrastructure(settings) as infra:
        assistant = build_assistant(settings, build_tool_deps(settings, infra))
        report = await run_spec_cases(assistant, cases, concurrency=concurrency)
    report = replace(report, meta={**meta, **report.meta})
    return conclude(report, options["out"], thresholds, suffix="-specs")


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    """Run `vinbot eval specs [options]`; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="vinbot eval specs", description="Run the spec, comparison and recall evals."
    )
    add_suite_arguments(
        parser,
        dataset=DEFAULT_DATASET,
        thresholds=DEFAULT_THRESHOLDS,
        thresholds_help="the thresholds (TOML, [specs])",
    )
    args = parser.parse_args(argv)
    return asyncio.run(run_specs_eval(settings or get_settings(), vars(args)))


if __name__ == "__main__":
    sys.exit(main())
