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
from pydantic import BaseModel, ValidationError

from tools import bulk
from tools.bulk import BulkDeps, InputRow
from tools.domain.vehicle import VPIC_FIELDS, DecodedVehicle, DecodeSource, vehicle_from_vpic
from tools.domain.vin import Vin
from tools.errors import InvalidInput, NotAllowed, RateLimited
from tools.providers.base import DecodeRequest
from tools.providers.ultravin import UltravinDecoder
from tools.settings import BulkSettings
from tools.storage import job_repo
from tools.vin import Caller
from vinbot.decode_cmd import _Inputs, _read_lines

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


def test_chunks_hold_stretches_of_the_sorted_vins_whatever_the_line_order_when_planning():
    vins = ultravin.generate(1_000, seed=4, now=datetime(2026, 6, 1))  # noqa: DTZ001
    # One VIN twice with different hints: two unique lines, in line order within their chunk.
    rows = [*bulk.rows_from_list(vins), InputRow(1_001, vins[0], 2020), InputRow(1_002, vins[0], 2021)]

    items = bulk.plan_items(rows, chunk_size=70)

    placed = sorted((i.chunk_no, i.vin or "", i.line) for i in items if i.chunk_no is not None)
    assert [vin for _, vin, _ in placed] == sorted(vin for _, vin, _ in placed)
    assert [line for _, vin, line in placed if vin == vins[0]] == [1, 1_001, 1_002]
    assert [n for n, _, _ in placed] == [k // 70 for k in range(len(placed))]


def test_each_storage_batch_holds_the_lines_of_the_chunks_it_enqueues_when_a_list_is_split():
    vins = ultravin.generate(1_000, seed=5, now=datetime(2026, 6, 1))  # noqa: DTZ001
    rows = bulk.rows_from_list([*vins[:300], "not a vin", *vins[:40], *vins[300:]])

    items = bulk.plan_items(rows, chunk_size=50)
    batches = bulk.storage_batches(items)

    assert sorted(i.line for batch, _ in batches for i in batch) == [i.line for i in items]
    for batch, _ in batches:  # a chunk after another, each in line order
        placed = [(i.chunk_no, i.line) for i in batch if i.chunk_no is not None]
        assert placed == sorted(placed)
    assert [list(chunks) for _, chunks in batches] == [
        [0],
        [1, 2],
        [3, 4, 5, 6],
        [7, 8, 9, 10, 11, 12, 13, 14],
        [15, 16, 17, 18, 19],
    ]
    for batch, chunks in batches:
        assert {i.chunk_no for i in batch if i.chunk_no is not None} == set(chunks)
    # The lines no worker reads (the invalid one, the 40 repeats) are stored last.
    assert [i.line for i in batches[-1][0] if i.chunk_no is None] == list(range(301, 342))


def test_a_list_without_a_valid_vin_is_one_batch_of_no_chunks_when_it_is_split():
    items = bulk.plan_items([InputRow(1, "nope"), InputRow(2, "no")], chunk_size=50)

    assert bulk.storage_batches(items) == [(items, range(0))]


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


def decoded_row(line: int, vin: str) -> dict[str, object]:
    vehicle = UltravinDecoder().decode_sync(DecodeRequest(Vin.parse(vin)))
    return {"line": line, "input": vin, **vehicle.model_dump(mode="json", exclude={"raw"}), "error": None}


def error_row(line: int, text: str, error: dict[str, str]) -> dict[str, object]:
    return {"line": line, "input": text, "vin": None, "valid": False, "error": error}


async def rendered(rows: list[dict[str, object]], fmt: bulk.ResultFormat) -> str:
    async def source():
        for row in rows:
            yield row

    return "".join([piece async for piece in bulk.iter_rendered(source(), fmt)])


async def test_results_render_one_row_per_line_with_flattened_fields_when_written_as_csv():
    rows = [
        decoded_row(1, ACCORD),
        error_row(2, "nope", {"error": "invalid_vin", "message": "bad"}),
        error_row(3, TESLA, {"error": "not_decoded", "message": bulk.NOT_DECODED_CANCELLED}),
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
    rows = [decoded_row(1, ACCORD)]

    data = json.loads(await rendered(rows, "json"))

    assert data[0]["line"] == 1
    assert data[0]["vin"] == ACCORD
    assert data[0]["error"] is None
    assert json.loads(await rendered([], "json")) == []


def test_a_unix_socket_redis_url_becomes_a_socket_broker_url_when_celery_needs_one():
    assert bulk.broker_url_for("unix:///tmp/r.sock") == "redis+socket:///tmp/r.sock"
    assert bulk.broker_url_for("redis://h:6379/0") == "redis://h:6379/0"


def generated_vehicles(n: int = 2_000) -> list:
    vins = ultravin.generate(n, seed=21, now=datetime(2026, 6, 1), invalid_rate=0.3)  # noqa: DTZ001
    years = [None if i % 4 else 1995 + i % 30 for i in range(n)]
    decoder = UltravinDecoder()
    return decoder.decode_many_sync(
        [DecodeRequest(Vin.parse(v), y) for v, y in zip(vins, years, strict=True)]
    )


def awkward(vehicle: DecodedVehicle) -> DecodedVehicle:
    """The vehicle with text values that CSV quotes and COPY escapes, and an empty string."""
    return vehicle.model_copy(
        update={"model": 'Accord, "EX"\nSedan', "trim": "", "series": "Série \\ 2\t3", "doors": 0}
    )


def expected_row(line: int, vehicle: DecodedVehicle) -> dict[str, object]:
    return {
        "line": line,
        "input": vehicle.vin,
        **vehicle.model_dump(mode="json", exclude={"raw"}),
        "error": None,
    }


def stored(vehicle: DecodedVehicle, line: int = 3) -> job_repo.ItemResult:
    return job_repo.ResultRenderer().render(line, vehicle.__dict__)


def test_a_stored_result_gives_exactly_the_json_of_the_decoded_fields_when_a_job_is_read():
    vehicles = generated_vehicles()
    assert any(v.errors for v in vehicles)
    assert any(v.suggestions for v in vehicles)

    for vehicle in [*vehicles, awkward(vehicles[7])]:
        result = stored(vehicle)
        text = job_repo.result_json(3, vehicle.vin, result.cells, result.detail, None)
        assert text == json.dumps(expected_row(3, vehicle), ensure_ascii=False)


def test_stored_cells_are_the_csv_cells_postgresql_writes_when_a_job_is_read():
    vehicle = awkward(generated_vehicles(50)[7])

    cells = stored(vehicle).cells

    expected = bulk.csv_cells(expected_row(3, vehicle))[2:]  # after `line` and `input`
    assert next(csv.reader([cells])) == expected
    assert ',"",' in cells  # an empty string is quoted, as PostgreSQL's COPY tells it from NULL
    assert ",," in cells  # NULL is an empty cell
    assert '"Accord, ""EX""\nSedan"' in cells


def test_a_stored_result_keeps_the_summary_columns_when_a_line_is_decoded():
    vehicle = generated_vehicles(50)[7]

    result = stored(vehicle, line=9)

    assert (result.line, result.valid, result.error) == (9, vehicle.valid, None)
    assert (result.make, result.model_year, result.vehicle_type) == (
        vehicle.make,
        vehicle.model_year,
        vehicle.vehicle_type,
    )


def test_the_result_layout_is_the_flattened_decoded_vehicle_fields_when_a_row_is_stored():
    flattened: list[str] = []
    for name, info in DecodedVehicle.model_fields.items():
        nested = info.annotation
        if name == "raw":
            continue
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            flattened += [f"{name}_{sub}" for sub in nested.model_fields]
        else:
            flattened.append(name)

    assert tuple(flattened) == job_repo.RESULT_LAYOUT
    assert tuple(f.column for f in job_repo.RESULT_FIELDS) == job_repo.RESULT_LAYOUT
    cells = next(csv.reader([stored(generated_vehicles(50)[7]).cells]))
    assert len(cells) == len(bulk.CSV_COLUMNS) - 2  # all but `line` and `input`


def test_stored_cells_of_another_layout_are_rejected_when_they_are_read():
    cells = stored(generated_vehicles(50)[7]).cells

    for other in (cells + ",extra", cells.split(",", 1)[1], ""):
        with pytest.raises(job_repo.ResultLayoutMismatch, match="layout"):
            job_repo.result_json(3, "X", other, None, None)


def test_a_line_without_a_decode_reads_as_its_error_when_a_job_is_read():
    error = {"error": "decode_failed", "message": 'It failed, "badly".'}

    text = job_repo.result_json(4, 'in"put', None, None, json.dumps(error))

    assert json.loads(text) == error_row(4, 'in"put', error)
    assert next(csv.reader([job_repo.error_cells(error)])) == bulk.csv_cells(error_row(4, "x", error))[2:]


def test_the_trusted_build_equals_the_validated_one_when_ultravin_decodes():
    vins = ultravin.generate(3_000, seed=22, now=datetime(2026, 6, 1), invalid_rate=0.3)  # noqa: DTZ001
    rows = ultravin.decode_batch(vins)
    source = UltravinDecoder()._source

    for row in rows:
        args = (row["vin"], row["attributes"])
        trusted = vehicle_from_vpic(
            *args, check_digit_valid=row["check_digit_valid"], source=source, trusted=True
        )
        checked = vehicle_from_vpic(*args, check_digit_valid=row["check_digit_valid"], source=source)
        assert trusted == checked
        assert trusted.model_dump_json() == checked.model_dump_json()
        assert trusted.model_fields_set == checked.model_fields_set


def test_an_untrusted_attribute_map_is_validated_when_a_value_has_another_type():
    source = UltravinDecoder()._source

    with pytest.raises(ValidationError):
        vehicle_from_vpic(ACCORD, {"Make": "HONDA", "Doors": 2}, check_digit_valid=True, source=source)  # type: ignore[dict-item]
    vehicle = vehicle_from_vpic(
        ACCORD,
        {"Make": ["HONDA", "ACURA"], "Doors": "2"},
        check_digit_valid=True,
        source=source,
        trusted=True,
    )
    assert vehicle.make == "HONDA; ACURA"
    assert vehicle.raw == {"Make": ["HONDA", "ACURA"], "Doors": "2"}


def test_decode_reads_files_with_the_bulk_parser_when_given_csv_or_plain_lines():
    inputs = _Inputs()

    _read_lines(io.StringIO(f"# fleet\n{ACCORD},2003\n\n{TESLA}\n{TESLA},19\n"), 2020, inputs)

    assert (inputs.lines, inputs.texts, inputs.years) == (
        [2, 4, 5],
        [ACCORD, TESLA, TESLA],
        [2003, 2020, 2020],
    )
    with_header = _Inputs()
    _read_lines(io.StringIO(f"unit;vin;year\n1;{ACCORD};2003\n"), None, with_header)
    assert (with_header.lines, with_header.texts, with_header.years) == ([2], [ACCORD], [2003])


def test_the_chunk_runner_is_closed_once_when_a_solo_or_prefork_worker_shuts_down(
    monkeypatch: pytest.MonkeyPatch,
):
    from celery.signals import worker_process_shutdown, worker_shutdown

    from tools import worker

    class Runner:
        closed = 0

        def close(self) -> None:
            self.closed += 1

    for signal in (worker_shutdown, worker_process_shutdown):  # solo (the main process), prefork (a child)
        runner = Runner()
        monkeypatch.setitem(worker._runners, "current", runner)  # type: ignore[arg-type]

        signal.send(sender=None)
        assert runner.closed == 1
        assert "current" not in worker._runners

        worker_shutdown.send(sender=None)
        worker_process_shutdown.send(sender=None)
        assert runner.closed == 1


def vpic_rendered(renderer: job_repo.VpicRenderer, line: int, row: dict) -> job_repo.ItemResult:
    return renderer.render(
        line, row["vin"], row["attributes"], check_digit_valid=bool(row["check_digit_valid"])
    )


def vehicle_rendered(line: int, row: dict, source) -> job_repo.ItemResult:
    vehicle = vehicle_from_vpic(
        row["vin"], row["attributes"], check_digit_valid=bool(row["check_digit_valid"]), source=source
    )
    return job_repo.ResultRenderer().render(line, vehicle.__dict__)


def test_attributes_render_exactly_as_the_vehicle_does_when_a_chunk_decodes_offline():
    vins = ultravin.generate(4_000, seed=24, now=datetime(2026, 6, 1), invalid_rate=0.3)  # noqa: DTZ001
    years = [None if i % 3 else 1981 + i % 47 for i in range(len(vins))]  # some hints out of range
    rows = ultravin.decode_batch(vins, years=years)
    decoder = UltravinDecoder()
    renderer = job_repo.VpicRenderer(decoder.source)
    assert any(not r["check_digit_valid"] for r in rows)
    assert any(r["attributes"].get("Suggested VIN") for r in rows)

    for line, row in enumerate(rows, start=1):
        expected = vehicle_rendered(line, row, decoder.source)
        assert vpic_rendered(renderer, line, row) == expected
        assert vpic_rendered(renderer, line, row) == expected  # and again, from the memos

    fallback = UltravinDecoder()
    fallback._source = DecodeSource(provider="offline", fallback=True, fallback_reason='down, "timeout"')
    row = rows[5]
    assert vpic_rendered(job_repo.VpicRenderer(fallback.source), 5, row) == vehicle_rendered(
        5, row, fallback.source
    )


def test_each_value_of_a_nested_field_is_read_from_its_own_variable_alone():
    # VpicRenderer renders transmission, engine and plant cells a variable at a time.
    rows = ultravin.decode_batch(ultravin.generate(300, seed=26, now=datetime(2026, 6, 1)))  # noqa: DTZ001
    nested = [f for f in VPIC_FIELDS if len(f.variables) > 1]
    assert {f.name for f in nested} == {"transmission", "engine", "plant"}
    for field in nested:
        for row in rows:
            raw = tuple(map(row["attributes"].get, field.variables))
            alone = [
                list(field.read(tuple(v if j == i else None for j in range(len(raw)))).__dict__.values())[i]
                for i, v in enumerate(raw)
            ]
            assert alone == list(field.read(raw).__dict__.values())


def test_awkward_attribute_values_render_as_the_vehicle_does_when_read_straight_from_vpic():
    rows = ultravin.decode_batch(ultravin.generate(40, seed=25, now=datetime(2026, 6, 1)))  # noqa: DTZ001
    source = UltravinDecoder().source
    renderer = job_repo.VpicRenderer(source)
    awkward_values: list[dict[str, object]] = [
        {"Model": 'Accord, "EX"\nSedan', "Trim": "  ", "Series": "Série \\ 2\t3", "Doors": "0"},
        {"Make": "", "Engine Brake (hp) From": "150.5", "Displacement (L)": "1.99999", "Turbo": "Yes"},
        {"Make": ["HONDA", "ACURA"], "Plant City": ["A", "B, C"]},  # lists: read the vehicle's way
        {"Error Code": "1,14", "Error Text": '1 - Check "digit"; 14 - Partial, data', "Suggested VIN": "X"},
        {"Error Code": "", "Error Text": "", "Suggested VIN": "1HGCM82633A00435!"},
        {"Model Year": "not a year", "Doors": "-2", "Transmission Speeds": "6.6"},
    ]
    for line, (row, changes) in enumerate(zip(rows, awkward_values, strict=False), start=1):
        changed = {**row, "attributes": {**row["attributes"], **changes}}
        assert vpic_rendered(renderer, line, changed) == vehicle_rendered(line, changed, source)
    missing = {**rows[-1], "attributes": {"Make": "HONDA"}}
    assert vpic_rendered(renderer, 9, missing) == vehicle_rendered(9, missing, source)
