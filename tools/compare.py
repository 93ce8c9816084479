"""Compare two to four vehicles side by side, with the differences that matter and a bar chart.

Each vehicle is one EPA configuration: the one its `configuration` narrows to, or else
the base configuration (conventional powertrain, two-wheel drive, the most common body,
the smallest engine, automatic). The result says which one was picked, why, and how
many others exist, so the answer can offer to compare another.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final, Literal, TypeGuard

from pydantic import BaseModel, ConfigDict, Field

from tools.domain.facts import FACTS_BY_KEY
from tools.domain.spec_query import DESCRIPTIVE
from tools.domain.vehicle import DecodedVehicle
from tools.errors import InvalidInput, UnsupportedComparison
from tools.specs import (
    FactValue,
    KnowledgeDeps,
    SpecNotFound,
    SpecRecord,
    configuration_order,
    decoded_configuration,
    get_specs,
)

MIN_VEHICLES, MAX_VEHICLES = 2, 4

# Rows of the table, in order: numbers first, then the descriptive columns.
TABLE_FACTS: Final = (
    "combined_mpg",
    "city_mpg",
    "highway_mpg",
    "combined_mpg_alt",
    "range_mi",
    "phev_electric_range_mi",
    "horsepower",
    "annual_fuel_cost_usd",
    "co2_gpm",
    "kwh_per_100mi",
    "passenger_volume_cuft",
    "luggage_volume_cuft",
    "fe_score",
    "engine",
    "transmission",
    "drive",
    "fuel",
    "vehicle_class",
)
# What the chart shows, at most four panels, in this order of preference.
CHART_FACTS: Final = (
    "combined_mpg",
    "horsepower",
    "annual_fuel_cost_usd",
    "co2_gpm",
    "range_mi",
    "passenger_volume_cuft",
    "luggage_volume_cuft",
)


class VehicleRef(BaseModel):
    """One vehicle to compare, as the user named it."""

    model_config = ConfigDict(frozen=True)

    year: int = Field(description="Model year, e.g. 2020.")
    make: str = Field(description="Make, e.g. 'Honda'.")
    model: str = Field(description="Model, e.g. 'Civic'.")
    configuration: str | None = Field(
        None, description="Optional narrowing: 'hybrid', 'AWD', '2.0L', 'manual', '4Dr'."
    )

    @classmethod
    def from_decoded(cls, vehicle: DecodedVehicle) -> VehicleRef:
        """Build from a decoded VIN: its year, make, model and the configuration it implies.

        Raises:
            InvalidInput: the decode has no model year, make or model.
        """
        if not vehicle.make or not vehicle.model or not vehicle.model_year:
            raise InvalidInput("The VIN did not decode to a model year, make and model.")
        return cls(
            year=vehicle.model_year,
            make=vehicle.make,
            model=vehicle.model,
            configuration=decoded_configuration(vehicle),
        )

    @property
    def label(self) -> str:
        """'2020 Honda Civic (hybrid)'."""
        head = f"{self.year} {self.make} {self.model}"
        return f"{head} ({self.configuration})" if self.configuration else head


class ComparedVehicle(BaseModel):
    """The configuration used for one vehicle, and why."""

    model_config = ConfigDict(frozen=True)

    ref: VehicleRef
    vehicle: str = Field(description="'2020 Honda Civic'.")
    record: SpecRecord = Field(description="The configuration compared.")
    configurations: int = Field(description="How many configurations matched the vehicle (and narrowing).")
    others: list[str] = Field(default_factory=list, description="Titles of other matching configurations.")
    choice: str = Field(description="Which configuration was used and why.")


class ComparisonRow(BaseModel):
    """One fact across the vehicles."""

    model_config = ConfigDict(frozen=True)

    key: str
    label: str
    unit: str
    values: list[FactValue | None] = Field(
        description="One per vehicle, in vehicle order; None when unknown."
    )
    better: Literal["higher", "lower", "none"]
    best: list[int] = Field(default_factory=list, description="Indexes of the vehicles with the best value.")


class Difference(BaseModel):
    """A difference that matters: who leads, and by how much over the runner-up."""

    model_config = ConfigDict(frozen=True)

    key: str
    label: str
    unit: str
    leader: str = Field(description="The leading vehicle's label.")
    leader_index: int
    delta: float = Field(description="Leader minus runner-up, in `unit` (absolute).")
    relative_pct: float | None = Field(None, description="Delta as a percentage of the runner-up's value.")


class Comparison(BaseModel):
    """A side-by-side comparison of 2-4 vehicles.

    `chart_png` is a PNG bar chart for the transports to send; serialise the rest for
    the model with `model_dump(mode="json", exclude={"chart_png"})`.
    """

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    vehicles: list[ComparedVehicle]
    rows: list[ComparisonRow]
    differences: list[Difference] = Field(description="Largest relative differences first.")
    note: str
    sources: list[dict[str, Any]]
    chart_facts: list[str] = Field(default_factory=list, description="The facts the chart shows.")
    chart_png: bytes | None = Field(None, description="PNG bar chart; None when there is nothing to chart.")


async def compare_vehicles(
    refs: Sequence[VehicleRef], *, deps: KnowledgeDeps, chart: bool = True
) -> Comparison:
    """Compare 2-4 vehicles on the facts the data has, one configuration each.

    Args:
        refs: The vehicles, in the order to show them.
        deps: The knowledge dependencies.
        chart: Draw the PNG bar chart (in a worker thread).

    Raises:
        UnsupportedComparison: fewer than two or more than four vehicles.
        InvalidInput: a blank make or model, or an impossible year.
        SpecNotFound: a vehicle the data does not have; the message says which one.
    """
    if not MIN_VEHICLES <= len(refs) <= MAX_VEHICLES:
        raise UnsupportedComparison(f"Compare two to four vehicles (got {len(refs)}).")
    compared: list[ComparedVehicle] = []
    for index, ref in enumerate(refs, start=1):
        unmatched: str | None = None
        try:
            try:
                specs = await get_specs(ref.year, ref.make, ref.model, ref.configuration, deps=deps)
            except SpecNotFound as e:
                if e.reason != "no_configuration":
                    raise
                # compare the base configuration rather than fail the whole comparison; say so
                unmatched = ref.configuration
                specs = await get_specs(ref.year, ref.make, ref.model, deps=deps)
        except SpecNotFound as e:
            raise SpecNotFound(
                f"Vehicle {index} ({ref.label[:120]}): {e.public_message}",
                reason=e.reason,
                suggestions=e.suggestions,
                years=e.years,
            ) from e
        record, reason = choose_configuration(specs.configurations)
        if unmatched:
            reason = f"No configuration matches '{unmatched}'. {reason}"
        others = [r.title for r in specs.configurations if r.id != record.id]
        compared.append(
            ComparedVehicle(
                ref=ref,
                vehicle=specs.vehicle,
                record=record,
                configurations=len(specs.configurations),
                others=others[:6],
                choice=reason,
            )
        )
    labels = _labels(compared)
    rows = table_rows([c.record for c in compared])
    differences = differences_that_matter(rows, labels)
    chart_facts = [
        k for k in CHART_FACTS if any(r.key == k and any(_num(v) for v in r.values) for r in rows)
    ][:4]
    png = await asyncio.to_thread(draw_chart, rows, labels, chart_facts) if chart and chart_facts else None
    sources: list[dict[str, Any]] = []
    for c in compared:
        sources.append(c.record.source())
        if c.record.horsepower and c.record.horsepower.source:
            sources.append(c.record.horsepower.source)
    return Comparison(
        vehicles=compared,
        rows=rows,
        differences=differences,
        note=_note(compared),
        sources=sources,
        chart_facts=chart_facts,
        chart_png=png,
    )


def choose_configuration(records: Sequence[SpecRecord]) -> tuple[SpecRecord, str]:
    """Pick the base configuration and say why.

    Conventional powertrain before hybrid, plug-in and electric; two-wheel drive
    first; then the body the data lists most often; the smallest engine; automatic.
    """
    if len(records) == 1:
        return records[0], "The only configuration that matches."
    bodies = Counter(r.model for r in records)

    def key(r: SpecRecord) -> tuple[Any, ...]:
        power, drive, displacement, manual, _, record_id = configuration_order(r)
        return (power, drive, -bodies[r.model], displacement, manual, record_id)

    chosen = min(records, key=key)
    reason = (
        f"Picked the base configuration of {len(records)} ({chosen.model}, {chosen.configuration or 'n/a'}): "
        "conventional powertrain and two-wheel drive where offered, the most common body, the smallest "
        "engine, automatic. Name a configuration (for example 'hybrid', 'AWD' or '2.0L') to compare another."
    )
    return chosen, reason


def table_rows(records: Sequence[SpecRecord]) -> list[ComparisonRow]:
    """Return one row per fact that at least one vehicle has, with the best value(s) marked."""
    rows = []
    for key in TABLE_FACTS:
        values = [r.value(key) for r in records]
        if all(v is None for v in values):
            continue
        fact = FACTS_BY_KEY.get(key)
        better = fact.better if fact else "none"
        unit = fact.unit if fact else ""
        label = fact.label if fact else DESCRIPTIVE[key]
        if key in ("combined_mpg", "city_mpg", "highway_mpg") and any(
            r.facts.get("atv_type") == "EV" for r in records
        ):
            unit = "mpg (MPGe for electric)"
        rows.append(
            ComparisonRow(
                key=key, label=label, unit=unit, values=values, better=better, best=_best(values, better)
            )
        )
    return rows


def differences_that_matter(rows: Sequence[ComparisonRow], labels: Sequence[str]) -> list[Difference]:
    """Return, for each fact marked as mattering, who leads and by how much; largest relative first."""
    out = []
    for row in rows:
        fact = FACTS_BY_KEY.get(row.key)
        if fact is None or not fact.compare or row.better == "none":
            continue
        known = [(i, float(v)) for i, v in enumerate(row.values) if _num(v)]
        if len(known) < 2:
            continue
        ordered = sorted(known, key=lambda iv: iv[1], reverse=row.better == "higher")
        (leader, best), (_, runner_up) = ordered[0], ordered[1]
        delta = abs(best - runner_up)
        if delta == 0:
            continue
        relative = round(100 * delta / abs(runner_up), 1) if runner_up else None
        out.append(
            Difference(
                key=row.key,
                label=row.label,
                unit=row.unit,
                leader=labels[leader],
                leader_index=leader,
                delta=round(delta, 2),
                relative_pct=relative,
            )
        )
    return sorted(out, key=lambda d: -(d.relative_pct or 0.0))


def draw_chart(rows: Sequence[ComparisonRow], labels: Sequence[str], facts: Sequence[str]) -> bytes:
    """Draw one bar panel per fact (at most four) and return the PNG bytes.

    Uses matplotlib's object API on the Agg canvas (no pyplot global state), so it is
    safe to call from worker threads.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    by_key = {r.key: r for r in rows}
    panels = [by_key[k] for k in facts if k in by_key]
    columns = 2 if len(panels) > 1 else 1
    lines = (len(panels) + 1) // 2
    figure = Figure(figsize=(5.0 * columns, 3.4 * lines), dpi=100)
    figure.subplots_adjust(left=0.08, right=0.97, top=0.9, bottom=0.12, hspace=0.45, wspace=0.25)
    FigureCanvasAgg(figure)
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    short = [_short_label(label) for label in labels]
    for index, row in enumerate(panels):
        axes = figure.add_subplot(lines, columns, index + 1)
        values = [float(v) if _num(v) else 0.0 for v in row.values]
        bars = axes.bar(range(len(values)), values, color=colours[: len(values)])
        for bar, value, raw in zip(bars, values, row.values, strict=True):
            text = f"{value:g}" if _num(raw) else "n/a"
            axes.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        hint = {"higher": " (higher is better)", "lower": " (lower is better)"}.get(row.better, "")
        axes.set_title(f"{row.label} [{row.unit}]{hint}" if row.unit else row.label + hint, fontsize=9)
        axes.set_xticks(range(len(values)), short, fontsize=7)
        axes.margins(y=0.15)
        axes.spines[["top", "right"]].set_visible(False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _best(values: Sequence[FactValue | None], better: str) -> list[int]:
    numbers = [(i, float(v)) for i, v in enumerate(values) if _num(v)]
    if better == "none" or len(numbers) < 2:
        return []
    target = max(v for _, v in numbers) if better == "higher" else min(v for _, v in numbers)
    return [i for i, v in numbers if v == target]


def _num(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _labels(compared: Sequence[ComparedVehicle]) -> list[str]:
    labels = [c.vehicle for c in compared]
    if len(set(labels)) < len(labels):
        labels = [f"{c.vehicle} ({c.record.model}, {c.record.configuration or ''})" for c in compared]
    return labels


def _short_label(label: str, width: int = 22) -> str:
    words, lines, line = label.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines[:3])


def _note(compared: Sequence[ComparedVehicle]) -> str:
    parts = []
    for c in compared:
        if c.configurations > 1:
            parts.append(f"{c.vehicle}: compared {c.record.title}, one of {c.configurations} configurations.")
    return " ".join(parts) or "Each vehicle has one matching configuration."
