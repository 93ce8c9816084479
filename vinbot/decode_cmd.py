"""`vinbot decode`: the terminal transport of the VIN capability."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from tools import vin as vin_capability
from tools.bootstrap import build_tool_deps, open_infrastructure
from tools.bulk import parse_text
from tools.errors import AppError, InvalidInput, NotAllowed
from tools.settings import Settings
from tools.storage.session import transaction
from tools.storage.user_repo import get_or_create_user
from tools.vin import Caller, VinDeps, VinResult

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
MIN_YEAR = 1980
MAX_SUGGESTIONS_SHOWN = 3


@dataclass(frozen=True)
class DecodeOptions:
    """What the user asked `vinbot decode` for."""

    vins: Sequence[str] = ()
    file: Path | None = None
    year: int | None = None
    provider: str | None = None
    as_json: bool = False
    interactive: bool = False


@dataclass
class _Inputs:
    lines: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    years: list[int | None] = field(default_factory=list)


async def run_decode(settings: Settings, options: DecodeOptions, *, stdin: TextIO | None = None) -> int:
    """Decode what `options` names and print it; return the exit status."""
    stdin = stdin or sys.stdin
    err = Console(stderr=True)
    if options.year is not None and not MIN_YEAR <= options.year <= datetime.now(UTC).year + 2:
        err.print(f"[red]--year must be between {MIN_YEAR} and {datetime.now(UTC).year + 2}.[/red]")
        return EXIT_USAGE
    try:
        inputs = _collect_inputs(options, stdin)
    except (OSError, UnicodeDecodeError) as e:
        err.print(f"[red]Cannot read {options.file}: {getattr(e, 'strerror', None) or e}[/red]")
        return EXIT_USAGE
    interactive = options.interactive or (not inputs.texts and options.file is None and stdin.isatty())
    if not inputs.texts and not interactive:
        err.print("[red]No VIN given.[/red] Pass VINs, --file PATH, or pipe one VIN per line.")
        return EXIT_USAGE
    settings = _with_provider_enabled(settings, options.provider)
    async with open_infrastructure(settings) as infra:
        deps = build_tool_deps(settings, infra)
        async with transaction(infra.sessions) as session:
            user = await get_or_create_user(
                session, f"cli:{settings.cli_user}", username=settings.cli_user, tier=settings.cli_tier
            )
        caller = Caller(user_id=user.id, tier=settings.cli_tier, channel="cli")
        if interactive:
            return await _interactive(deps.vin, caller, options, stdin)
        try:
            results = await vin_capability.decode_many(
                inputs.texts, deps=deps.vin, caller=caller, years=inputs.years, provider=options.provider
            )
        except (InvalidInput, NotAllowed) as e:
            err.print(f"[red]{e.public_message}[/red]")
            return EXIT_USAGE
        except AppError as e:
            err.print(f"[red]{e.public_message}[/red]")
            return EXIT_INVALID
    results = [r.model_copy(update={"line": line}) for r, line in zip(results, inputs.lines, strict=True)]
    if options.as_json:
        sys.stdout.write(
            json.dumps([result_to_json(r) for r in results], ensure_ascii=False, indent=2) + "\n"
        )
    else:
        print_results(Console(), results)
    return EXIT_OK if all(r.ok for r in results) else EXIT_INVALID


def result_to_json(result: VinResult) -> dict[str, Any]:
    """Return one input's result as a JSON object: the decode fields, or the error."""
    head: dict[str, Any] = {"line": result.line, "input": result.input}
    if result.vehicle is not None:
        return {**head, **result.vehicle.model_dump(mode="json"), "error": None}
    return {**head, "vin": None, "valid": False, "error": result.error}


def print_results(console: Console, results: Sequence[VinResult]) -> None:
    """Print a readable table, then the details of anything that needs attention."""
    table = Table(show_lines=False, header_style="bold")
    for column in ("#", "VIN", "Vehicle", "Body", "Engine", "Plant", "Status"):
        table.add_column(column, overflow="fold")
    notes: list[str] = []
    for r in results:
        v = r.vehicle
        if v is None:
            table.add_row(str(r.line), r.input, "", "", "", "", "[red]invalid[/red]")
            notes.append(_error_note(r))
            continue
        engine = " ".join(
            p
            for p in (
                f"{v.engine.displacement_l:g} L" if v.engine.displacement_l else None,
                f"{v.engine.cylinders} cyl" if v.engine.cylinders else None,
                f"{v.engine.hp:g} hp" if v.engine.hp else None,
                v.engine.fuel_type_primary,
            )
            if p
        )
        plant = ", ".join(p for p in (v.plant.city, v.plant.country) if p)
        status = "[green]ok[/green]" if v.valid else "[red]not decodable[/red]"
        if v.valid and not v.check_digit_valid:
            status = "[yellow]ok, check digit wrong[/yellow]"
        if v.source.fallback:
            status += f" [dim](offline fallback: {v.source.fallback_reason})[/dim]"
        table.add_row(str(r.line), v.vin, v.title, v.body_class or "", engine, plant, status)
        if v.errors or v.suggestions:
            issues = "; ".join(f"{e.code}: {e.message}" for e in v.errors)
            note = f"line {r.line} {v.vin}: {issues}"
            if v.suggestions:
                note += f" — did you mean {', '.join(v.suggestions[:MAX_SUGGESTIONS_SHOWN])}?"
            notes.append(note)
    console.print(table)
    for note in notes:
        console.print(note, highlight=False)
    sources = sorted(
        {r.vehicle.source.data_version or r.vehicle.source.provider for r in results if r.vehicle}
    )
    if sources:
        console.print(f"[dim]Source: {', '.join(sources)}[/dim]")


def _error_note(result: VinResult) -> str:
    error = result.error or {}
    note = f"line {result.line} {result.input!r}: {error.get('message', 'invalid VIN')}"
    suggestions = error.get("suggestions") or []
    if isinstance(suggestions, list) and suggestions:
        note += f" Did you mean {', '.join(str(s) for s in suggestions[:MAX_SUGGESTIONS_SHOWN])}?"
    return note


async def _interactive(deps: VinDeps, caller: Caller, options: DecodeOptions, stdin: TextIO) -> int:
    console = Console()
    console.print("Type a VIN (or several), or 'quit'.", highlight=False)
    while True:
        console.print("[bold]VIN>[/bold] ", end="")
        line = stdin.readline()
        if not line or line.strip().lower() in {"quit", "exit", "q"}:
            return EXIT_OK
        texts = line.replace(",", " ").split()
        if not texts:
            continue
        try:
            results = await vin_capability.decode_many(
                texts, deps=deps, caller=caller, year=options.year, provider=options.provider
            )
        except AppError as e:
            console.print(f"[red]{e.public_message}[/red]")
            continue
        print_results(console, results)


def _collect_inputs(options: DecodeOptions, stdin: TextIO) -> _Inputs:
    inputs = _Inputs()
    for index, text in enumerate(options.vins, start=1):
        inputs.lines.append(index)
        inputs.texts.append(text)
        inputs.years.append(options.year)
    if options.file is not None:
        with options.file.open(encoding="utf-8-sig") as handle:
            _read_lines(handle, options.year, inputs)
    elif not options.vins and not options.interactive and not stdin.isatty():
        _read_lines(stdin, options.year, inputs)
    return inputs


def _read_lines(handle: TextIO, year: int | None, inputs: _Inputs) -> None:
    """Read a VIN list as bulk jobs do (`tools.bulk.parse_text`), keeping each line's own number.

    `VIN` or `VIN,YEAR` lines (blank lines and `#` comments skipped), or a CSV with a
    `vin` column; a line's year hint wins over `--year` when it is four digits.
    """
    for row in parse_text(handle.read()):
        hint = str(row.year).strip() if row.year is not None else ""
        inputs.lines.append(row.line)
        inputs.texts.append(row.vin)
        inputs.years.append(int(hint) if hint.isdigit() and len(hint) == 4 else year)


def _with_provider_enabled(settings: Settings, provider: str | None) -> Settings:
    """Asking for a provider on the command line switches it on for this run."""
    if provider == "nhtsa" and not settings.nhtsa.enabled:
        return settings.model_copy(update={"nhtsa": settings.nhtsa.model_copy(update={"enabled": True})})
    if provider == "autodev" and not settings.autodev.enabled:
        return settings.model_copy(update={"autodev": settings.autodev.model_copy(update={"enabled": True})})
    return settings
