"""The tools the agent may call: `tools` capabilities bound as LangChain tools.

Docstrings and argument descriptions are prompts: the model reads them. They are
pinned by a snapshot test of the tool schemas (tests/unit/test_toolkit_schema.py).

Identity comes from the run context (`ToolRuntime.context`), never from arguments,
so no prompt can make a tool act for another user. Every identifier the model
passes (a VIN) must appear in something the user wrote in this conversation: small
models invent VINs, and an invented one is refused with an error the model can act on.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain.tools import ToolRuntime
from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.tools import BaseTool, tool
from pydantic import BaseModel, Field

from agent.context import RunContext
from tools import bulk
from tools import vin as vin_capability
from tools.bootstrap import ToolDeps
from tools.domain.vehicle import DecodedVehicle
from tools.domain.vin import find_vins, normalise
from tools.errors import AppError
from tools.storage import vin_repo
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
            sessions = deps.sessions
            async with sessions() as session:
                entries = await vin_repo.list_history(session, runtime.context.user_id, limit=limit)
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
    for bound in tools:  # the model reads these: no source indentation in them
        bound.description = inspect.cleandoc(bound.description)
    return tools
