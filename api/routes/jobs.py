"""Bulk decode jobs over HTTP: start one, watch its progress, download its results, cancel it.

A job belongs to the caller that started it (for anonymous callers: their per-address
user); anyone else gets 404 `job_not_found`, as if it did not exist.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.deps import CallerDep, ServicesDep
from api.schemas import ErrorResponse
from tools import bulk
from tools.bulk import BulkDeps, JobStatus
from tools.errors import InvalidInput, NotAllowed

router = APIRouter(prefix="/api/v1", tags=["jobs"])

MAX_UPLOAD_BYTES = 8 * 1024 * 1024  # 100,000 VIN lines with year hints fit in under 3 MB
MAX_JSON_VINS = 100_000
JOB_ID = Path(description="The job id returned when the job was started.")

_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorResponse, "description": "not_allowed: bulk jobs are off on this server."},
    404: {"model": ErrorResponse, "description": "job_not_found: no such job, or not yours."},
    422: {"model": ErrorResponse, "description": "invalid_input: empty list, too many lines, bad file."},
    429: {"model": ErrorResponse, "description": "rate_limited: the daily bulk quota is spent."},
}


class JobRequest(BaseModel):
    """VINs to decode as a job, one per input line, with optional per-VIN model-year hints."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"vins": ["1HGCM82633A004352", "5YJ3E1EA7JF000316"]}]},
    )

    vins: list[str] = Field(min_length=1, max_length=MAX_JSON_VINS)
    years: list[int | None] | None = Field(None, description="One hint (or null) per VIN, if any.")


async def get_bulk_deps(services: ServicesDep) -> BulkDeps:
    """Return what the bulk capability needs (`async`: no thread-pool hop).

    Raises:
        NotAllowed: bulk jobs are off (the server has no Redis for the job queue).
    """
    if services.bulk is None:
        raise NotAllowed("Bulk jobs are not available on this server (they need Redis for the job queue).")
    return services.bulk


BulkDepsDep = Annotated[BulkDeps, Depends(get_bulk_deps)]

_UPLOAD_DOC = {
    "requestBody": {
        "content": {
            "application/json": {"schema": JobRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
        "required": True,
    }
}


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobStatus,
    responses=_ERRORS,
    summary="Start a bulk decode job",
    openapi_extra=_UPLOAD_DOC,
)
async def start_job(request: Request, response: Response, deps: BulkDepsDep, caller: CallerDep) -> JobStatus:
    """Start decoding a VIN list: JSON `{"vins": [...]}`, or a CSV or text file uploaded as `file`.

    Every line is validated now: invalid ones are listed in `invalid_rows` with their line
    numbers and do not stop the job. Poll `GET /api/v1/jobs/{id}` for progress.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        rows, source = await _rows_from_upload(request)
    else:
        try:
            body = JobRequest.model_validate_json(await request.body())
        except ValidationError as e:
            raise InvalidInput('Send JSON {"vins": [...]} or upload a file as `file`.') from e
        rows, source = bulk.rows_from_list(body.vins, body.years), None
    status = await bulk.submit(rows, deps=deps, caller=caller, source_name=source)
    response.headers["Location"] = f"/api/v1/jobs/{status.id}"
    return status


async def _rows_from_upload(request: Request) -> tuple[list[bulk.InputRow], str | None]:
    async with request.form(max_files=1, max_fields=5) as form:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("Upload the VIN list as a file field named `file`.")
        data = await upload.read(MAX_UPLOAD_BYTES + 1)
        name = upload.filename
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidInput(f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidInput("The file must be UTF-8 text (CSV or one VIN per line).") from e
    return bulk.parse_text(text), name


@router.get("/jobs/{job_id}", response_model=JobStatus, responses=_ERRORS, summary="Read a job's progress")
async def job_status(job_id: Annotated[str, JOB_ID], deps: BulkDepsDep, caller: CallerDep) -> JobStatus:
    """Return the job's status and progress (done, failed, total, rate, ETA); its summary once finished."""
    return await bulk.get_status(job_id, deps=deps, caller=caller)


@router.get(
    "/jobs/{job_id}/results",
    responses={**_ERRORS, 200: {"content": {"text/csv": {}, "application/json": {}}}},
    summary="Download a job's results",
)
async def job_results(
    job_id: Annotated[str, JOB_ID],
    deps: BulkDepsDep,
    caller: CallerDep,
    format: Annotated[Literal["csv", "json"], Query(description="csv (default) or json")] = "csv",
) -> StreamingResponse:
    """Stream one row per input line, in input order: the decode fields, or the line's error."""
    await bulk.ensure_owned(job_id, deps=deps, caller=caller)
    body = bulk.stream_results(job_id, format, deps=deps, caller=caller)
    media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
    disposition = f'attachment; filename="job-{job_id}.{format}"'
    return StreamingResponse(body, media_type=media, headers={"Content-Disposition": disposition})


@router.delete("/jobs/{job_id}", response_model=JobStatus, responses=_ERRORS, summary="Cancel a job")
async def cancel_job(job_id: Annotated[str, JOB_ID], deps: BulkDepsDep, caller: CallerDep) -> JobStatus:
    """Cancel the job: chunks not started yet are skipped; what was decoded stays downloadable."""
    return await bulk.cancel(job_id, deps=deps, caller=caller)
