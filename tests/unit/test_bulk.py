"""The bulk capability's pure parts: input parsing, validation, de-duplication, chunking, rendering."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime

import pytest
import ultravin
from fakes import FakeRateLimiter

from tools import bulk
from tools.bulk import BulkDeps, InputRow
from tools.domain.vin import Vin
from tools.errors import InvalidInput, NotAllowed, RateLimited
from tools.providers.base import DecodeRequest
from tools.providers.ultravin import UltravinDecoder
from tools.settings import BulkSettings
from tools.storage.job_repo import ResultRow
from tools.vin import Caller

ACCORD = "1HGCM82633A004352"
TESLA = "5YJ3E1EA7KF317000"


class FakeJobQueue:
    """Records the chunks sent, as the Celery adapter would send them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[int]]] = []

    async def enqueue(self, job_id: str, chunks: Sequence[int]) -> None:
        self.sent.append((job_id, list(chunks)))


def test_plain_lines_keep_their_own_line_numbers_when_blank_lines_and_comments_are_skipped():
    text = f"# fleet\n{ACCORD}\n\n{TESLA},2019\n"

    rows = bulk.parse_text(text)

    assert rows == [InputRow(2, ACCORD, None), InputRow(4, TESLA, "2019")]


def test_a_csv_header_picks_the_vin_and_year_columns_when_they_are_named():
    text = f"unit,model_year,vin\n7,2003,{ACCORD}\n8,,{TESLA}\n"

    rows = bulk.parse_text(text)

    assert rows == [InputRow(2, ACCORD, "2003"), InputRow(3, TESLA, None)]


def test_invalid_lines_are_reported_and_duplicates_point_at_the_first_line_when_planning():
    rows = [
        InputRow(1, ACCORD),
        InputRow(2, "not a vin"),
        InputRow(3, ACCORD.lower()),
        InputRow(4, TESLA, "1850"),
        InputRow(5, TESLA),
    ]

    items = bulk.plan_items(rows, chunk_size=1)

    assert [(i.line, i.state, i.chunk_no, i.dup_of) for i in items] == [
        (1, "pending", 0, None),
        (2, "invalid", None, None),
        (3, "pending", None, 1),
        (4, "invalid", None, None),
        (5, "pending", 1, None),
    ]
    assert items[1].error is not None
    assert items[1].error["error"] == "invalid_vin"
    assert items[3].error is not None
    assert items[3].error["error"] == "invalid_input"


def test_unique_vins_fill_chunks_of_the_chunk_size_when_planning_a_large_list():
    vins = ultravin.generate(1_234, seed=3, now=datetime(2026, 6, 1))  # noqa: DTZ001

    items = bulk.plan_items(bulk.rows_from_list(vins), chunk_size=500)

    chunks = [i.chunk_no for i in items if i.chunk_no is not None]
    assert max(chunks) == -(-len(set(vins)) // 500) - 1
    assert all(chunks.count(n) == 500 for n in range(max(chunks)))


def caller(tier: str = "free") -> Caller:
    return Caller(user_id=7, tier=tier)  # type: ignore[arg-type]


async def test_submit_is_refused_when_the_server_has_no_job_queue():
    deps = BulkDeps(sessions=None, queue=None)  # type: ignore[arg-type]

    with pytest.raises(NotAllowed):
        await bulk.submit([InputRow(1, ACCORD)], deps=deps, caller=caller())


async def test_submit_is_refused_when_the_list_is_longer_than_the_tier_allows():
    deps = BulkDeps(sessions=None, queue=FakeJobQueue(), settings=BulkSettings(max_vins_per_job_free=2))  # type: ignore[arg-type]

    with pytest.raises(InvalidInput, match="2 lines per bulk job"):
        await bulk.submit(bulk.rows_from_list([ACCORD, TESLA, ACCORD]), deps=deps, caller=caller())


async def test_submit_is_rate_limited_when_the_daily_bulk_quota_is_spent():
    queue = FakeJobQueue()
    deps = BulkDeps(sessions=None, queue=queue, limiter=FakeRateLimiter(allow=0))  # type: ignore[arg-type]

    with pytest.raises(RateLimited):
        await bulk.submit(bulk.rows_from_list([ACCORD]), deps=deps, caller=caller())
    assert queue.sent == []


def decoded_row(line: int, vin: str) -> ResultRow:
    vehicle = UltravinDecoder().decode_sync(DecodeRequest(Vin.parse(vin)))
    return ResultRow(line, vin, "done", vehicle.model_dump(mode="json", exclude={"raw"}), None)


async def rendered(rows: list[dict[str, object]], fmt: bulk.ResultFormat) -> str:
    async def source():
        for row in rows:
            yield row

    return "".join([piece async for piece in bulk.iter_rendered(source(), fmt)])


async def test_results_render_one_row_per_line_with_flattened_fields_when_written_as_csv():
    rows = [
        bulk.result_row(decoded_row(1, ACCORD)),
        bulk.result_row(ResultRow(2, "nope", "invalid", None, {"error": "invalid_vin", "message": "bad"})),
        bulk.result_row(ResultRow(3, TESLA, "pending", None, None), cancelled=True),
    ]

    table = list(csv.DictReader(io.StringIO(await rendered(rows, "csv"))))

    assert [r["line"] for r in table] == ["1", "2", "3"]
    assert table[0]["make"] == "HONDA"
    assert table[0]["model_year"] == "2003"
    assert table[0]["engine_cylinders"]
    assert table[0]["error"] == ""
    assert (table[1]["error"], table[1]["error_message"]) == ("invalid_vin", "bad")
    assert table[2]["error"] == "not_decoded"
    assert "cancelled" in table[2]["error_message"]
    assert "raw" not in table[0]


async def test_results_are_one_json_array_of_row_objects_when_written_as_json():
    rows = [bulk.result_row(decoded_row(1, ACCORD))]

    data = json.loads(await rendered(rows, "json"))

    assert data[0]["line"] == 1
    assert data[0]["vin"] == ACCORD
    assert data[0]["error"] is None
    assert json.loads(await rendered([], "json")) == []


def test_a_unix_socket_redis_url_becomes_a_socket_broker_url_when_celery_needs_one():
    assert bulk.broker_url_for("unix:///tmp/r.sock") == "redis+socket:///tmp/r.sock"
    assert bulk.broker_url_for("redis://h:6379/0") == "redis://h:6379/0"
