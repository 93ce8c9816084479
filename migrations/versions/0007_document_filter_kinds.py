"""Vehicle documents: indexed fuel, class and drive kinds for the structured search filters.

Spec search filters documents by the kind of fuel ("diesel"), class ("wagon") and drive
("awd") a question names. Those were `ILIKE '%Station Wagon%'`-style patterns over the
published labels, which no index can serve (the embedded PostgreSQL has no pg_trgm), so
a question naming no vehicle ("diesel wagon", "best hybrid SUV") read the whole table:
150-250 ms. Each kind is now a stored generated column, computed by PostgreSQL from the
same labels on every insert and update, with a b-tree index: the filters are equalities.

The expressions are the patterns `tools/storage/knowledge_repo.py` used before this
revision, in the same order of precedence (no label of the three datasets matches two).

It also indexes `(dataset, make_key, model_key, year)`: the searches filter on the dataset.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Frozen copies of `tools.storage.models.FUEL_KIND_SQL`, `CLASS_KIND_SQL` and `DRIVE_KIND_SQL`.
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
_KINDS = {"fuel_kind": FUEL_KIND_SQL, "class_kind": CLASS_KIND_SQL, "drive_kind": DRIVE_KIND_SQL}


def upgrade() -> None:
    # One ALTER TABLE: the table (and its indexes) is rewritten once, not once per column.
    op.execute(
        "ALTER TABLE vehicle_documents "
        + ", ".join(
            f"ADD COLUMN {name} VARCHAR(16) GENERATED ALWAYS AS ({sql}) STORED"
            for name, sql in _KINDS.items()
        )
    )
    for name in _KINDS:
        op.create_index(f"ix_vehicle_documents_{name}", "vehicle_documents", [name])
    # Search filters by dataset as well as kind: without this index a make-wide recall search
    # ANDed the make's rows with every recall row of `uq_vehicle_documents_dataset_record` (7 ms).
    op.create_index(
        "ix_vehicle_documents_dataset_lookup",
        "vehicle_documents",
        ["dataset", "make_key", "model_key", "year"],
    )
    op.execute("ANALYZE vehicle_documents")


def downgrade() -> None:
    op.drop_index("ix_vehicle_documents_dataset_lookup", table_name="vehicle_documents")
    for name in _KINDS:
        op.drop_index(f"ix_vehicle_documents_{name}", table_name="vehicle_documents")
    op.execute("ALTER TABLE vehicle_documents " + ", ".join(f"DROP COLUMN {name}" for name in _KINDS))
