"""All configuration, read once by each composition root and passed down as values.

Well-known variables (`DATABASE_URL`, `REDIS_URL`, `SENTRY_DSN`, ...) are read under
their usual names; everything else is `VINBOT_<FIELD>`, with `__` between nested
groups (`VINBOT_NHTSA__ENABLED=true`). A `.env` file in the working directory is
read too. Unset infrastructure means "use the embedded default".
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

Tier = Literal["free", "pro", "premium"]


def default_data_dir() -> Path:
    """Return the per-user data directory (for example `~/.local/share/vinbot`)."""
    return Path(platformdirs.user_data_dir("vinbot"))


class ProviderSettings(BaseModel):
    """A remote data provider: switch, politeness limit, timeouts and retries."""

    enabled: bool = False
    base_url: str = ""
    requests_per_minute: int = Field(60, ge=1)
    timeout_s: float = Field(10.0, gt=0)
    retries: int = Field(2, ge=0, le=5)
    retry_backoff_s: float = Field(0.5, ge=0)


class NhtsaSettings(ProviderSettings):
    """The live NHTSA vPIC API (free, no key)."""

    base_url: str = "https://vpic.nhtsa.dot.gov/api"
    requests_per_minute: int = Field(60, ge=1)
    batch_size: int = Field(50, ge=1, le=50)


class AutodevSettings(ProviderSettings):
    """Auto.dev VIN decoding (premium tier; needs `AUTODEV_API_KEY`)."""

    base_url: str = "https://api.auto.dev"
    requests_per_minute: int = Field(120, ge=1)


class LimitSettings(BaseModel):
    """Per-subject quotas. `decodes_per_day` is keyed by tier."""

    messages_per_minute: int = Field(30, ge=1, description="Questions to the assistant per user.")
    anonymous_requests_per_minute: int = Field(
        30, ge=1, description="HTTP requests per IP without an API key."
    )
    decodes_per_minute: int = Field(60, ge=1)
    decodes_per_day_free: int = Field(500, ge=1)
    decodes_per_day_pro: int = Field(10_000, ge=1)
    decodes_per_day_premium: int = Field(100_000, ge=1)

    def decodes_per_day(self, tier: Tier) -> int:
        """Return the daily decode quota of `tier`."""
        return {
            "free": self.decodes_per_day_free,
            "pro": self.decodes_per_day_pro,
            "premium": self.decodes_per_day_premium,
        }[tier]


class CacheSettings(BaseModel):
    """Decode caching: Redis in front, PostgreSQL `vin_cache` behind it."""

    decode_ttl_days: int = Field(30, ge=1)
    durable_ttl_days: int = Field(180, ge=1)


class BulkSettings(BaseModel):
    """Bulk decode jobs: chunking, per-tier limits and the Celery worker."""

    chunk_size: int = Field(
        2_000,
        ge=1,
        le=10_000,
        description="VINs per Celery task; one task decodes and writes one chunk (one commit).",
    )
    max_vins_per_job_free: int = Field(1_000, ge=1)
    max_vins_per_job_pro: int = Field(20_000, ge=1)
    max_vins_per_job_premium: int = Field(100_000, ge=1)
    vins_per_day_free: int = Field(2_000, ge=1)
    vins_per_day_pro: int = Field(100_000, ge=1)
    vins_per_day_premium: int = Field(1_000_000, ge=1)
    worker_concurrency: int = Field(
        0, ge=0, description="Worker processes (prefork pool); 0 means one per CPU core."
    )
    task_max_retries: int = Field(
        4, ge=0, le=10, description="Retries of a chunk on provider errors before decoding it offline."
    )
    retry_backoff_s: float = Field(2.0, ge=0, description="First retry delay; doubles on each retry.")
    visibility_timeout_s: int = Field(
        600,
        ge=1,
        description="Seconds before Redis redelivers a task whose worker vanished without acknowledging it.",
    )
    stall_resend_s: int = Field(
        300,
        ge=0,
        description=(
            "Seconds in which no chunk of any queued or running job finished, after which a worker "
            "sends their unfinished chunks again (their messages were lost, e.g. by a broker restart); "
            "0: never."
        ),
    )

    def max_vins_per_job(self, tier: Tier) -> int:
        """Return how many input lines one job of `tier` may have."""
        return {
            "free": self.max_vins_per_job_free,
            "pro": self.max_vins_per_job_pro,
            "premium": self.max_vins_per_job_premium,
        }[tier]

    def vins_per_day(self, tier: Tier) -> int:
        """Return how many VINs a user of `tier` may submit in bulk jobs per day."""
        return {
            "free": self.vins_per_day_free,
            "pro": self.vins_per_day_pro,
            "premium": self.vins_per_day_premium,
        }[tier]


class AgentSettings(BaseModel):
    """The conversation: step budget, memory budget and the planner-first switch."""

    recursion_limit: int = Field(12, ge=4, le=50, description="Graph steps per turn before a polite stop.")
    history_token_budget: int = Field(3000, ge=200, description="Tokens of earlier turns sent to the model.")
    history_messages: int = Field(60, ge=2, description="Most recent messages loaded from the database.")
    max_question_chars: int = Field(8000, ge=100)
    planner_first: bool = Field(
        True,
        description="Let the offline planner answer turns it recognises with certainty, skipping the LLM.",
    )
    llm_tool_mode: Literal["native", "json"] = Field(
        "native", description="native: OpenAI tool_calls; json: tool calls as JSON-schema text (llama.cpp)."
    )
    llm_timeout_s: float = Field(30.0, gt=0)
    llm_max_tokens: int = Field(600, ge=16)
    llm_temperature: float = Field(0.0, ge=0, le=2)


class EmbeddingSettings(BaseModel):
    """Text embeddings for vehicle knowledge: the local int8 MiniLM model, or OpenAI's API."""

    provider: Literal["local", "openai"] = Field(
        "local", description="local: all-MiniLM-L6-v2 int8 on onnxruntime; openai: the embeddings API."
    )
    local_model: str = Field(
        "all-MiniLM-L6-v2-int8",
        description="The local model; its vectors are recorded under this name + '-dq'.",
    )
    openai_model: str = Field("text-embedding-3-small", description="OpenAI model, asked for 384 dimensions.")
    batch_size: int = Field(
        32, ge=1, le=2048, description="Texts per OpenAI request (the local model embeds one text per call)."
    )
    threads: int = Field(
        0, ge=0, le=64, description="onnxruntime intra-op threads for the local model; 0 = one per core."
    )
    timeout_s: float = Field(30.0, gt=0, description="Timeout of one OpenAI embeddings request.")
    retries: int = Field(2, ge=0, le=5, description="Retries of a failed OpenAI embeddings request.")
    cache: bool = Field(
        True, description="Keep document vectors in <data_dir>/embedding-cache.sqlite for re-ingestion."
    )


class KnowledgeSettings(BaseModel):
    """Spec, comparison and recall look-ups: hybrid search depth, HNSW width, caching."""

    candidates: int = Field(50, ge=5, le=500, description="Documents each ranker (full text, vector) fuses.")
    rrf_k: int = Field(60, ge=1, le=1000, description="Reciprocal rank fusion constant.")
    ef_search: int = Field(100, ge=10, le=1000, description="HNSW candidate list size per vector query.")
    cache_ttl_s: int = Field(3600, ge=0, description="How long search results stay cached; 0 turns it off.")
    vocabulary_ttl_s: int = Field(600, ge=1, description="How long the known makes and models are kept.")


class TelegramSettings(BaseModel):
    """The Telegram bot: polling or webhook, the webhook's address and secret, per-tier message limits.

    The token and a self-hosted Bot API server are read under their well-known names
    (`TELEGRAM_BOT_TOKEN`, `TELEGRAM_API_BASE_URL`) as `Settings.telegram_bot_token` and
    `Settings.telegram_api_base_url`.
    """

    mode: Literal["polling", "webhook"] = Field(
        "polling", description="polling: `vinbot bot` long-polls; webhook: the API serves /telegram/webhook."
    )
    webhook_url: str | None = Field(None, description="Public URL of /telegram/webhook, set with setWebhook.")
    webhook_secret: SecretStr | None = Field(
        None, description="Checked against X-Telegram-Bot-Api-Secret-Token on every webhook request."
    )
    poll_timeout_s: int = Field(30, ge=0, le=50, description="getUpdates long-poll timeout.")
    dedupe_ttl_s: int = Field(86_400, ge=60, description="How long a webhook update_id is remembered.")
    messages_per_day_free: int = Field(200, ge=1)
    messages_per_day_pro: int = Field(2_000, ge=1)
    messages_per_day_premium: int = Field(20_000, ge=1)
    progress_interval_s: float = Field(2.0, gt=0, description="Seconds between bulk-job progress edits.")
    concurrent_updates: int = Field(
        8, ge=1, le=256, description="Updates handled at once (different chats; one chat's in order)."
    )
    typing_after_s: float = Field(
        1.0, ge=0, description="Show the typing action only for answers that take longer than this."
    )

    def messages_per_day(self, tier: Tier) -> int:
        """Return how many messages a user of `tier` may send the bot per day."""
        return {
            "free": self.messages_per_day_free,
            "pro": self.messages_per_day_pro,
            "premium": self.messages_per_day_premium,
        }[tier]


class Settings(BaseSettings):
    """Every setting vinbot reads. See README.md for the table of defaults."""

    model_config = SettingsConfigDict(
        env_prefix="VINBOT_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
    )

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = Field(default_factory=default_data_dir)
    log_level: str = "INFO"
    log_format: Literal["auto", "text", "json"] = "auto"

    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    # Connections each process keeps open to PostgreSQL (up to 5 more under bursts).
    db_pool_size: int = Field(10, ge=1, le=100)
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    upstash_redis_rest_url: str | None = Field(None, validation_alias="UPSTASH_REDIS_REST_URL")
    upstash_redis_rest_token: SecretStr | None = Field(None, validation_alias="UPSTASH_REDIS_REST_TOKEN")
    sentry_dsn: SecretStr | None = Field(None, validation_alias="SENTRY_DSN")
    autodev_api_key: SecretStr | None = Field(None, validation_alias="AUTODEV_API_KEY")
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")
    telegram_bot_token: SecretStr | None = Field(None, validation_alias="TELEGRAM_BOT_TOKEN")
    telegram_api_base_url: str | None = Field(None, validation_alias="TELEGRAM_API_BASE_URL")
    llm_model: str = "gpt-4o-mini"

    vin_provider: Literal["offline", "nhtsa", "autodev"] = "offline"
    nhtsa: NhtsaSettings = NhtsaSettings()
    autodev: AutodevSettings = AutodevSettings()
    limits: LimitSettings = LimitSettings()
    cache: CacheSettings = CacheSettings()
    agent: AgentSettings = AgentSettings()
    bulk: BulkSettings = BulkSettings()
    telegram: TelegramSettings = TelegramSettings()
    embeddings: EmbeddingSettings = EmbeddingSettings()
    knowledge: KnowledgeSettings = KnowledgeSettings()
    cli_user: str = Field("local", description="The user the terminal commands act as.")
    cli_tier: Tier = Field("premium", description="The tier of the terminal user (the operator).")

    @property
    def llm_configured(self) -> bool:
        """True when an OpenAI-compatible endpoint is configured (a key, or a local base URL)."""
        return self.openai_api_key is not None or bool(self.openai_base_url)

    @property
    def pg_dir(self) -> Path:
        """Where the embedded PostgreSQL keeps its data."""
        return self.data_dir / "pg"

    @property
    def redis_dir(self) -> Path:
        """Where the embedded Redis keeps its data and socket."""
        return self.data_dir / "redis"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the settings once per process. Only composition roots call this."""
    return Settings()
