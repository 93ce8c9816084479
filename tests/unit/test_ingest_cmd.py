"""`vinbot ingest` refuses bad usage before touching any infrastructure."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ingestion.catalog import DATASETS, shared_sources
from ingestion.sources import SourceError
from tools.settings import Settings
from vinbot.ingest_cmd import EXIT_USAGE, IngestOptions, run_ingest


@pytest.mark.parametrize(
    "options",
    [
        IngestOptions(dataset="all", sources=["vehicles.csv"]),
        IngestOptions(dataset="tires"),
        IngestOptions(dataset="epa", batch_size=0),
    ],
)
async def test_bad_usage_exits_2(options: IngestOptions, tmp_path: Path) -> None:
    assert await run_ingest(Settings(data_dir=tmp_path), options, out=io.StringIO()) == EXIT_USAGE


async def test_a_data_dir_without_the_files_exits_2_and_names_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = IngestOptions(dataset="all", data_dir=tmp_path)
    assert await run_ingest(Settings(data_dir=tmp_path), options, out=io.StringIO()) == EXIT_USAGE
    assert "epa_fueleconomy_vehicles.csv.gz" in capsys.readouterr().err


def test_shared_files_are_found_in_the_shared_data_dir(shared_data: Path) -> None:
    assert [Path(p).name for p in shared_sources(DATASETS["recalls"], shared_data)] == [
        "nhtsa_recalls_by_vehicle_2020_2026.csv.gz"
    ]
    assert [Path(p).name for p in shared_sources(DATASETS["epa"], shared_data)] == [
        "epa_fueleconomy_vehicles.csv.gz"
    ]
    with pytest.raises(SourceError):
        shared_sources(DATASETS["epa-test-cars"], shared_data / "nowhere")
