"""Ingestion into the real embedded PostgreSQL: full files, idempotent re-runs, updates, resuming.

The full EPA, test-car and recall files are ingested once per session by the `knowledge_url`
fixture (the database the retrieval tests use); these tests check what it stored and that
a second run changes nothing. Updates and a killed `vinbot ingest` run use their own
database and small real files, so the shared one is never modified.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import psycopg
import pytest
from fakes import FakeEmbedder
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from standins import serving
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ingestion import epa, recalls
from ingestion.catalog import DATASETS, ingest_data_dir
from ingestion.documents import BadRow, VehicleDoc
from ingestion.pipeline import ingest
from tools.errors import ProviderUnavailable
from tools.providers.embeddings import CachedEmbedder, LocalMiniLmEmbedder, SqliteVectorCache
from tools.settings import EmbeddingSettings, Settings
from tools.storage import migrate
from tools.storage.models import IngestRun, VehicleDocument
from tools.storage.session import create_engine
from vinbot.ingest_cmd import IngestOptions, run_ingest

pytestmark = pytest.mark.integration

EPA_RECORDS = 49_582  # data lines of epa_fueleconomy_vehicles.csv.gz
RECALL_RECORDS = 22_539  # of nhtsa_recalls_by_vehicle_2020_2026.csv.gz


def _records(path: Path) -> int:
    with gzip.open(path, "rt", newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1


@pytest.fixture(scope="module")
async def knowledge_engine(knowledge_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(knowledge_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
def embedder() -> CachedEmbedder:
    from conftest import KNOWLEDGE_EMBEDDING_CACHE

    return CachedEmbedder(LocalMiniLmEmbedder(), SqliteVectorCache(KNOWLEDGE_EMBEDDING_CACHE))


@pytest.fixture
def scratch_url(pg_url: str) -> Iterator[str]:
    """A fresh, migrated database on the session's server, dropped afterwards."""
    name = f"ingest_{uuid.uuid4().hex[:10]}"
    admin = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_url.replace("/vinbot_test?", f"/{name}?")
    migrate.upgrade(url)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


async def _count(engine: AsyncEngine, dataset: str) -> int:
    async with engine.connect() as conn:
        query = text("SELECT count(*) FROM vehicle_documents WHERE dataset = :d")
        return int((await conn.execute(query, {"d": dataset})).scalar_one())


async def test_full_epa_and_recall_files_are_stored_minus_reported_bad_rows(
    knowledge_engine: AsyncEngine, shared_data: Path
) -> None:
    async with async_sessionmaker(knowledge_engine)() as session:
        done = select(IngestRun).where(IngestRun.status == "done").order_by(IngestRun.id)
        runs = {r.dataset: r for r in (await session.execute(done)).scalars().all()}
    for dataset, file, records in (
        ("epa", epa.SHARED_FILE, EPA_RECORDS),
        ("nhtsa-recalls", recalls.SHARED_DERIVED_FILE, RECALL_RECORDS),
    ):
        assert _records(shared_data / file) == records
        run = runs[dataset]
        assert run.rows_read == records
        assert await _count(knowledge_engine, dataset) == records - run.bad_rows
        assert run.report["bad_rows_total"] == run.bad_rows  # reported with their line numbers
    assert await _count(knowledge_engine, "epa-test-cars") > 9_000
    async with knowledge_engine.connect() as conn:
        missing = await conn.execute(
            text("SELECT count(*) FROM vehicle_documents WHERE embedding IS NULL OR embedding_dim <> 384")
        )
        assert missing.scalar_one() == 0
        index = await conn.execute(text("SELECT to_regclass('ix_vehicle_documents_embedding') IS NOT NULL"))
        assert index.scalar_one()


async def test_epa_and_nhtsa_spellings_share_keys_in_the_database(knowledge_engine: AsyncEngine) -> None:
    async with knowledge_engine.connect() as conn:
        rows = await conn.execute(
            select(VehicleDocument.dataset, VehicleDocument.model)
            .where(VehicleDocument.make_key == "honda", VehicleDocument.model_key == "crv")
            .where(VehicleDocument.year == 2019)
        )
        models = {(d, m) for d, m in rows.all()}
    assert ("epa", "CR-V AWD") in models
    assert ("nhtsa-recalls", "CR-V") in models


async def test_second_run_changes_nothing(
    knowledge_engine: AsyncEngine, embedder: CachedEmbedder, shared_data: Path
) -> None:
    results = await ingest_data_dir(knowledge_engine, embedder, shared_data, datasets=("epa", "recalls"))
    for result in results:
        assert (result.inserted, result.updated, result.embedded) == (0, 0, 0)
        assert result.unchanged == result.documents


def _write_epa_subset(shared_data: Path, target: Path, rows: int, change_id: str | None = None) -> None:
    with (
        gzip.open(shared_data / epa.SHARED_FILE, "rt", newline="") as src,
        target.open("w", newline="") as dst,
    ):
        reader = csv.reader(src)
        writer = csv.writer(dst)
        header = next(reader)
        writer.writerow(header)
        id_col, comb = header.index("id"), header.index("comb08")
        for i, row in enumerate(reader):
            if i == rows:
                break
            if row[id_col] == change_id:
                row[comb] = str(int(row[comb]) + 1)
            writer.writerow(row)


async def test_a_changed_record_is_updated_and_only_it(
    scratch_url: str, embedder: CachedEmbedder, shared_data: Path, tmp_path: Path
) -> None:
    source = tmp_path / "vehicles.csv"
    _write_epa_subset(shared_data, source, 300)
    engine = create_engine(scratch_url)
    spec = DATASETS["epa"]
    try:
        first = await ingest(
            "epa", spec.loader, [source], source=str(source), engine=engine, embedder=embedder
        )
        assert (first.inserted, first.updated, first.unchanged) == (300, 0, 0)
        _write_epa_subset(shared_data, source, 300, change_id="1")
        second = await ingest(
            "epa", spec.loader, [source], source=str(source), engine=engine, embedder=embedder
        )
        assert (second.inserted, second.updated, second.unchanged) == (0, 1, 299)
        async with async_sessionmaker(engine)() as session:
            doc = (
                await session.execute(select(VehicleDocument).where(VehicleDocument.record_id == "1"))
            ).scalar_one()
            runs = (await session.execute(select(IngestRun).order_by(IngestRun.id))).scalars().all()
        assert doc.facts["combined_mpg"] == 22  # 21 in the published file
        assert "22 combined mpg" in doc.content
        assert [(r.status, r.inserted, r.updated, r.unchanged) for r in runs] == [
            ("done", 300, 0, 0),
            ("done", 0, 1, 299),
        ]
    finally:
        await engine.dispose()


ROWS, BATCH = 400, 20  # the killed run's file and batch size


def _ingest_process(url: str, redis_url: str, data_dir: Path, source: Path) -> subprocess.Popen[bytes]:
    """Start `vinbot ingest epa` on `source`; its output goes to files in `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "VINBOT_DATA_DIR": str(data_dir),
        "VINBOT_EMBEDDINGS__THREADS": "1",
    }
    command = [
        sys.executable,
        "-m",
        "vinbot.cli",
        "ingest",
        "epa",
        "--source",
        str(source),
        "--batch-size",
        "40",
    ]
    with (data_dir / "out.txt").open("wb") as out, (data_dir / "err.txt").open("wb") as err:
        return subprocess.Popen(command, env=env, stdout=out, stderr=err)  # noqa: S603 - our own command


def _finish(process: subprocess.Popen[bytes], data_dir: Path) -> str:
    assert process.wait(timeout=300) == 0, (data_dir / "err.txt").read_text()
    return (data_dir / "out.txt").read_text()


async def test_a_killed_run_resumes_and_keeps_what_it_committed(
    scratch_url: str, redis_url: str, shared_data: Path, tmp_path: Path
) -> None:
    source = tmp_path / "vehicles.csv"
    _write_epa_subset(shared_data, source, ROWS)
    engine = create_engine(scratch_url)
    try:
        data = tmp_path / "data"
        process = _ingest_process(scratch_url, redis_url, data, source)
        try:
            async with asyncio.timeout(240):
                while await _count(engine, "epa") < 2 * BATCH:  # two batches committed
                    assert process.poll() is None, (data / "err.txt").read_text()
                    await asyncio.sleep(0.1)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        committed = await _count(engine, "epa")
        assert 2 * BATCH <= committed < ROWS
        assert committed % BATCH == 0  # whole batches only

        out = await asyncio.to_thread(_finish, _ingest_process(scratch_url, redis_url, data, source), data)
        assert await _count(engine, "epa") == ROWS
        async with async_sessionmaker(engine)() as session:
            runs = (await session.execute(select(IngestRun).order_by(IngestRun.id))).scalars().all()
        assert [r.status for r in runs] == ["running", "done"]  # the killed run never finished
        assert (runs[1].inserted, runs[1].unchanged) == (ROWS - committed, committed)
        assert f"{ROWS - committed:,} changes" in out

        out = await asyncio.to_thread(_finish, _ingest_process(scratch_url, redis_url, data, source), data)
        assert "epa: 0 changes" in out
    finally:
        await engine.dispose()


def test_nhtsa_zips_and_the_derived_file_describe_the_same_records(shared_data: Path) -> None:
    def records(paths: list[Path]) -> dict[str, VehicleDoc]:
        items = list(recalls.load(paths))
        assert not [b for b in items if isinstance(b, BadRow)]
        return {d.record_id: d for d in items if isinstance(d, VehicleDoc)}

    derived = records([shared_data / recalls.SHARED_DERIVED_FILE])
    index = records([shared_data / n for n in recalls.SHARED_FILES])
    assert derived.keys() == index.keys()
    assert len(derived) == RECALL_RECORDS
    same_summary = sum(derived[k].facts["summary"] == index[k].facts["summary"] for k in derived)
    assert same_summary / len(derived) > 0.95
    assert {d.data_date for d in index.values()} == {d.data_date for d in derived.values()}


class _FailingEmbedder(FakeEmbedder):
    """Fails on its second call, as a remote embedder going down mid-run would."""

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if self.calls:
            raise ProviderUnavailable("openai-embeddings")
        return await super().embed_documents(texts)


async def test_an_embedder_failure_keeps_committed_batches_and_marks_the_run_failed(
    scratch_url: str, shared_data: Path, tmp_path: Path
) -> None:
    source = tmp_path / "vehicles.csv"
    _write_epa_subset(shared_data, source, 100)
    engine = create_engine(scratch_url)
    spec = DATASETS["epa"]
    try:
        with pytest.raises(ProviderUnavailable):
            await ingest(
                "epa",
                spec.loader,
                [source],
                source=str(source),
                engine=engine,
                embedder=_FailingEmbedder(),
                batch_size=30,
            )
        assert await _count(engine, "epa") == 30
        async with async_sessionmaker(engine)() as session:
            (run,) = (await session.execute(select(IngestRun))).scalars().all()
        assert (run.status, run.inserted) == ("failed", 30)
        resumed = await ingest(
            "epa",
            spec.loader,
            [source],
            source=str(source),
            engine=engine,
            embedder=FakeEmbedder(),
            batch_size=30,
        )
        assert (resumed.inserted, resumed.unchanged) == (70, 30)
    finally:
        await engine.dispose()


async def test_an_url_source_is_downloaded_into_the_data_dir_then_ingested(
    scratch_url: str, redis_url: str, shared_data: Path, tmp_path: Path
) -> None:
    subset = tmp_path / "vehicles.csv"
    _write_epa_subset(shared_data, subset, 50)
    body = subset.read_bytes()

    async def vehicles(request: Request) -> Response:
        if request.url.path != "/feg/epadata/vehicles.csv":
            return PlainTextResponse("not found", status_code=404)
        return Response(body, media_type="text/csv")

    app = Starlette(routes=[Route("/feg/epadata/{name}", vehicles)])
    settings = Settings(
        DATABASE_URL=scratch_url,
        REDIS_URL=redis_url,
        data_dir=tmp_path / "data",
        embeddings=EmbeddingSettings(cache=False),
    )
    async with serving(app) as url:
        out = io.StringIO()
        options = IngestOptions(dataset="epa", sources=[f"{url}/feg/epadata/vehicles.csv"])
        assert await run_ingest(settings, options, out=out) == 0
        missing = IngestOptions(dataset="epa", sources=[f"{url}/feg/epadata/gone.csv"])
        assert await run_ingest(settings, missing, out=io.StringIO()) == 1
    assert (tmp_path / "data" / "downloads" / "vehicles.csv").read_bytes() == body
    assert "epa: 50 changes" in out.getvalue()
    engine = create_engine(scratch_url)
    try:
        assert await _count(engine, "epa") == 50
    finally:
        await engine.dispose()
