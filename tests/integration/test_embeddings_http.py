"""`OpenAIEmbedder` over real HTTP against a stand-in speaking OpenAI's embeddings wire format."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest
from standins import serving
from standins.openai_embeddings import EmbeddingsStandIn, vector_for

from tools.errors import BadProviderResponse, ProviderUnavailable
from tools.providers.embeddings import OpenAIEmbedder, build_embedder
from tools.settings import EmbeddingSettings, Settings

pytestmark = pytest.mark.integration

KEY = "test-key"


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[tuple[EmbeddingsStandIn, str]]:
    standin = EmbeddingsStandIn(api_key=KEY)
    async with serving(standin.app) as url:
        yield standin, f"{url}/v1"


@pytest.fixture
async def embedder(
    server: tuple[EmbeddingsStandIn, str],
) -> AsyncIterator[tuple[OpenAIEmbedder, EmbeddingsStandIn]]:
    standin, url = server
    standin.reset()
    async with httpx.AsyncClient() as http:
        yield OpenAIEmbedder(http, api_key=KEY, base_url=url, batch_size=2, backoff_s=0.0), standin


async def test_documents_are_sent_in_batches_and_come_back_in_input_order(
    embedder: tuple[OpenAIEmbedder, EmbeddingsStandIn],
) -> None:
    client, standin = embedder
    standin.reverse = True  # the API does not promise order: the client sorts by index
    texts = ["Honda CR-V AWD", "Toyota RAV4", "Ford F-150"]
    vectors = await client.embed_documents(texts)
    assert [b["input"] for b in standin.received] == [texts[:2], texts[2:]]
    assert all(b["model"] == "text-embedding-3-small" and b["dimensions"] == 384 for b in standin.received)
    assert standin.headers[0]["authorization"] == f"Bearer {KEY}"
    assert vectors == [pytest.approx(vector_for(t, 384)) for t in texts]
    assert np.allclose(np.linalg.norm(np.array(vectors), axis=1), 1.0)
    assert (client.model, client.dim) == ("text-embedding-3-small", 384)


async def test_query_is_one_request(embedder: tuple[OpenAIEmbedder, EmbeddingsStandIn]) -> None:
    client, standin = embedder
    assert await client.embed_query("towing capacity") == pytest.approx(vector_for("towing capacity", 384))
    assert [b["input"] for b in standin.received] == [["towing capacity"]]


async def test_rate_limits_and_server_errors_are_retried(
    embedder: tuple[OpenAIEmbedder, EmbeddingsStandIn],
) -> None:
    client, standin = embedder
    standin.fail(429)
    standin.fail(500)
    assert len(await client.embed_query("x")) == 384
    assert len(standin.received) == 3


async def test_persistent_failure_is_provider_unavailable(
    embedder: tuple[OpenAIEmbedder, EmbeddingsStandIn],
) -> None:
    client, standin = embedder
    standin.fail(503, times=5)
    with pytest.raises(ProviderUnavailable):
        await client.embed_query("x")


async def test_wrong_key_is_a_bad_provider_response_without_retries(
    server: tuple[EmbeddingsStandIn, str],
) -> None:
    standin, url = server
    standin.reset()
    async with httpx.AsyncClient() as http:
        client = OpenAIEmbedder(http, api_key="wrong", base_url=url, backoff_s=0.0)
        with pytest.raises(BadProviderResponse):
            await client.embed_documents(["x"])
    assert standin.received == []  # refused before the body was read


async def test_settings_select_the_openai_embedder(server: tuple[EmbeddingsStandIn, str]) -> None:
    standin, url = server
    standin.reset()
    settings = Settings(
        OPENAI_API_KEY=KEY,
        OPENAI_BASE_URL=url,
        embeddings=EmbeddingSettings(provider="openai", cache=False, batch_size=16),
    )
    async with httpx.AsyncClient() as http:
        client = build_embedder(settings, http)
        assert isinstance(client, OpenAIEmbedder)
        assert len(await client.embed_documents(["a", "b"])) == 2
