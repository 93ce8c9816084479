"""Full EPA ingestion end to end into a fresh embedded PostgreSQL, against raw embedding speed.

Embedding is the cost of ingestion, and the machine is shared, so the pipeline's figures
are printed beside the raw throughput of the same local model on the same texts,
measured in the same run (before and after the pipeline; the median is used).

    .venv/bin/python -m bench.ingest_bench [--rows N] [--batch-size 1000] [--sample 1500]

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from ingestion.catalog import DATASETS
from ingestion.documents import VehicleDoc
from ingestion.epa import SHARED_FILE
from ingestion.pipeline import ingest, parse
from tools.embedded import EmbeddedPostgres
from tools.providers.embeddings import LocalMiniLmEmbedder
from tools.storage import document_repo, migrate
from tools.storage.session import create_engine

GOAL_S = 180.0  # the goal: the full EPA file end to end in under 3 minutes on 2 cores
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _raw_rate(embedder: LocalMiniLmEmbedder, texts: list[str]) -> float:
    """Texts per second of the bare model (tokenize, run, pool) on `texts`, one call."""
    started = time.perf_counter()
    embedder.embed_matrix(texts)
    return len(texts) / (time.perf_counter() - started)


def _subset(source: Path, rows: int, target: Path) -> Path:
    import csv
    import gzip

    with gzip.open(source, "rt", newline="") as src, target.open("w", newline="") as dst:
        reader, writer = csv.reader(src), csv.writer(dst)
        writer.writerow(next(reader))
        for i, row in enumerate(reader):
            if i == rows:
                break
            writer.writerow(row)
    return target


async def _main(args: argparse.Namespace) -> None:
    source = args.source
    work = Path(tempfile.mkdtemp(prefix="vinbot-ingest-bench-"))
    if args.rows:
        source = _subset(source, args.rows, work / "vehicles.csv")
    spec = DATASETS["epa"]
    embedder = LocalMiniLmEmbedder(threads=args.threads)
    embedder.embed_sync(["warm up"])  # loads the model outside every timing

    docs, bad, _ = parse(spec.loader, [source])
    texts = list(dict.fromkeys(d.embed_text for d in docs if isinstance(d, VehicleDoc)))
    sample = texts[:: max(1, len(texts) // args.sample)][: args.sample]
    before = _raw_rate(embedder, sample)

    pg = EmbeddedPostgres(work / "pg", database="bench")
    url = await asyncio.to_thread(pg.start)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        engine = create_engine(url)
        load = os.getloadavg()[0]
        result = await ingest(
            spec.dataset,
            spec.loader,
            [source],
            source=str(source),
            engine=engine,
            embedder=embedder,
            batch_size=args.batch_size,
        )
        after = _raw_rate(embedder, sample)
        again = await ingest(
            spec.dataset,
            spec.loader,
            [source],
            source=str(source),
            engine=engine,
            embedder=embedder,
            batch_size=args.batch_size,
        )
        async with engine.begin() as conn:
            await document_repo.drop_embedding_index(conn)
        started = time.perf_counter()
        async with engine.begin() as conn:
            await document_repo.ensure_embedding_index(conn)
        rebuild_s = time.perf_counter() - started
        await engine.dispose()
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)

    raw = statistics.median([before, after])
    pure_embed_s = result.embedded / raw
    print(
        f"EPA file: {result.rows_read:,} rows, {len(bad):,} bad, {result.documents:,} documents, "
        f"{len(texts):,} distinct embedding texts; load average at start {load:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"baseline: raw local embedding of {len(sample):,} of the same texts: {before:,.0f} / {after:,.0f} "
        f"texts/s before / after (median {raw:,.0f})"
    )
    print(
        f"pipeline: {result.seconds:,.1f} s end to end = {result.rows_per_s:,.0f} rows/s "
        f"(parse {result.parse_s:.1f} s, embed {result.embed_s:.1f} s for {result.embedded:,} texts, "
        f"write {result.write_s:.1f} s in {result.batches} batches, HNSW build {result.index_s:.1f} s)"
    )
    print(
        f"  pipeline embedding rate / raw rate:            {result.embedded / result.embed_s / raw:.2f}x"
        if result.embed_s
        else "  nothing embedded"
    )
    print(
        f"  end to end / pure embedding of its texts:      {result.seconds / pure_embed_s:.2f}x "
        f"({pure_embed_s:,.1f} s of embedding at the raw rate)"
    )
    print(
        f"  end to end / embedding every row (no reuse):   {result.seconds / (result.rows_read / raw):.2f}x"
    )
    print(
        f"re-run (0 changes expected): {again.changes} changes, {again.seconds:.1f} s "
        f"({again.rows_per_s:,.0f} rows/s)"
    )
    print(f"HNSW rebuild over {result.documents:,} vectors (m=16, ef_construction=64): {rebuild_s:.1f} s")
    print(
        f"goal: full EPA file end to end < {GOAL_S:.0f} s: {'MET' if result.seconds < GOAL_S else 'NOT MET'} "
        f"({result.seconds:.0f} s; at this run's raw rate the embedding alone needs {pure_embed_s:.0f} s)"
    )


def main() -> None:
    """Parse options and run the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=SHARED_DATA / SHARED_FILE)
    parser.add_argument("--rows", type=int, default=0, help="only the first N records (0 = all)")
    parser.add_argument("--batch-size", type=int, default=1000, help="documents per committed batch")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0 = one per core)")
    parser.add_argument("--sample", type=int, default=1500, help="texts in each baseline measurement")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
