"""Bulk jobs end to end: the API over HTTP and `vinbot jobs` as a process, with a real Celery worker.

The API is the real app served by uvicorn on loopback; the worker is a real
`celery -A tools.worker worker` process (its own process group, stopped after each
test that starts one); both share the test session's PostgreSQL and Redis. HTTP
callers are anonymous and told apart by address, so a second client bound to
127.0.0.2 is another user.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import celery_worker
import httpx
import pytest
import redis as redis_sync
import ultravin
from celery_worker import QUEUE, WorkerProcess
from standins import serving

from api.app import create_app
from tools.bulk import CSV_COLUMNS
from tools.settings import BulkSettings, LimitSettings, Settings

pytestmark = pytest.mark.e2e

CHUNK_SIZE = 100
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
ACCORD = "1HGCM82633A004352"


def generated(n: int, seed: int) -> list[str]:
    from datetime import datetime

    return list(ultravin.generate(n, seed=seed, now=datetime(2026, 6, 1)))  # noqa: DTZ001 - ultravin's clock


@pytest.fixture
def broker(redis_url: str) -> Iterator[None]:
    """An empty job queue before and after the test (no chunk of another test is left in it)."""
    client = redis_sync.Redis(unix_socket_path=redis_url.removeprefix("unix://"))
    client.delete(QUEUE, "unacked", "unacked_index")
    yield
    client.delete(QUEUE, "unacked", "unacked_index")
    client.close()


@pytest.fixture
def start_worker(
    pg_url: str, redis_url: str, broker: None, tmp_path: Path
) -> Iterator[Callable[[], WorkerProcess]]:
    """Return a function that starts a real worker (one per test at most); stop it at the end."""
    env = celery_worker.worker_env(
        pg_url, redis_url, VINBOT_BULK__CHUNK_SIZE=str(CHUNK_SIZE), VINBOT_BULK__VISIBILITY_TIMEOUT_S="5"
    )
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        worker = WorkerProcess(env, tmp_path / "worker.log", concurrency=1)
        started.append(worker)
        worker.start()
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="module")
async def base_url(
    pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    settings = Settings(
        _env_file=None,
        env="test",
        database_url=pg_url,
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("jobs-api-data"),
        openai_api_key=None,
        openai_base_url=None,
        limits=LimitSettings(anonymous_requests_per_minute=10_000),
        bulk=BulkSettings(chunk_size=CHUNK_SIZE),
    )
    async with serving(create_app(settings), lifespan="on") as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        yield http


@pytest.fixture
async def stranger(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another anonymous user: the same server, called from another loopback address."""
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=base_url, timeout=60, transport=transport) as http:
        yield http


async def finished(client: httpx.AsyncClient, job_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        response = await client.get(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        status: dict[str, Any] = response.json()
        if status["status"] in ("done", "cancelled"):
            return status
        assert time.monotonic() < deadline, f"job {job_id} did not finish: {status['progress']}"
        await asyncio.sleep(0.1)


async def test_a_json_list_is_decoded_and_its_results_download_as_csv_and_json_when_posted(
    client: httpx.AsyncClient, start_worker: Callable[[], WorkerProcess]
) -> None:
    vins = generated(250, seed=31)
    lines = [*vins, "not a vin", ACCORD.lower(), ACCORD]
    years = [None] * len(vins) + [None, 2003, 2003]
    start_worker()

    response = await client.post("/api/v1/jobs", json={"vins": lines, "years": years})

    assert response.status_code == 202, response.text
    job = response.json()
    assert JOB_ID.match(job["id"])
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert (job["lines"], job["invalid"], job["duplicates"]) == (253, 1, 1)
    assert [row["line"] for row in job["invalid_rows"]] == [251]
    status = await finished(client, job["id"])
    assert status["status"] == "done"
    assert status["progress"]["done"] + status["progress"]["failed"] == status["unique_vins"] == 251
    assert status["summary"]["by_make"]

    as_csv = await client.get(f"/api/v1/jobs/{job['id']}/results", params={"format": "csv"})
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert list(table[0]) == CSV_COLUMNS
    assert [int(r["line"]) for r in table] == list(range(1, 254))
    assert [r["input"] for r in table] == lines
    assert table[250]["error"] == "invalid_vin"
    assert table[251]["make"] == table[252]["make"] == "HONDA"
    assert table[251]["model_year"] == "2003"

    as_json = await client.get(f"/api/v1/jobs/{job['id']}/results", params={"format": "json"})
    assert as_json.status_code == 200
    rows = as_json.json()
    assert [r["line"] for r in rows] == list(range(1, 254))
    assert rows[0]["vin"] == vins[0]
    assert rows[0]["error"] is None
    assert {"make", "model_year", "engine", "plant", "source"} <= set(rows[0])
    assert rows[250]["error"]["error"] == "invalid_vin"
    assert rows[252]["engine"]["cylinders"] == 6


async def test_an_uploaded_csv_file_keeps_its_own_line_numbers_when_it_becomes_a_job(
    client: httpx.AsyncClient, start_worker: Callable[[], WorkerProcess]
) -> None:
    vins = generated(5, seed=32)
    text = (
        "# fleet export\nunit,vin,model_year\n"
        + "".join(f"{i},{v},\n" for i, v in enumerate(vins))
        + "9,XYZ,\n"
    )
    start_worker()

    response = await client.post("/api/v1/jobs", files={"file": ("fleet.csv", text.encode(), "text/csv")})

    assert response.status_code == 202, response.text
    job = response.json()
    assert job["source_name"] == "fleet.csv"
    assert [(r["line"], r["input"]) for r in job["invalid_rows"]] == [(8, "XYZ")]
    await finished(client, job["id"])
    rows = (await client.get(f"/api/v1/jobs/{job['id']}/results?format=json")).json()
    assert [(r["line"], r["input"]) for r in rows] == [*((i + 3, v) for i, v in enumerate(vins)), (8, "XYZ")]


async def test_a_job_cancelled_before_a_worker_takes_it_decodes_nothing_when_deleted(
    client: httpx.AsyncClient, start_worker: Callable[[], WorkerProcess], redis_url: str
) -> None:
    job = (await client.post("/api/v1/jobs", json={"vins": generated(300, seed=33)})).json()

    response = await client.delete(f"/api/v1/jobs/{job['id']}")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    start_worker()  # it takes the cancelled job's chunks from the queue and skips them
    queue = redis_sync.Redis(unix_socket_path=redis_url.removeprefix("unix://"))
    deadline = time.monotonic() + 30
    while queue.llen(QUEUE):
        assert time.monotonic() < deadline, "the worker did not drain the queue"
        await asyncio.sleep(0.05)
    queue.close()
    await asyncio.sleep(0.5)
    status = (await client.get(f"/api/v1/jobs/{job['id']}")).json()
    assert (status["status"], status["chunks_done"]) == ("cancelled", 0)
    rows = (await client.get(f"/api/v1/jobs/{job['id']}/results?format=json")).json()
    assert len(rows) == 300
    assert all(r["error"]["error"] == "not_decoded" and "cancelled" in r["error"]["message"] for r in rows)
    again = await client.delete(f"/api/v1/jobs/{job['id']}")
    assert again.json()["status"] == "cancelled"


async def test_another_user_gets_404_when_reading_or_cancelling_the_job(
    client: httpx.AsyncClient, stranger: httpx.AsyncClient, broker: None
) -> None:
    job = (await client.post("/api/v1/jobs", json={"vins": [ACCORD]})).json()

    for method, path in (
        ("GET", f"/api/v1/jobs/{job['id']}"),
        ("GET", f"/api/v1/jobs/{job['id']}/results?format=csv"),
        ("GET", f"/api/v1/jobs/{job['id']}/results?format=json"),
        ("DELETE", f"/api/v1/jobs/{job['id']}"),
    ):
        response = await stranger.request(method, path)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"] == "job_not_found"
    assert (await client.get(f"/api/v1/jobs/{job['id']}")).json()["status"] == "queued"
    assert (await stranger.get("/api/v1/jobs/" + "0" * 32)).status_code == 404


def test_the_cli_submits_waits_and_prints_results_when_given_a_file(
    run: Callable[..., subprocess.CompletedProcess[str]],
    start_worker: Callable[[], WorkerProcess],
    tmp_path: Path,
) -> None:
    vins = generated(120, seed=34)
    fleet = tmp_path / "fleet.txt"
    fleet.write_text("# my fleet\n" + "\n".join(vins) + "\nnot a vin\n", encoding="utf-8")
    start_worker()

    submitted = run("jobs", "submit", str(fleet), "--wait")

    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().splitlines()[-1]
    assert JOB_ID.match(job_id)
    assert "decoding" in submitted.stderr
    assert "120/120 VINs" in submitted.stderr
    assert f"Job {job_id} done." in submitted.stderr

    status = run("jobs", "status", job_id)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["status"] == "done"
    as_json = run("jobs", "results", job_id, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert [r["line"] for r in rows] == list(range(2, 123))
    assert all({"line", "vin", "error"} <= set(r) for r in rows)
    assert [r["vin"] for r in rows[:-1]] == vins
    assert rows[0]["make"]
    assert rows[0]["error"] is None
    assert rows[-1]["error"]["error"] == "invalid_vin"
    as_csv = run("jobs", "results", job_id, "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["input"] for r in table] == [*vins, "not a vin"]
