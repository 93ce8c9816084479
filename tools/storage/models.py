"""SQLAlchemy 2 models. The schema itself changes only through Alembic migrations."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with stable constraint names."""

    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    """A person or program using vinbot, on any channel."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)  # "tg:42", "cli:local", "api:key"
    username: Mapped[str | None] = mapped_column(String(128))
    language: Mapped[str] = mapped_column(String(8), server_default="en")
    tier: Mapped[str] = mapped_column(String(16), server_default="free")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class VinCacheEntry(Base):
    """The durable decode cache, behind Redis: one row per provider, VIN and year hint."""

    __tablename__ = "vin_cache"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    vin: Mapped[str] = mapped_column(String(17), primary_key=True)
    year_hint: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # 0 = no hint
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    data_version: Mapped[str | None] = mapped_column(String(64))
    decoded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UserVinHistory(Base):
    """What each user decoded, newest last; the source of "what did I look up"."""

    __tablename__ = "user_vin_history"
    __table_args__ = (Index("ix_user_vin_history_user_time", "user_id", "decoded_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    vin: Mapped[str] = mapped_column(String(17))
    valid: Mapped[bool]
    model_year: Mapped[int | None] = mapped_column(Integer)
    make: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(256))
    provider: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16), server_default="cli")
    decoded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Conversation(Base):
    """One conversation on one channel (`api:<uuid>`, `tg:<chat>`, `cli:<id>`), owned by one user."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Message(Base):
    """One message of a conversation: user text, assistant text or tool calls, or a tool result."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_id_id", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # user | assistant | tool
    content: Mapped[str]
    tool_calls: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    tool_call_id: Mapped[str | None] = mapped_column(String(64))
    tool_name: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(8))
    planner: Mapped[str | None] = mapped_column(String(64))
    input_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    output_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    estimated_cost_usd: Mapped[float] = mapped_column(server_default="0")
    latency_ms: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Job(Base):
    """A bulk decode job: one uploaded VIN list, owned by one user, run in chunks by the worker."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random hex: unguessable
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # submitting | queued | running | done | cancelled
    source_name: Mapped[str | None] = mapped_column(String(256))
    lines: Mapped[int] = mapped_column(Integer)  # input rows, valid or not
    invalid: Mapped[int] = mapped_column(Integer)
    unique_vins: Mapped[int] = mapped_column(Integer)  # what the worker decodes
    chunk_size: Mapped[int] = mapped_column(Integer)
    chunks: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class JobItem(Base):
    """One input line of a job, and its result once decoded (upserted by job and line)."""

    __tablename__ = "job_items"
    __table_args__ = (
        PrimaryKeyConstraint("job_id", "line", name="pk_job_items"),
        Index("ix_job_items_job_id_chunk_no", "job_id", "chunk_no"),
        # Status reads list the rejected lines; without this they scan the whole job.
        Index("ix_job_items_invalid", "job_id", "line", postgresql_where=text("state = 'invalid'")),
    )

    # References `jobs.id` through statement-level triggers (migration 0009), not a foreign key:
    # checked once per COPY instead of once per line, with the same lock and ON DELETE CASCADE.
    job_id: Mapped[str] = mapped_column(String(32))
    line: Mapped[int] = mapped_column(Integer)
    input: Mapped[str] = mapped_column(String(80))
    vin: Mapped[str | None] = mapped_column(String(17))
    year_hint: Mapped[int | None] = mapped_column(SmallInteger)
    chunk_no: Mapped[int | None] = mapped_column(Integer)  # None: invalid, or a duplicate
    dup_of: Mapped[int | None] = mapped_column(Integer)  # the first line with the same VIN and hint
    state: Mapped[str] = mapped_column(String(16))  # pending | invalid (decodes are in `job_results`)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # why the line was rejected


class JobResult(Base):
    """The result of one unique input line, as text already rendered for the results file.

    Upserted by job and line. `cells` and `detail` are of layout `layout`
    (`job_repo.RESULT_LAYOUT_VERSION`); the summary counts read the typed columns.
    """

    __tablename__ = "job_results"
    __table_args__ = (PrimaryKeyConstraint("job_id", "line", name="pk_job_results"),)

    job_id: Mapped[str] = mapped_column(String(32))  # references `jobs.id` as `JobItem.job_id` does
    line: Mapped[int] = mapped_column(Integer)
    layout: Mapped[int] = mapped_column(SmallInteger)
    make: Mapped[str | None] = mapped_column(Text)
    model_year: Mapped[int | None] = mapped_column(SmallInteger)
    vehicle_type: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)  # an error code: the line could not be decoded
    cells: Mapped[str] = mapped_column(Text)  # its CSV cells after `line` and `input`
    detail: Mapped[str | None] = mapped_column(Text)  # JSON the CSV cannot carry (errors, error)


class JobChunk(Base):
    """A finished chunk of a job: progress is the sum over these, so a re-run chunk counts once."""

    __tablename__ = "job_chunks"
    __table_args__ = (PrimaryKeyConstraint("job_id", "chunk_no", name="pk_job_chunks"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    chunk_no: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


EMBEDDING_DIM = 384  # all-MiniLM-L6-v2; OpenAI text-embedding-3 models are asked for 384 dimensions


# How a document's labels map to the kinds spec search filters on (`DocumentFilter.fuel`,
# `.vehicle_class`, `.drive`); stored generated columns, so PostgreSQL computes them on every write.
FUEL_KIND_SQL = (
    "CASE"
    " WHEN (facts ->> 'atv_type') = 'EV' OR fuel ILIKE 'Electricity' THEN 'electric'"
    " WHEN (facts ->> 'atv_type') = 'Plug-in Hybrid' THEN 'plug-in hybrid'"
    " WHEN (facts ->> 'atv_type') = 'Hybrid' THEN 'hybrid'"
    " WHEN (facts ->> 'atv_type') = 'Diesel' OR fuel ILIKE '%Diesel%' THEN 'diesel'"
    " WHEN (facts ->> 'atv_type') = 'FFV' OR fuel ILIKE '%E85%' THEN 'flex-fuel'"
    " WHEN (facts ->> 'atv_type') IN ('CNG', 'Bifuel (CNG)') OR fuel ILIKE '%natural gas%'"
    " OR fuel ILIKE 'CNG' THEN 'cng'"
    " WHEN (facts ->> 'atv_type') = 'FCV' OR fuel ILIKE '%Hydrogen%' THEN 'hydrogen'"
    " END"
)
CLASS_KIND_SQL = (
    "CASE"
    " WHEN vehicle_class ILIKE '%Sport Utility%' THEN 'suv'"
    " WHEN vehicle_class ILIKE '%Pickup%' THEN 'pickup'"
    " WHEN vehicle_class ILIKE '%Cars' THEN 'car'"
    " WHEN vehicle_class ILIKE 'Minivan%' THEN 'minivan'"
    " WHEN vehicle_class ILIKE 'Vans%' THEN 'van'"
    " WHEN vehicle_class ILIKE '%Station Wagon%' THEN 'wagon'"
    " WHEN vehicle_class ILIKE 'Two Seaters%' THEN 'two-seater'"
    " END"
)
DRIVE_KIND_SQL = (
    "CASE"
    " WHEN drive ILIKE '%All-Wheel%' OR drive ILIKE '%4-Wheel%' OR drive ILIKE '%All Wheel%'"
    " OR drive ILIKE '4WD' OR drive ILIKE 'AWD' THEN 'awd'"
    " WHEN drive ILIKE 'Front%' OR drive ILIKE '%Front' OR drive ILIKE 'FWD' THEN 'fwd'"
    " WHEN drive ILIKE 'Rear%' OR drive ILIKE '%Rear' OR drive ILIKE 'RWD' THEN 'rwd'"
    " END"
)


class VehicleDocument(Base):
    """One ingested record (a spec configuration or a recall campaign for one vehicle) as a document.

    Typed columns serve exact look-ups; `content` is the text rendering that full-text search
    (`tsv`) and vector search (`embedding`) rank; `dataset` + `record_id` + `data_date` cite it.
    """

    __tablename__ = "vehicle_documents"
    __table_args__ = (
        UniqueConstraint("dataset", "record_id", name="uq_vehicle_documents_dataset_record"),
        Index("ix_vehicle_documents_lookup", "kind", "make_key", "model_key", "year"),
        Index("ix_vehicle_documents_tsv", "tsv", postgresql_using="gin"),
        Index("ix_vehicle_documents_fuel_kind", "fuel_kind"),
        Index("ix_vehicle_documents_class_kind", "class_kind"),
        Index("ix_vehicle_documents_drive_kind", "drive_kind"),
        Index("ix_vehicle_documents_dataset_lookup", "dataset", "make_key", "model_key", "year"),
        Index(
            "ix_vehicle_documents_embedding",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset: Mapped[str] = mapped_column(String(32))  # epa | epa-test-cars | nhtsa-recalls
    record_id: Mapped[str] = mapped_column(String(128))  # the publisher's id (EPA id, campaign+vehicle)
    kind: Mapped[str] = mapped_column(String(16))  # spec | recall
    year: Mapped[int | None] = mapped_column(SmallInteger)  # model year; None when unknown (9999)
    make: Mapped[str] = mapped_column(String(64))  # display spelling: "Toyota"
    make_key: Mapped[str] = mapped_column(String(64))  # normalised across datasets: "toyota"
    model: Mapped[str] = mapped_column(String(128))  # as published: "RAV4 AWD"
    base_model: Mapped[str] = mapped_column(String(128))  # "RAV4"
    model_key: Mapped[str] = mapped_column(String(128))  # normalised base model: "rav4"
    configuration: Mapped[str | None] = mapped_column(String(256))  # "2.5L 4 cyl, Automatic (S8), AWD"
    engine: Mapped[str | None] = mapped_column(String(256))
    cylinders: Mapped[int | None] = mapped_column(SmallInteger)
    displacement_l: Mapped[float | None] = mapped_column(Float)
    transmission: Mapped[str | None] = mapped_column(String(64))
    drive: Mapped[str | None] = mapped_column(String(64))
    fuel: Mapped[str | None] = mapped_column(String(64))
    vehicle_class: Mapped[str | None] = mapped_column(String(64))
    facts: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")  # numeric facts, recall fields
    content: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 of what was ingested: re-runs skip it
    data_date: Mapped[date | None] = mapped_column(Date)
    tsv: Mapped[Any] = mapped_column(
        TSVECTOR, Computed("to_tsvector('simple'::regconfig, content)", persisted=True)
    )
    embedding: Mapped[Any | None] = mapped_column(Vector(EMBEDDING_DIM))
    embedding_model: Mapped[str | None] = mapped_column(String(64))
    embedding_dim: Mapped[int | None] = mapped_column(SmallInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The search filters' kinds, computed by PostgreSQL from the labels (migration 0007): "diesel", ...
    fuel_kind: Mapped[str | None] = mapped_column(String(16), Computed(FUEL_KIND_SQL, persisted=True))
    class_kind: Mapped[str | None] = mapped_column(String(16), Computed(CLASS_KIND_SQL, persisted=True))
    drive_kind: Mapped[str | None] = mapped_column(String(16), Computed(DRIVE_KIND_SQL, persisted=True))


class IngestRun(Base):
    """One run of `vinbot ingest` for one dataset: what it read, changed and rejected."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(512))  # path or URL
    status: Mapped[str] = mapped_column(String(16))  # running | done | failed
    rows_read: Mapped[int] = mapped_column(Integer, server_default="0")
    inserted: Mapped[int] = mapped_column(Integer, server_default="0")
    updated: Mapped[int] = mapped_column(Integer, server_default="0")
    unchanged: Mapped[int] = mapped_column(Integer, server_default="0")
    bad_rows: Mapped[int] = mapped_column(Integer, server_default="0")
    report: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")  # bad rows with line numbers
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Feedback(Base):
    """A 👍 or 👎 on one assistant answer, by the user it was given to (one vote each, last one wins)."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("user_id", "message_id", name="uq_feedback_user_message"),
        Index("ix_feedback_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    rating: Mapped[int] = mapped_column(SmallInteger)  # +1 or -1
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
