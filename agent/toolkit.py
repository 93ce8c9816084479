"""The tools the agent may call: `tools` capabilities bound as LangChain tools.

Docstrings and argument descriptions are prompts: the model reads them. They are
pinned by a snapshot test of the tool schemas (tests/unit/test_toolkit_schema.py).

Identity comes from the run context (`ToolRuntime.context`), never from arguments,
so no prompt can make a tool act for another user. Every identifier the model
passes (a VIN) must appear in something the user wrote in this conversation: small
models invent VINs, and an invented one is refused with an error the model can act on.
"""

from __future__ import annotations

import base64
import inspect
import itertools
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from langchain.tools import ToolRuntime
from langchain_core.messages import AnyMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from pydantic import BaseModel, Field

from agent.context import RunContext
from tools import bulk, compare, recalls, specs
from tools import vin as vin_capability
from tools.bootstrap import ToolDeps
from tools.compare import Comparison
from tools.domain.names import make_key, model_key
from tools.domain.vehicle import DecodedVehicle
from tools.domain.vin import find_vins, normalise
from tools.errors import AppError
from tools.recalls import RecallResult
from tools.specs import SearchResult, SpecResult
from tools.storage import vin_repo
from tools.storage.session import single_statements
from tools.vin import Caller

MAX_VINS_PER_TOOL_CALL = 20
DATASETS = {
    "offline": "NHTSA vPIC (offline copy)",
    "nhtsa": "NHTSA vPIC API",
    "autodev": "Auto.dev VIN API",
}

ToolOutput = tuple[str, dict[str, Any]]


class DecodeVinArgs(BaseModel):
    """Arguments of decode_vin."""

    vin: str = Field(description="The VIN exactly as the user wrote it (17 letters and digits).")
    model_year: int | None = Field(
        None, description="Only if the user stated the model year explicitly; otherwise leave empty."
    )


class DecodeVinsArgs(BaseModel):
    """Arguments of decode_vins."""

    vins: list[str] = Field(
        description="Every VIN the user wrote, exactly as written, 2 to 20 of them.",
        min_length=1,
        max_length=MAX_VINS_PER_TOOL_CALL,
    )


class StartBulkDecodeArgs(BaseModel):
    """Arguments of start_bulk_decode."""

    model_year: int | None = Field(
        None, description="Only if the user stated one model year for every VIN; otherwise leave empty."
    )


class JobStatusArgs(BaseModel):
    """Arguments of get_job_status."""

    job_id: str = Field(
        description="The job id exactly as start_bulk_decode returned it or the user wrote it."
    )


class VinHistoryArgs(BaseModel):
    """Arguments of get_vin_history."""

    limit: int = Field(10, ge=1, le=50, description="How many of the most recent look-ups to return.")


def vehicle_summary(vehicle: DecodedVehicle) -> dict[str, Any]:
    """Return the compact view of a decode that the model and the answer templates read."""
    engine = vehicle.engine.model_dump(exclude_none=True)
    data: dict[str, Any] = {
        "vin": vehicle.vin,
        "valid": vehicle.valid,
        "title": vehicle.title,
        "make": vehicle.make,
        "model": vehicle.model,
        "model_year": vehicle.model_year,
        "trim": vehicle.trim,
        "series": vehicle.series,
        "body_class": vehicle.body_class,
        "vehicle_type": vehicle.vehicle_type,
        "doors": vehicle.doors,
        "drive_type": vehicle.drive_type,
        "engine": engine or None,
        "transmission": vehicle.transmission.model_dump(exclude_none=True) or None,
        "plant": vehicle.plant.model_dump(exclude_none=True) or None,
        "gvwr": vehicle.gvwr,
        "check_digit_valid": vehicle.check_digit_valid,
        "warnings": [f"{e.code}: {e.message}" for e in vehicle.errors],
        "suggestions": list(vehicle.suggestions[:3]),
        "source": vehicle.source.model_dump(exclude_none=True, exclude_defaults=True)
        | {"provider": vehicle.source.provider},
    }
    return {k: v for k, v in data.items() if v not in (None, [], {})}


def vehicle_source(vehicle: DecodedVehicle) -> dict[str, Any]:
    """Return the citation of a decode (the `Answer.sources` entry)."""
    dataset = DATASETS[vehicle.source.provider]
    return {
        "provider": vehicle.source.provider,
        "dataset": dataset,
        "record_id": vehicle.vin,
        "data_date": vehicle.source.data_version,
        "title": vehicle.title,
    }


def user_wrote(messages: Sequence[AnyMessage], vin: str) -> bool:
    """Tell whether `vin` (normalised) occurs in what the user wrote in this conversation."""
    target = normalise(vin)
    if not target:
        return False
    for message in messages:
        if isinstance(message, HumanMessage):
            text = message.content if isinstance(message.content, str) else json.dumps(message.content)
            if target in normalise(text):
                return True
    return False


def job_summary(status: bulk.JobStatus) -> dict[str, Any]:
    """Return the compact view of a job that the model and the answer templates read."""
    data: dict[str, Any] = {
        "job_id": status.id,
        "status": status.status,
        "lines": status.lines,
        "invalid": status.invalid,
        "duplicates": status.duplicates,
        "progress": status.progress.model_dump(exclude_none=True),
        "invalid_lines": [{"line": r.line, "input": r.input} for r in status.invalid_rows[:10]],
    }
    if status.summary is not None:
        data["top_makes"] = dict(list(status.summary.by_make.items())[:5])
    return data


def _last_user_text(messages: Sequence[AnyMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message.content if isinstance(message.content, str) else json.dumps(message.content)
    return ""


def _caller(context: RunContext) -> Caller:
    return Caller(user_id=context.user_id, tier=context.tier, channel=context.channel)


def _error(code: str, message: str, **extra: Any) -> ToolOutput:
    payload = {"error": code, "message": message, **extra}
    return json.dumps(payload, ensure_ascii=False), {"ok": False, "error": code, "sources": []}


async def _run(call: Callable[[], Awaitable[ToolOutput]]) -> ToolOutput:
    """Time a tool call and turn our expected errors into JSON the model can act on."""
    started = time.perf_counter()
    try:
        content, artifact = await call()
    except AppError as e:
        content, artifact = json.dumps(e.to_dict(), ensure_ascii=False), {"ok": False, "error": e.code}
    artifact.setdefault("ok", True)
    artifact.setdefault("sources", [])
    artifact["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return content, artifact


def make_toolkit(deps: ToolDeps) -> list[BaseTool]:
    """Bind the capabilities as tools, closing over the process's dependencies."""

    @tool("decode_vin", args_schema=DecodeVinArgs, response_format="content_and_artifact")
    async def decode_vin(
        vin: str, runtime: ToolRuntime[RunContext], model_year: int | None = None
    ) -> ToolOutput:
        """Decode one VIN into make, model, model year, trim, body, engine, transmission and plant.

        Call this before answering anything about a specific vehicle the user identifies by VIN.
        Use only a VIN the user actually wrote. If the result has an error with suggestions,
        tell the user the VIN looks mistyped and offer the suggestions; do not decode them unasked.
        """

        async def call() -> ToolOutput:
            if not user_wrote(runtime.state["messages"], vin):
                return _error("vin_not_in_conversation", "The user did not write this VIN; ask them for it.")
            vehicle = await vin_capability.decode(
                vin, deps=deps.vin, caller=_caller(runtime.context), year=model_year
            )
            return json.dumps(vehicle_summary(vehicle), ensure_ascii=False), {
                "sources": [vehicle_source(vehicle)]
            }

        return await _run(call)

    @tool("decode_vins", args_schema=DecodeVinsArgs, response_format="content_and_artifact")
    async def decode_vins(vins: list[str], runtime: ToolRuntime[RunContext]) -> ToolOutput:
        """Decode several VINs at once (2 to 20); each gets its vehicle or the reason it is invalid.

        Use when the user's message contains more than one VIN. Pass every VIN exactly as written.
        """

        async def call() -> ToolOutput:
            invented = [v for v in vins if not user_wrote(runtime.state["messages"], v)]
            if invented:
                return _error(
                    "vin_not_in_conversation", "The user did not write some of these VINs.", vins=invented
                )
            results = await vin_capability.decode_many(vins, deps=deps.vin, caller=_caller(runtime.context))
            rows: list[dict[str, Any]] = []
            sources: list[dict[str, Any]] = []
            for r in results:
                if r.vehicle is not None:
                    rows.append(vehicle_summary(r.vehicle))
                    sources.append(vehicle_source(r.vehicle))
                else:
                    rows.append({"input": r.input, **(r.error or {})})
            return json.dumps({"results": rows}, ensure_ascii=False), {"sources": sources}

        return await _run(call)

    @tool("get_vin_history", args_schema=VinHistoryArgs, response_format="content_and_artifact")
    async def get_vin_history(runtime: ToolRuntime[RunContext], limit: int = 10) -> ToolOutput:
        """List the VINs this user looked up before, newest first (only this user's own look-ups).

        Use for questions like "what did I look up?" or "which cars did I check yesterday?".
        """

        async def call() -> ToolOutput:
            # One read in autocommit on the pooled connection itself: no BEGIN before it and no
            # ROLLBACK after it (two round trips), and no session around it.
            async with single_statements(deps.sessions) as db:
                entries = await vin_repo.list_history(db, runtime.context.user_id, limit=limit)
            rows = [
                {
                    "vin": e.vin,
                    "title": e.title,
                    "valid": e.valid,
                    "decoded_at": e.decoded_at.isoformat(timespec="seconds"),
                }
                for e in entries
            ]
            return json.dumps({"history": rows}, ensure_ascii=False), {}

        return await _run(call)

    @tool("start_bulk_decode", args_schema=StartBulkDecodeArgs, response_format="content_and_artifact")
    async def start_bulk_decode(
        runtime: ToolRuntime[RunContext], model_year: int | None = None
    ) -> ToolOutput:
        """Start a bulk job that decodes every VIN in the user's latest message (for more than 20 VINs).

        The VINs are taken from the message itself; do not list them. Returns the job id and
        progress: tell the user the job started, how many VINs it has and which lines were invalid.
        """

        async def call() -> ToolOutput:
            if deps.bulk is None:
                return _error("bulk_unavailable", "Bulk jobs are not available on this server.")
            vins = find_vins(_last_user_text(runtime.state["messages"]))
            if not vins:
                return _error("no_vins", "The user's latest message has no VINs; ask them for the list.")
            rows = bulk.rows_from_list(vins, [model_year] * len(vins) if model_year else None)
            status = await bulk.submit(rows, deps=deps.bulk, caller=_caller(runtime.context))
            return json.dumps(job_summary(status), ensure_ascii=False), {"job_id": status.id}

        return await _run(call)

    @tool("get_job_status", args_schema=JobStatusArgs, response_format="content_and_artifact")
    async def get_job_status(job_id: str, runtime: ToolRuntime[RunContext]) -> ToolOutput:
        """Report a bulk job's progress (done, failed, total, rate, time left) and, once done, its summary.

        Only the user's own jobs can be read.
        """

        async def call() -> ToolOutput:
            if deps.bulk is None:
                return _error("bulk_unavailable", "Bulk jobs are not available on this server.")
            status = await bulk.get_status(job_id.strip(), deps=deps.bulk, caller=_caller(runtime.context))
            return json.dumps(job_summary(status), ensure_ascii=False), {"job_id": status.id}

        return await _run(call)

    tools: list[BaseTool] = [decode_vin, decode_vins, get_vin_history, start_bulk_decode, get_job_status]
    if deps.knowledge is not None:
        tools += make_knowledge_tools(deps)
    for bound in tools:  # the model reads these: no source indentation in them
        bound.description = inspect.cleandoc(bound.description)
    return tools


# ---------------------------------------------------------------- vehicle knowledge

MAX_NAME_CHARS = 80
MAX_QUESTION_CHARS = 2000
MAX_CONFIGURATIONS_SHOWN = 12
MAX_CAMPAIGNS_SHOWN = 15
SEARCH_LIMIT = 5
# The facts a configuration shows the model; the rest stay in the database (and the sources).
SHOWN_FACTS = (
    "city_mpg",
    "highway_mpg",
    "combined_mpg",
    "combined_mpg_alt",
    "range_mi",
    "phev_electric_range_mi",
    "kwh_per_100mi",
    "co2_gpm",
    "annual_fuel_cost_usd",
    "passenger_volume_cuft",
    "luggage_volume_cuft",
    "atv_type",
)


class SearchSpecsArgs(BaseModel):
    """Arguments of search_specs."""

    question: str = Field(
        description="The user's question about vehicles, in their own words and language.",
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
    )
    year: int | None = Field(None, description="Only if the user named a model year.", ge=1900, le=2100)
    make: str | None = Field(None, description="Only if the user named a make: 'Toyota'.", max_length=80)
    model: str | None = Field(None, description="Only if the user named a model: 'RAV4'.", max_length=80)


class GetSpecsArgs(BaseModel):
    """Arguments of get_specs."""

    year: int = Field(
        description="The model year the user named, or the model_year of a VIN decoded in this conversation.",
        ge=1900,
        le=2100,
    )
    make: str = Field(
        description="The make as the user wrote it or the decode returned it: 'Toyota'.", max_length=80
    )
    model: str = Field(
        description="The model without the year or make: 'RAV4', 'CR-V', 'Model 3'.", max_length=80
    )
    configuration: str | None = Field(
        None,
        description="Only if the user narrowed it down: 'hybrid', 'AWD', '2.5L', 'manual'; else leave empty.",
        max_length=80,
    )


class VehicleArgsSchema(BaseModel):
    """One vehicle of compare_vehicles."""

    year: int = Field(description="The model year the user named for this vehicle.", ge=1900, le=2100)
    make: str = Field(description="The make: 'Honda'.", max_length=80)
    model: str = Field(description="The model: 'CR-V'.", max_length=80)
    configuration: str | None = Field(
        None, description="Only if the user narrowed it down: 'hybrid', 'AWD', '2.0L'.", max_length=80
    )


class CompareVehiclesArgs(BaseModel):
    """Arguments of compare_vehicles."""

    vehicles: list[VehicleArgsSchema] = Field(
        description="The 2 to 4 vehicles the user wants compared, in the order they named them.",
        min_length=2,
        max_length=4,
    )


class FindRecallsArgs(BaseModel):
    """Arguments of find_recalls."""

    year: int | None = Field(
        None, description="The model year the user named, or the decoded VIN's model_year.", ge=1900, le=2100
    )
    make: str | None = Field(
        None, description="The make: 'Toyota'. Leave empty when you pass a vin.", max_length=80
    )
    model: str | None = Field(
        None, description="The model: 'RAV4'. Leave empty when you pass a vin.", max_length=80
    )
    vin: str | None = Field(
        None,
        description="Instead of year, make and model: a VIN the user wrote; it is decoded first.",
        max_length=40,
    )


def _squash(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def conversation_text(messages: Sequence[AnyMessage]) -> str:
    """Return what grounds a vehicle: the user's messages and the results of VIN decodes."""
    parts: list[str] = []
    for message in messages:
        decode = isinstance(message, ToolMessage) and message.name in ("decode_vin", "decode_vins")
        if isinstance(message, HumanMessage) or decode:
            parts.append(message.content if isinstance(message.content, str) else json.dumps(message.content))
    return "\n".join(parts)


def vehicle_named(messages: Sequence[AnyMessage], year: int | None, make: str, model: str) -> bool:
    """Tell whether the conversation names this vehicle, by the user or a decode.

    The model must be named (by its letters and digits: `CRV` names the CR-V; any part of
    EPA's combined names: `Golf` names the `Golf/GTI`) and the year written. The make
    must be named too (by its canonical key: `chevy` names Chevrolet) unless a year and a
    model were ("Civic 2018").
    """
    text = conversation_text(messages)
    squashed = _squash(text)
    # EPA's combined names ("Golf/GTI") are named by any of their parts.
    parts = [_squash(model_key(part) or part) for part in model.split("/")]
    if not any(part and part in squashed for part in parts):
        return False
    if year is not None and str(year) not in text:
        return False
    # People name a model without its make ("Civic 2018"); the model and year ground it then.
    wanted = make_key(make)
    words = [w for w in re.split(r"[^0-9a-zA-Z\-]+", text) if w]
    known = {make_key(w) for w in words} | {make_key(f"{a} {b}") for a, b in itertools.pairwise(words)}
    return wanted in known or _squash(wanted) in squashed or year is not None


def _not_named(what: str) -> ToolOutput:
    return _error(
        "vehicle_not_in_conversation",
        f"The user did not name {what} in this conversation; ask which vehicle (year, make and model) "
        "they mean, or decode their VIN first.",
    )


def spec_summary(result: SpecResult) -> dict[str, Any]:
    """Return the compact view of a spec look-up that the model and the answer templates read."""
    rows: list[dict[str, Any]] = []
    for record in result.configurations[:MAX_CONFIGURATIONS_SHOWN]:
        facts = {k: record.facts[k] for k in SHOWN_FACTS if k in record.facts}
        hp = record.horsepower
        if hp is not None and hp.horsepower is not None:
            facts["horsepower"] = hp.horsepower
        row: dict[str, Any] = {
            "id": record.ref,
            "model": record.model,
            "configuration": record.configuration,
            "fuel": record.fuel,
            "facts": facts,
        }
        if hp is not None and hp.status == "ambiguous":
            row["horsepower_values"] = hp.values
        rows.append(row)
    data: dict[str, Any] = {
        "vehicle": result.vehicle,
        "year": result.year,
        "make": result.make,
        "model": result.model,
        "total": len(result.configurations),
        "configurations": rows,
        "note": result.note,
        "unavailable": [u.key for u in getattr(result, "unavailable", [])],
        "sources": _dataset_sources(result.sources),
    }
    return data


def _dataset_sources(sources: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return one entry per dataset (title and data date) for the model to cite."""
    seen: dict[str, dict[str, Any]] = {}
    for source in sources:
        dataset = str(source.get("dataset") or "")
        if dataset and dataset not in seen:
            seen[dataset] = {"dataset": dataset, "data_date": source.get("data_date")}
    return list(seen.values())


def _spec_record_ids(result: SpecResult) -> list[str]:
    ids = [r.ref for r in result.configurations]
    ids += [r.horsepower.record_id for r in result.configurations if r.horsepower and r.horsepower.record_id]
    return list(dict.fromkeys(ids))


def search_summary(result: SearchResult) -> dict[str, Any]:
    """Return the compact view of a search that the model and the answer templates read."""
    hits = []
    for hit in result.hits:
        record = hit.record
        facts = {k: record.facts[k] for k in (*SHOWN_FACTS, "campaign", "component") if k in record.facts}
        if record.kind == "recall" and "summary" in record.facts:
            facts["summary"] = str(record.facts["summary"])[:300]
        hits.append({"id": record.ref, "title": record.title, "kind": record.kind, "facts": facts})
    return {
        "question": result.question,
        "filters": result.filters.model_dump(exclude_none=True),
        "relaxed": result.relaxed,
        "hits": hits,
        "unavailable": [u.key for u in result.unavailable],
        "note": result.note,
        "sources": _dataset_sources(result.sources),
    }


def recall_summary(result: RecallResult) -> dict[str, Any]:
    """Return the compact view of a recall look-up that the model and the answer templates read."""
    campaigns = [
        {
            "campaign": c.campaign,
            "year_filed": c.campaign_year,
            "component": c.component,
            "summary": c.summary[:400],
        }
        for c in result.campaigns[:MAX_CAMPAIGNS_SHOWN]
    ]
    return {
        "vehicle": result.vehicle,
        "year": result.year,
        "make": result.make,
        "model": result.model,
        "count": result.count,
        "campaigns": campaigns,
        "coverage": result.coverage,
        "note": result.note,
        "sources": _dataset_sources(result.sources),
    }


def _recall_record_ids(result: RecallResult) -> list[str]:
    return [rid for c in result.campaigns for rid in c.record_ids]


def comparison_summary(result: Comparison) -> dict[str, Any]:
    """Return the compact view of a comparison that the model and the answer templates read."""
    names = [c.vehicle + (f" ({c.record.model})" if c.configurations > 1 else "") for c in result.vehicles]
    rows = [{"fact": r.key, "unit": r.unit, "values": r.values} for r in result.rows]
    differences = [
        {
            "fact": d.key,
            "better": names[d.leader_index] if 0 <= d.leader_index < len(names) else d.leader,
            "delta": d.delta,
        }
        for d in result.differences
    ]
    return {
        "vehicles": names,
        "short": [c.record.model for c in result.vehicles],
        "configurations": [
            {"vehicle": c.vehicle, "id": c.record.ref, "compared": c.record.title, "choice": c.choice}
            for c in result.vehicles
        ],
        "rows": rows,
        "differences": differences,
        "note": result.note,
        "chart": result.chart_png is not None,
        "sources": _dataset_sources(result.sources),
    }


def _comparison_record_ids(result: Comparison) -> list[str]:
    """Return the compared records, one per vehicle in turn, then their horsepower records."""
    ids = [c.record.ref for c in result.vehicles]
    ids += [
        c.record.horsepower.record_id
        for c in result.vehicles
        if c.record.horsepower and c.record.horsepower.record_id
    ]
    return list(dict.fromkeys(ids))


def chart_attachment(result: Comparison) -> dict[str, Any] | None:
    """Return the comparison chart as an `Answer.attachments` entry, if there is one."""
    if result.chart_png is None:
        return None
    title = " vs ".join(c.vehicle for c in result.vehicles)
    return {
        "kind": "chart",
        "media_type": "image/png",
        "name": "comparison.png",
        "title": title,
        "data_base64": base64.b64encode(result.chart_png).decode("ascii"),
    }


def _no_knowledge() -> ToolOutput:
    return _error("knowledge_unavailable", "Vehicle data is not available on this server.")


def make_knowledge_tools(deps: ToolDeps) -> list[BaseTool]:
    """Bind the spec, comparison and recall capabilities (only when the vehicle data is configured)."""

    @tool("search_specs", args_schema=SearchSpecsArgs, response_format="content_and_artifact")
    async def search_specs(
        question: str,
        runtime: ToolRuntime[RunContext],
        year: int | None = None,
        make: str | None = None,
        model: str | None = None,
    ) -> ToolOutput:
        """Search the vehicle data (EPA fuel economy, EPA test cars, NHTSA recalls) for a free-text question.

        Use when the user asks about vehicles without naming one exact year, make and model
        ("which 2020 SUVs get the best mpg?", "electric pickups"). Returns the best-matching
        records with their facts. Answer only from these facts and cite their sources; if the
        result lists `unavailable` fields, say the data has no such field and give no number.
        """

        async def call() -> ToolOutput:
            knowledge = deps.knowledge
            if knowledge is None:
                return _no_knowledge()
            if make and model and not vehicle_named(runtime.state["messages"], year, make, model):
                return _not_named("this vehicle")
            result = await specs.search_specs(
                question, deps=knowledge, limit=SEARCH_LIMIT, year=year, make=make, model=model
            )
            return json.dumps(search_summary(result), ensure_ascii=False, default=str), {
                "sources": result.sources,
                "record_ids": result.record_ids,
            }

        return await _run(call)

    @tool("get_specs", args_schema=GetSpecsArgs, response_format="content_and_artifact")
    async def get_specs(
        year: int,
        make: str,
        model: str,
        runtime: ToolRuntime[RunContext],
        configuration: str | None = None,
    ) -> ToolOutput:
        """Look up one vehicle's specs by model year, make and model: every configuration the data has.

        Returns each configuration (engine, transmission, drive, fuel) with its MPG (city,
        highway, combined), electric range, rated horsepower, CO2, annual fuel cost and cargo
        volume, and the sources. When several configurations match, list them all; do not pick
        one. For a vehicle the user identified by VIN, call decode_vin first and pass the decoded
        model_year, make and model. Towing capacity, payload, curb weight, dimensions, seating,
        torque, prices and crash ratings are in no dataset: say so, never estimate them.
        """

        async def call() -> ToolOutput:
            knowledge = deps.knowledge
            if knowledge is None:
                return _no_knowledge()
            if not vehicle_named(runtime.state["messages"], year, make, model):
                return _not_named(f"the {year} {make} {model}")
            result = await specs.get_specs(year, make, model, configuration, deps=knowledge)
            return json.dumps(spec_summary(result), ensure_ascii=False, default=str), {
                "sources": result.sources,
                "record_ids": _spec_record_ids(result),
            }

        return await _run(call)

    @tool("compare_vehicles", args_schema=CompareVehiclesArgs, response_format="content_and_artifact")
    async def compare_vehicles(
        vehicles: list[VehicleArgsSchema], runtime: ToolRuntime[RunContext]
    ) -> ToolOutput:
        """Compare 2 to 4 vehicles side by side: MPG, range, horsepower, fuel cost, CO2, volumes.

        Returns the table, the differences that matter (who leads and by how much), the
        configuration used for each vehicle and why, and the sources; a bar chart is sent to
        the user with your answer. Use it for "X vs Y", "compare X and Y", "X or Y?".
        """

        async def call() -> ToolOutput:
            knowledge = deps.knowledge
            if knowledge is None:
                return _no_knowledge()
            messages = runtime.state["messages"]
            for v in vehicles:
                if not vehicle_named(messages, v.year, v.make, v.model):
                    return _not_named(f"the {v.year} {v.make} {v.model}")
            refs = [
                compare.VehicleRef(year=v.year, make=v.make, model=v.model, configuration=v.configuration)
                for v in vehicles
            ]
            result = await compare.compare_vehicles(refs, deps=knowledge)
            artifact: dict[str, Any] = {
                "sources": result.sources,
                "record_ids": _comparison_record_ids(result),
            }
            if (chart := chart_attachment(result)) is not None:
                artifact["attachments"] = [chart]
            return json.dumps(comparison_summary(result), ensure_ascii=False, default=str), artifact

        return await _run(call)

    @tool("find_recalls", args_schema=FindRecallsArgs, response_format="content_and_artifact")
    async def find_recalls(
        runtime: ToolRuntime[RunContext],
        year: int | None = None,
        make: str | None = None,
        model: str | None = None,
        vin: str | None = None,
    ) -> ToolOutput:
        """List the NHTSA recall campaigns for a vehicle: campaign number, component and summary.

        Give the model year, make and model, or a VIN the user wrote (it is decoded first).
        The data covers campaigns filed from 2020 to February 2026: say so, and that older
        recalls are not included, especially when the list is empty.
        """

        async def call() -> ToolOutput:
            knowledge = deps.knowledge
            if knowledge is None:
                return _no_knowledge()
            messages = runtime.state["messages"]
            sources: list[dict[str, Any]] = []
            if vin:
                if not user_wrote(messages, vin):
                    return _error(
                        "vin_not_in_conversation", "The user did not write this VIN; ask them for it."
                    )
                vehicle = await vin_capability.decode(vin, deps=deps.vin, caller=_caller(runtime.context))
                sources.append(vehicle_source(vehicle))
                result = await recalls.find_recalls_for_vehicle(vehicle, deps=knowledge)
            else:
                if not make or not model:
                    return _error("invalid_input", "Give the make and model (and model year), or the VIN.")
                if not vehicle_named(messages, year, make, model):
                    return _not_named(f"the {year or ''} {make} {model}".replace("  ", " "))
                result = await recalls.find_recalls(year, make, model, deps=knowledge)
            return json.dumps(recall_summary(result), ensure_ascii=False, default=str), {
                "sources": [*sources, *result.sources],
                "record_ids": _recall_record_ids(result),
            }

        return await _run(call)

    tools: list[BaseTool] = [search_specs, get_specs, compare_vehicles, find_recalls]
    return tools
