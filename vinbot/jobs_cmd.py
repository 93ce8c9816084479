"""`vinbot jobs`: the terminal transport of bulk jobs (submit, status, results).

`submit` prints progress on standard error and the job id as the last line of
standard output, so `JOB=$(vinbot jobs submit fleet.csv | tail -n1)` works.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from tools import bulk
from tools.bootstrap import build_tool_deps, open_infrastructure
from tools.bulk import BulkDeps, JobStatus
from tools.errors import AppError
from tools.settings import Settings
from tools.storage.session import transaction
from tools.storage.user_repo import get_or_create_user
from tools.vin import Caller

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
POLL_S = 0.5


@dataclass(frozen=True)
class JobsOptions:
    """What the user asked `vinbot jobs` for."""

    action: Literal["submit", "status", "results", "cancel"]
    file: Path | None = None
    job_id: str | None = None
    wait: bool = False
    format: Literal["csv", "json"] = "json"


async def run_jobs(settings: Settings, options: JobsOptions, *, stdout: TextIO | None = None) -> int:
    """Run one `vinbot jobs` action; return the exit status."""
    out = stdout or sys.stdout
    err = Console(stderr=True)
    text: str | None = None
    if options.action == "submit":
        if options.file is None:
            err.print("[red]Name the file to submit.[/red]")
            return EXIT_USAGE
        try:
            text = options.file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            err.print(f"[red]Cannot read {options.file}: {getattr(e, 'strerror', None) or e}[/red]")
            return EXIT_USAGE
    async with open_infrastructure(settings) as infra:
        deps = build_tool_deps(settings, infra).bulk
        if deps is None:
            err.print("[red]Bulk jobs need Redis for the job queue.[/red]")
            return EXIT_FAILED
        async with transaction(infra.sessions) as session:
            user = await get_or_create_user(
                session, f"cli:{settings.cli_user}", username=settings.cli_user, tier=settings.cli_tier
            )
        caller = Caller(user_id=user.id, tier=settings.cli_tier, channel="cli")
        try:
            if options.action == "submit":
                assert text is not None  # noqa: S101 - read above
                return await _submit(text, options, deps=deps, caller=caller, out=out, err=err)
            job_id = options.job_id or ""
            if options.action == "status":
                status = await bulk.get_status(job_id, deps=deps, caller=caller)
                out.write(status.model_dump_json(indent=2) + "\n")
                return EXIT_OK
            if options.action == "cancel":
                status = await bulk.cancel(job_id, deps=deps, caller=caller)
                out.write(status.model_dump_json(indent=2) + "\n")
                return EXIT_OK
            await bulk.ensure_owned(job_id, deps=deps, caller=caller)
            async for piece in bulk.stream_results(job_id, options.format, deps=deps, caller=caller):
                out.write(piece.decode())
            return EXIT_OK
        except AppError as e:
            err.print(f"[red]{e.public_message}[/red]")
            return EXIT_FAILED


async def _submit(
    text: str, options: JobsOptions, *, deps: BulkDeps, caller: Caller, out: TextIO, err: Console
) -> int:
    assert options.file is not None  # noqa: S101 - checked by the caller
    status = await bulk.submit(bulk.parse_text(text), deps=deps, caller=caller, source_name=options.file.name)
    err.print(
        f"Job {status.id}: {status.lines} lines, {status.unique_vins} unique VINs, "
        f"{status.invalid} invalid, {status.duplicates} duplicates.",
        highlight=False,
    )
    for row in status.invalid_rows[:10]:
        err.print(f"  line {row.line} {row.input!r}: {row.error.get('message', '')}", highlight=False)
    if options.wait:
        status = await _wait(status, deps=deps, caller=caller, err=err)
        err.print(f"Job {status.id} {status.status}.", highlight=False)
    out.write(status.id + "\n")
    return EXIT_OK if status.status != "cancelled" else EXIT_FAILED


async def _wait(status: JobStatus, *, deps: BulkDeps, caller: Caller, err: Console) -> JobStatus:
    columns = (
        TextColumn("decoding"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} VINs"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("job", total=max(status.progress.total, 1))
        latest = status
        async for latest in bulk.watch(status.id, deps=deps, caller=caller, interval_s=POLL_S):
            done = latest.progress.done + latest.progress.failed
            bar.update(task, completed=done if latest.progress.total else 1)
    return latest
