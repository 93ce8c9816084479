"""Job results as rendered text: a `job_results` row per decoded line, instead of JSON in `job_items`.

Each result keeps its line's CSV cells (`cells`, layout 2 of `tools.storage.job_repo`),
the JSON the CSV cannot carry (`detail`) and typed summary columns. Results stored
before (`job_items.result`: layout 1, a JSON array, or the older JSON object; and lines
failed with an error) are rendered into layout 2 here, in SQL, and the column is dropped.
Downgrading drops `job_results` and gives `job_items.result` back empty: the results of
every job are lost (the converted ones too), and the old code shows their lines as not
decoded; re-submit the jobs whose results are still needed, or back up `job_results` first.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Layout 1 (frozen here): the version, these columns, then the error pairs and the suggestions.
_LAYOUT_1 = (
    "vin",
    "valid",
    "check_digit_valid",
    "make",
    "manufacturer",
    "model",
    "model_year",
    "trim",
    "series",
    "body_class",
    "vehicle_type",
    "doors",
    "drive_type",
    "transmission_style",
    "transmission_speeds",
    "engine_cylinders",
    "engine_displacement_l",
    "engine_model",
    "engine_configuration",
    "engine_hp",
    "engine_hp_to",
    "engine_fuel_type_primary",
    "engine_fuel_type_secondary",
    "engine_turbo",
    "engine_electrification",
    "plant_city",
    "plant_state",
    "plant_country",
    "gvwr",
    "gvwr_to",
    "errors",
    "suggestions",
    "source_provider",
    "source_fallback",
    "source_fallback_reason",
    "source_requested_provider",
    "source_data_version",
    "source_cached",
)
_NESTED = ("transmission", "engine", "plant", "source")
_ERROR_PAIRS_AT = len(_LAYOUT_1) + 1


def _quoted(value: str) -> str:
    """SQL for the text `value` as a CSV cell, as PostgreSQL's COPY writes it (NULL: empty)."""
    return (
        f"CASE WHEN {value} IS NULL THEN '' "
        f"WHEN {value} = '' OR {value} ~ '[,\"\\r\\n]' THEN '\"' || replace({value}, '\"', '\"\"') || '\"' "
        f"ELSE {value} END"
    )


def _field(column: str) -> str:
    """SQL for one field of the stored result `r` as text, from layout 1 or the JSON object."""
    if column == "errors":
        legacy = (
            "(SELECT string_agg((e.value->>'code') || ': ' || (e.value->>'message'), '; ') "
            "FROM jsonb_array_elements(r->'errors') AS e(value))"
        )
    elif column == "suggestions":
        legacy = (
            "(SELECT string_agg(h.value, ' ') FROM jsonb_array_elements_text(r->'suggestions') AS h(value))"
        )
    else:
        top, _, sub = column.partition("_")
        path = f"{top},{sub}" if top in _NESTED else column
        legacy = f"r #>> '{{{path}}}'"
    value = f"(CASE WHEN jsonb_typeof(r) = 'object' THEN {legacy} ELSE r->>{_LAYOUT_1.index(column) + 1} END)"
    return f"coalesce({value}, 'false')" if column == "valid" else value


def _cells() -> str:
    cells = " || ',' || ".join(_quoted(_field(c)) for c in _LAYOUT_1)
    return f"{cells} || ',,'"  # no error


_DETAIL = (
    "CASE WHEN jsonb_typeof(r) = 'object' THEN "  # noqa: S608 - SQL built from the constants above
    "  CASE WHEN jsonb_array_length(r->'errors') > 0 THEN (r->'errors')::text END "
    "ELSE (SELECT jsonb_agg(jsonb_build_object('code', p.value->>0, 'message', p.value->>1))::text "
    f"  FROM jsonb_array_elements(r->{_ERROR_PAIRS_AT}) AS p(value)) END"
)
_BLANK = "',false" + "," * (len(_LAYOUT_1) - 2) + "'"


_COLUMNS = "job_id, line, layout, make, model_year, vehicle_type, error, cells, detail"
_DECODED = (
    f"INSERT INTO job_results ({_COLUMNS}) "  # noqa: S608 - SQL built from the constants above
    f"SELECT job_id, line, 2, {_field('make')}, ({_field('model_year')})::smallint, "
    f"{_field('vehicle_type')}, NULL, {_cells()}, {_DETAIL} "
    "FROM (SELECT job_id, line, result AS r FROM job_items "
    "      WHERE jsonb_typeof(result) = 'object' OR result->>0 = '1') AS stored"
)
_CODE = "(error->>'error')"
_MESSAGE = "(error->>'message')"
_FAILED = (
    f"INSERT INTO job_results ({_COLUMNS}) "  # noqa: S608 - SQL built from the constants above
    f"SELECT job_id, line, 2, NULL, NULL, NULL, {_CODE}, "
    f"{_BLANK} || ',' || {_quoted(_CODE)} || ',' || {_quoted(_MESSAGE)}, error::text "
    "FROM job_items WHERE state = 'failed' AND error IS NOT NULL "
    "AND (result IS NULL OR jsonb_typeof(result) = 'null')"
)


def upgrade() -> None:
    op.create_table(
        "job_results",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("layout", sa.SmallInteger(), nullable=False),
        sa.Column("make", sa.Text(), nullable=True),
        sa.Column("model_year", sa.SmallInteger(), nullable=True),
        sa.Column("vehicle_type", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("cells", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_results_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "line", name="pk_job_results"),
    )
    # Decoded lines: layout 1 arrays and the older objects (JSON null is no result).
    op.execute(_DECODED)
    # Lines no decoder could decode: their error instead of a result.
    op.execute(_FAILED)
    op.drop_column("job_items", "result")


def downgrade() -> None:
    # Irreversible for the data: see the module docstring.
    op.add_column("job_items", sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.drop_table("job_results")
