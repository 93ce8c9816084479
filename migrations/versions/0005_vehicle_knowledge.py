"""Vehicle knowledge: spec and recall documents with full-text and vector search; ingestion runs.

One table holds every ingested record (EPA fuel economy, EPA test cars, NHTSA recalls): typed
columns for exact look-ups, a text rendering searched by full text (`tsv`) and by meaning
(`embedding`, HNSW on cosine distance), and its provenance (dataset, record id, data date).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

EMBEDDING_DIM = 384


def upgrade() -> None:
    op.create_table(
        "vehicle_documents",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("dataset", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=True),
        sa.Column("make", sa.String(length=64), nullable=False),
        sa.Column("make_key", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("base_model", sa.String(length=128), nullable=False),
        sa.Column("model_key", sa.String(length=128), nullable=False),
        sa.Column("configuration", sa.String(length=256), nullable=True),
        sa.Column("engine", sa.String(length=256), nullable=True),
        sa.Column("cylinders", sa.SmallInteger(), nullable=True),
        sa.Column("displacement_l", sa.Float(), nullable=True),
        sa.Column("transmission", sa.String(length=64), nullable=True),
        sa.Column("drive", sa.String(length=64), nullable=True),
        sa.Column("fuel", sa.String(length=64), nullable=True),
        sa.Column("vehicle_class", sa.String(length=64), nullable=True),
        sa.Column("facts", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("data_date", sa.Date(), nullable=True),
        sa.Column(
            "tsv",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('simple'::regconfig, content)", persisted=True),
            nullable=True,
        ),
        sa.Column("embedding", Vector(EMBEDDING_DIM), nullable=True),
        sa.Column("embedding_model", sa.String(length=64), nullable=True),
        sa.Column("embedding_dim", sa.SmallInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vehicle_documents")),
        sa.UniqueConstraint("dataset", "record_id", name="uq_vehicle_documents_dataset_record"),
    )
    op.create_index(
        "ix_vehicle_documents_lookup", "vehicle_documents", ["kind", "make_key", "model_key", "year"]
    )
    op.create_index("ix_vehicle_documents_tsv", "vehicle_documents", ["tsv"], postgresql_using="gin")
    op.create_index(
        "ix_vehicle_documents_embedding",
        "vehicle_documents",
        ["embedding"],
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.create_table(
        "ingest_runs",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("dataset", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=512), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),  # running | done | failed
        sa.Column("rows_read", sa.Integer(), server_default="0", nullable=False),
        sa.Column("inserted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("bad_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("report", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_runs")),
    )


def downgrade() -> None:
    op.drop_table("ingest_runs")
    op.drop_index("ix_vehicle_documents_embedding", table_name="vehicle_documents")
    op.drop_index("ix_vehicle_documents_tsv", table_name="vehicle_documents")
    op.drop_index("ix_vehicle_documents_lookup", table_name="vehicle_documents")
    op.drop_table("vehicle_documents")
