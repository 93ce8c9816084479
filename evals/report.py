"""The result of an eval run: per-case scores, summaries, threshold checks, Markdown and JSON."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from evals.scorers import SCORERS, Case, Score, ToolCall

MAX_SHOWN_ANSWER = 600  # characters of an answer shown in the Markdown failures


# ---------------------------------------------------------------- thresholds


class LatencyLimits(BaseModel):
    """Maximum latency of the graded turn, in milliseconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    p50: float | None = Field(None, gt=0)
    p95: float | None = Field(None, gt=0)
    max: float | None = Field(None, gt=0)


class TokenLimits(BaseModel):
    """Maximum tokens spent, over every turn of every case."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_case_mean: float | None = Field(None, ge=0)
    total: int | None = Field(None, ge=0)


class CostLimits(BaseModel):
    """Maximum estimated cost of the run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    total_usd: float | None = Field(None, ge=0)


class Thresholds(BaseModel):
    """What a run must reach to pass (`evals/thresholds.toml`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_cases: int = Field(0, ge=0, description="Fewer cases than this fails the run (a truncated dataset).")
    pass_rate: float = Field(0.0, ge=0, le=1, description="Share of cases whose every scorer is 1.0.")
    scorers: dict[str, float] = Field(default_factory=dict, description="Minimum mean score per scorer.")
    tags: dict[str, float] = Field(default_factory=dict, description="Minimum pass rate per tag.")
    latency_ms: LatencyLimits = LatencyLimits()
    tokens: TokenLimits = TokenLimits()
    cost: CostLimits = CostLimits()
    specs: dict[str, Any] = Field(
        default_factory=dict, description="The spec suite's own table, read by evals/specs_run.py."
    )

    @field_validator("scorers")
    @classmethod
    def _known_scorers(cls, values: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(values) - set(SCORERS))
        if unknown:
            raise ValueError(f"unknown scorers {unknown}; known: {list(SCORERS)}")
        return _shares(values)

    @field_validator("tags")
    @classmethod
    def _tag_shares(cls, values: dict[str, float]) -> dict[str, float]:
        return _shares(values)


def _shares(values: dict[str, float]) -> dict[str, float]:
    for name, value in values.items():
        if not 0 <= value <= 1:
            raise ValueError(f"{name}: {value} is not a share between 0 and 1")
    return values


def load_thresholds(path: Path) -> Thresholds:
    """Read thresholds from a TOML file."""
    with path.open("rb") as f:
        return Thresholds.model_validate(tomllib.load(f))


@dataclass(frozen=True, slots=True)
class Check:
    """One threshold compared with the run's value."""

    name: str
    kind: Literal["min", "max"]
    limit: float
    value: float

    @property
    def ok(self) -> bool:
        """True when the value is on the right side of the limit."""
        return self.value >= self.limit if self.kind == "min" else self.value <= self.limit


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class CaseResult:
    """What the assistant did on one case, and how it scored.

    Latency is the graded (last) turn's, as the assistant measured it; tokens and
    cost add up every turn of the case.
    """

    case: Case
    answer: str
    language: str
    tool_calls: tuple[ToolCall, ...]
    planner: str
    latency_ms: float
    wall_ms: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    scores: tuple[Score, ...]
    error: str | None = None
    earlier_answers: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when the case ran and every scorer that applies gave 1.0."""
        return self.error is None and all(s.passed for s in self.scores)

    def score(self, name: str) -> Score | None:
        """Return the named scorer's verdict, if it applied."""
        return next((s for s in self.scores if s.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """Return the case's result as JSON-ready data."""
        return {
            "id": self.case.id,
            "tags": list(self.case.tags),
            "turns": list(self.case.turns),
            "expected": self.case.expected.model_dump(mode="json"),
            "passed": self.passed,
            "error": self.error,
            "answer": self.answer,
            "earlier_answers": list(self.earlier_answers),
            "language": self.language,
            "tool_calls": [{"name": c.name, "args": dict(c.args)} for c in self.tool_calls],
            "planner": self.planner,
            "latency_ms": self.latency_ms,
            "wall_ms": self.wall_ms,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "scores": {s.name: {"value": s.value, "reason": s.reason} for s in self.scores},
        }


@dataclass(frozen=True, slots=True)
class Tally:
    """Cases, passes and the mean score of one group (a scorer or a tag)."""

    cases: int
    passed: int
    mean: float

    @property
    def rate(self) -> float:
        """The share of cases that passed (1.0 for an empty group)."""
        return self.passed / self.cases if self.cases else 1.0


def percentile(values: Sequence[float], q: float) -> float:
    """Return the `q`-th percentile (0..100) by the nearest-rank method; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Report:
    """An eval run: every case's result and the run's metadata (model, prompt, dataset, git)."""

    results: tuple[CaseResult, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cases(self) -> int:
        """How many cases ran."""
        return len(self.results)

    @property
    def passed(self) -> int:
        """How many cases passed."""
        return sum(1 for r in self.results if r.passed)

    @property
    def errors(self) -> int:
        """How many cases raised instead of answering."""
        return sum(1 for r in self.results if r.error is not None)

    @property
    def pass_rate(self) -> float:
        """The share of cases that passed (0.0 when nothing ran)."""
        return self.passed / self.cases if self.cases else 0.0

    def failures(self) -> list[CaseResult]:
        """Return the cases that did not pass, in dataset order."""
        return [r for r in self.results if not r.passed]

    def by_scorer(self) -> dict[str, Tally]:
        """Tally each scorer over the cases it applies to (a case that raised scores 0 on each)."""
        tallies: dict[str, Tally] = {}
        for name in SCORERS:
            values = [s.value for r in self.results if (s := r.score(name)) is not None]
            if values:
                tallies[name] = Tally(len(values), sum(1 for v in values if v >= 1.0), _mean(values))
        return tallies

    def by_tag(self) -> dict[str, Tally]:
        """Tally the pass rate of each tag, tags sorted by name."""
        groups: dict[str, list[CaseResult]] = {}
        for r in self.results:
            for tag in r.case.tags:
                groups.setdefault(tag, []).append(r)
        return {tag: _tally(groups[tag]) for tag in sorted(groups)}

    def tag_scorer_means(self, tag: str) -> dict[str, float | None]:
        """Return each scorer's mean over the cases with `tag` (None where it never applied)."""
        results = [r for r in self.results if tag in r.case.tags]
        means: dict[str, float | None] = {}
        for name in SCORERS:
            values = [s.value for r in results if (s := r.score(name)) is not None]
            means[name] = _mean(values) if values else None
        return means

    def latencies(self) -> list[float]:
        """Return the graded turns' latencies of the cases that ran."""
        return [r.latency_ms for r in self.results if r.error is None]

    def latency_summary(self) -> dict[str, float]:
        """Return p50, p95 and max latency of the graded turns, and the whole run's wall time."""
        values = self.latencies()
        return {
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
            "max": max(values, default=0.0),
            "mean": _mean(values),
        }

    def token_summary(self) -> dict[str, float]:
        """Return the tokens and estimated cost over every turn of every case."""
        inputs = sum(r.input_tokens for r in self.results)
        outputs = sum(r.output_tokens for r in self.results)
        return {
            "input_total": inputs,
            "output_total": outputs,
            "total": inputs + outputs,
            "per_case_mean": (inputs + outputs) / self.cases if self.cases else 0.0,
            "cost_usd_total": round(sum(r.cost_usd for r in self.results), 6),
        }

    def check(self, thresholds: Thresholds) -> list[Check]:
        """Compare the run with every threshold that is set."""
        checks = [
            Check("cases", "min", thresholds.min_cases, self.cases),
            Check("pass rate", "min", thresholds.pass_rate, self.pass_rate),
        ]
        scorers = self.by_scorer()
        for name, limit in thresholds.scorers.items():
            tally = scorers.get(name)
            checks.append(Check(f"scorer {name}", "min", limit, tally.mean if tally else 1.0))
        tags = self.by_tag()
        for tag, limit in thresholds.tags.items():
            # A tag with no case is a typo or a dropped capability: fail loudly.
            checks.append(Check(f"tag {tag}", "min", limit, tags[tag].rate if tag in tags else 0.0))
        latency = self.latency_summary()
        for key in ("p50", "p95", "max"):
            limit_ms: float | None = getattr(thresholds.latency_ms, key)
            if limit_ms is not None:
                checks.append(Check(f"latency {key} ms", "max", limit_ms, latency[key]))
        tokens = self.token_summary()
        if thresholds.tokens.per_case_mean is not None:
            checks.append(
                Check("tokens per case", "max", thresholds.tokens.per_case_mean, tokens["per_case_mean"])
            )
        if thresholds.tokens.total is not None:
            checks.append(Check("tokens total", "max", thresholds.tokens.total, tokens["total"]))
        if thresholds.cost.total_usd is not None:
            checks.append(Check("cost usd", "max", thresholds.cost.total_usd, tokens["cost_usd_total"]))
        return checks

    # ------------------------------------------------------------ rendering

    def to_json(self, thresholds: Thresholds | None = None) -> dict[str, Any]:
        """Return the whole run as JSON-ready data."""
        checks = self.check(thresholds) if thresholds is not None else []
        return {
            "meta": dict(self.meta),
            "summary": {
                "cases": self.cases,
                "passed": self.passed,
                "errors": self.errors,
                "pass_rate": round(self.pass_rate, 4),
                "scorers": {k: _tally_json(v) for k, v in self.by_scorer().items()},
                "tags": {k: _tally_json(v) for k, v in self.by_tag().items()},
                "latency_ms": self.latency_summary(),
                "tokens": self.token_summary(),
            },
            "thresholds": thresholds.model_dump(mode="json") if thresholds is not None else None,
            "checks": [
                {"name": c.name, "kind": c.kind, "limit": c.limit, "value": c.value, "ok": c.ok}
                for c in checks
            ],
            "passed": all(c.ok for c in checks),
            "cases": [r.to_json() for r in self.results],
        }

    def to_markdown(self, thresholds: Thresholds | None = None, *, failures: bool = True) -> str:
        """Render the run: overall, per scorer, per tag, thresholds and (optionally) every failure."""
        out = [f"# Agent eval: {self.meta.get('dataset_name', 'dataset')}", ""]
        out += _meta_lines(self.meta)
        out += ["", "## Overall", "", "| cases | passed | pass rate | errors |", "|---:|---:|---:|---:|"]
        out.append(f"| {self.cases} | {self.passed} | {self.pass_rate:.1%} | {self.errors} |")

        out += ["", "## Scorers", "", "| scorer | cases | passed | mean |", "|---|---:|---:|---:|"]
        for name, tally in self.by_scorer().items():
            out.append(f"| {name} | {tally.cases} | {tally.passed} | {tally.mean:.3f} |")

        latency, tokens = self.latency_summary(), self.token_summary()
        out += [
            "",
            "## Latency and tokens",
            "",
            "| latency p50 ms | p95 ms | max ms | input tokens | output tokens | tokens per case | cost USD "
            "|",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {latency['p50']:.1f} | {latency['p95']:.1f} | {latency['max']:.1f} "
            f"| {tokens['input_total']:.0f} | {tokens['output_total']:.0f} "
            f"| {tokens['per_case_mean']:.1f} | {tokens['cost_usd_total']:.4f} |",
        ]

        shown = [name for name in SCORERS if name in self.by_scorer()]
        out += ["", "## Per tag", ""]
        out.append("| tag | cases | passed | pass rate | " + " | ".join(shown) + " |")
        out.append("|---|---:|---:|---:|" + "---:|" * len(shown))
        for tag, tally in self.by_tag().items():
            means = self.tag_scorer_means(tag)
            cells = " | ".join("–" if (m := means[name]) is None else f"{m:.2f}" for name in shown)
            out.append(f"| {_cell(tag)} | {tally.cases} | {tally.passed} | {tally.rate:.1%} | {cells} |")

        if thresholds is not None:
            out += ["", "## Thresholds", "", "| check | limit | value | ok |", "|---|---:|---:|:-:|"]
            for c in self.check(thresholds):
                sign = "≥" if c.kind == "min" else "≤"
                mark = "✅" if c.ok else "❌"
                out.append(f"| {c.name} | {sign} {_number(c.limit)} | {_number(c.value)} | {mark} |")

        failed = self.failures()
        out += ["", f"## Failures ({len(failed)})", ""]
        if not failed:
            out.append("None.")
        elif not failures:
            out.append(", ".join(f"`{r.case.id}`" for r in failed))
        else:
            for r in failed:
                out += _failure(r)
        return "\n".join(out) + "\n"


def _tally(results: Iterable[CaseResult]) -> Tally:
    rows = list(results)
    values = [min((s.value for s in r.scores), default=1.0) if r.error is None else 0.0 for r in rows]
    return Tally(len(rows), sum(1 for r in rows if r.passed), _mean(values))


def _tally_json(tally: Tally) -> dict[str, Any]:
    return {
        "cases": tally.cases,
        "passed": tally.passed,
        "rate": round(tally.rate, 4),
        "mean": round(tally.mean, 4),
    }


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _meta_lines(meta: Mapping[str, Any]) -> list[str]:
    labels = (
        ("run_id", "run"),
        ("started_at", "started"),
        ("git_sha", "git"),
        ("planners", "planner"),
        ("model", "model"),
        ("prompt", "prompt"),
        ("dataset", "dataset"),
        ("dataset_sha256", "dataset sha256"),
        ("concurrency", "concurrency"),
        ("wall_s", "wall time (s)"),
    )
    lines = []
    for key, label in labels:
        if key in meta and meta[key] not in (None, ""):
            value = meta[key]
            shown = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
            lines.append(f"- {label}: `{shown}`")
    return lines


def _failure(r: CaseResult) -> list[str]:
    expected = r.case.expected
    lines = [f"### `{r.case.id}` ({', '.join(r.case.tags)})", ""]
    for index, turn in enumerate(r.case.turns, start=1):
        marker = " (graded)" if index == len(r.case.turns) else ""
        lines.append(f"- turn {index}{marker}: `{_inline(turn)}`")
    calls = ", ".join(
        f"{c.name}({', '.join(f'{k}={v!r}' for k, v in c.args.items())})" for c in expected.trajectory
    )
    lines.append(f"- expected: {expected.match} [{calls}]")
    if expected.facts:
        lines.append(f"  facts {list(expected.facts)}")
    if expected.absent:
        lines.append(f"  absent {list(expected.absent)}")
    if expected.refusal is not None or expected.language is not None:
        lines.append(f"  refusal={expected.refusal} language={expected.language}")
    got = ", ".join(f"{c.name}({', '.join(f'{k}={v!r}' for k, v in c.args.items())})" for c in r.tool_calls)
    lines.append(f"- got: [{got}] language={r.language} planner={r.planner} latency={r.latency_ms:.0f} ms")
    if r.error is not None:
        lines.append(f"- error: `{_inline(r.error)}`")
    for s in r.scores:
        if not s.passed:
            lines.append(f"- **{s.name}** {s.value:.2f}: {s.reason}")
    answer = r.answer if len(r.answer) <= MAX_SHOWN_ANSWER else r.answer[:MAX_SHOWN_ANSWER] + "…"
    lines += ["", "```text", answer.replace("```", "ʼʼʼ"), "```", ""]
    return lines


def _inline(text: str) -> str:
    return text.replace("`", "ʼ").replace("\n", " ⏎ ")
