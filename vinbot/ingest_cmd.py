"""`vinbot ingest`: load vehicle knowledge (EPA, EPA test cars, NHTSA recalls) into PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from ingestion.catalog import DATASETS, ORDER, SourceError, fetch_all, shared_sources
from ingestion.pipeline import DEFAULT_BATCH_SIZE, IngestResult, ingest
from tools.bootstrap import open_infrastructure
from tools.providers.embeddings import build_embedder
from tools.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SOURCES = (*ORDER, "all")
SHOWN_BAD_LINES = 5


@dataclass(frozen=True)
class IngestOptions:
    """What the user asked `vinbot ingest` for."""

    dataset: str
    sources: Sequence[str] = ()
    data_dir: Path | None = None
    batch_size: int = DEFAULT_BATCH_SIZE


class _RateColumn(ProgressColumn):
    """Documents per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} docs/s" if speed else "- docs/s", style="progress.data.speed")


class _RichProgress:
    """A `ProgressSink` drawing one rich bar per dataset on standard error."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def start(self, dataset: str, total: int) -> None:
        self._tasks[dataset] = self._progress.add_task(f"{dataset}: embed + write", total=max(total, 0))

    def advance(self, dataset: str, done: int) -> None:
        self._progress.advance(self._tasks[dataset], done)


def _plan(options: IngestOptions) -> list[tuple[str, list[str]]]:
    """Return (dataset name, sources) pairs; raises SourceError for missing shared files."""
    names = list(ORDER) if options.dataset == "all" else [options.dataset]
    plan = []
    for name in names:
        spec = DATASETS[name]
        if options.sources:
            sources = list(options.sources)
        elif options.data_dir is not None:
            sources = shared_sources(spec, options.data_dir)
        else:
            sources = list(spec.default_urls)
        plan.append((name, sources))
    return plan


async def run_ingest(settings: Settings, options: IngestOptions, *, out: TextIO | None = None) -> int:
    """Ingest what `options` names, print a summary per dataset, and return the exit status."""
    out = out or sys.stdout
    err = Console(stderr=True)
    if options.dataset not in SOURCES:
        err.print(f"[red]Unknown source {options.dataset!r}[/red]; use one of {', '.join(SOURCES)}.")
        return EXIT_USAGE
    if options.dataset == "all" and options.sources:
        err.print("[red]--source names one dataset's files; with 'all' use --data-dir.[/red]")
        return EXIT_USAGE
    if options.batch_size < 1:
        err.print("[red]--batch-size must be at least 1.[/red]")
        return EXIT_USAGE
    try:
        plan = _plan(options)
    except SourceError as e:
        err.print(f"[red]{e}[/red]")
        return EXIT_USAGE

    results: list[IngestResult] = []
    async with open_infrastructure(settings) as infra:
        embedder = build_embedder(settings, infra.http)
        columns = (
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err, transient=False) as progress:
            sink = _RichProgress(progress)
            for i, (name, sources) in enumerate(plan):
                spec = DATASETS[name]
                try:
                    paths = await fetch_all(sources, settings.data_dir / "downloads", infra.http)
                except SourceError as e:
                    err.print(f"[red]{name}: {e}[/red]")
                    return EXIT_FAILED
                progress.console.print(f"{spec.dataset}: reading {', '.join(p.name for p in paths)}")
                result = await ingest(
                    spec.dataset,
                    spec.loader,
                    paths,
                    source=" ".join(sources),
                    engine=infra.engine,
                    embedder=embedder,
                    batch_size=options.batch_size,
                    progress=sink,
                    defer_index=i < len(plan) - 1,  # the last dataset builds the HNSW index once
                )
                results.append(result)
    _print_summary(results, out)
    return EXIT_OK


def _bad_lines(result: IngestResult) -> str:
    if not result.bad_rows:
        return "0"
    first = ", ".join(
        f"{b.where}:{b.line}" if b.where else str(b.line) for b in result.bad_rows[:SHOWN_BAD_LINES]
    )
    more = " ..." if len(result.bad_rows) > SHOWN_BAD_LINES else ""
    return f"{len(result.bad_rows)} (lines {first}{more})"


def _print_summary(results: Sequence[IngestResult], out: TextIO) -> None:
    console = Console(file=out, width=max(120, Console(file=out).width), soft_wrap=True)
    table = Table(title="vinbot ingest")
    for column in (
        "dataset",
        "read",
        "inserted",
        "updated",
        "unchanged",
        "bad rows",
        "embedded",
        "time",
        "rows/s",
    ):
        table.add_column(column, justify="left" if column in ("dataset", "bad rows") else "right")
    for r in results:
        table.add_row(
            r.dataset,
            f"{r.rows_read:,}",
            f"{r.inserted:,}",
            f"{r.updated:,}",
            f"{r.unchanged:,}",
            _bad_lines(r),
            f"{r.embedded:,}",
            f"{r.seconds:.1f}s",
            f"{r.rows_per_s:,.0f}",
        )
    console.print(table)
    for r in results:
        verdict = "0 changes" if r.changes == 0 else f"{r.changes:,} changes"
        console.print(
            f"{r.dataset}: {verdict} (run {r.run_id}, data date {r.data_date or 'unknown'}; "
            f"parse {r.parse_s:.1f}s, embed {r.embed_s:.1f}s, write {r.write_s:.1f}s, index {r.index_s:.1f}s)"
        )
