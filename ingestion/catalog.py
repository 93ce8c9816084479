"""The datasets `vinbot ingest` knows: their loaders, publisher downloads and shared file names."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from ingestion import epa, recalls, test_cars
from ingestion.documents import BadRow, VehicleDoc
from ingestion.pipeline import DEFAULT_BATCH_SIZE, IngestResult, Loader, ProgressSink, ingest
from ingestion.sources import SourceError, fetch
from tools.providers.embeddings import Embedder

__all__ = [
    "DATASETS",
    "ORDER",
    "DatasetSpec",
    "SourceError",
    "fetch_all",
    "ingest_data_dir",
    "shared_sources",
]


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: how to read it and where to get it.

    Attributes:
        name: The command-line name (`epa`, `epa-test-cars`, `recalls`).
        dataset: The stored dataset name (`epa`, `epa-test-cars`, `nhtsa-recalls`).
        loader: Turns files into documents and bad rows.
        default_urls: The publisher's downloads, used when no source is given.
        shared_files: The file names looked up in `--data-dir`, in order of preference;
            each entry lists the files read together.
    """

    name: str
    dataset: str
    loader: Loader
    default_urls: tuple[str, ...]
    shared_files: tuple[tuple[str, ...], ...]


def _epa_loader(paths: Sequence[Path]) -> Iterator[VehicleDoc | BadRow]:
    for path in paths:
        yield from epa.load(path)


DATASETS: dict[str, DatasetSpec] = {
    "epa": DatasetSpec(
        "epa",
        epa.DATASET,
        _epa_loader,
        (epa.DEFAULT_URL,),
        ((epa.SHARED_FILE,), ("vehicles.csv.zip",), ("vehicles.csv",)),
    ),
    "epa-test-cars": DatasetSpec(
        "epa-test-cars",
        test_cars.DATASET,
        test_cars.load,
        test_cars.DEFAULT_URLS,
        ((test_cars.SHARED_FILE,),),
    ),
    "recalls": DatasetSpec(
        "recalls",
        recalls.DATASET,
        recalls.load,
        recalls.DEFAULT_URLS,
        (
            (recalls.SHARED_DERIVED_FILE,),
            recalls.SHARED_FILES,
            tuple(Path(u).name for u in recalls.DEFAULT_URLS),
        ),
    ),
}
ORDER = ("epa", "epa-test-cars", "recalls")


def shared_sources(spec: DatasetSpec, data_dir: Path) -> list[str]:
    """Return the files of `spec` found in `data_dir` (the first complete set).

    Raises:
        SourceError: none of the expected files is there.
    """
    for names in spec.shared_files:
        paths = [data_dir / n for n in names]
        if all(p.is_file() for p in paths):
            return [str(p) for p in paths]
    expected = " or ".join("+".join(names) for names in spec.shared_files)
    raise SourceError(f"{spec.name}: none of {expected} in {data_dir}")


async def fetch_all(sources: Sequence[str], downloads: Path, http: httpx.AsyncClient) -> list[Path]:
    """Return local paths for `sources`, downloading URLs into `downloads`."""
    return [await fetch(source, downloads, http) for source in sources]


async def ingest_data_dir(
    engine: AsyncEngine,
    embedder: Embedder,
    data_dir: Path,
    *,
    datasets: Sequence[str] = ORDER,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressSink | None = None,
) -> list[IngestResult]:
    """Ingest the shared files of `datasets` found in `data_dir` (no downloads).

    Raises:
        SourceError: a dataset's files are not in `data_dir`.
    """
    results = []
    for i, name in enumerate(datasets):
        spec = DATASETS[name]
        sources = shared_sources(spec, data_dir)
        results.append(
            await ingest(
                spec.dataset,
                spec.loader,
                [Path(s) for s in sources],
                source=" ".join(sources),
                engine=engine,
                embedder=embedder,
                batch_size=batch_size,
                progress=progress,
                defer_index=i < len(datasets) - 1,
            )
        )
    return results
