"""Hypothesis on the readers: any text as a JSON array, NDJSON or CSV import file gives each item
a position and problems, or a record; it never raises (a crash would stop a whole import). The
API's JSON reader answers a value or a ValueError (a 400 or 422), never anything else."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import json_input
from service.exports.csv_columns import DIARY_COLUMNS, header
from service.imports import KindChoice, read_items
from service.imports.validate import check_item
from tests.api.samples import DIARY_ENTRY, INFUSION
from tests.fuzz.strategies import EDGE_TIMES
from tests.fuzz.test_schemas_fuzz import JSON_VALUES, ODD_TEXT

FUZZ = settings(
    max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
NAMES = {"json": "in.json", "ndjson": "in.ndjson", "csv": "in.csv", "unknown": "in"}


def read_all(text: str, name: str) -> list[Any]:
    fmt, items = read_items(io.StringIO(text), name, None)
    results = [check_item(item, KindChoice.AUTO, fmt) for item in items]
    for result in results:
        assert result.position  # every problem can be found in the file
        assert (result.record is None) == bool(result.problems)
    return results


def near_valid_record(draw: st.DrawFn) -> dict[str, Any]:
    record = dict(draw(st.sampled_from([DIARY_ENTRY, INFUSION])))
    key = draw(st.sampled_from(sorted(record)))
    time_key = "recorded_at" if "recorded_at" in record else "start"
    replacement = draw(st.one_of(EDGE_TIMES, ODD_TEXT, JSON_VALUES))
    if draw(st.booleans()):
        record[time_key] = draw(EDGE_TIMES)
    else:
        record[key] = replacement
    return record


@st.composite
def json_files(draw: st.DrawFn) -> str:
    records = [near_valid_record(draw) for _ in range(draw(st.integers(1, 3)))]
    text = json.dumps(records) if draw(st.booleans()) else "\n".join(map(json.dumps, records))
    if draw(st.booleans()):  # cut anywhere, or something glued on
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.text(max_size=10))
    return text


@st.composite
def csv_files(draw: st.DrawFn) -> str:
    columns = header(DIARY_COLUMNS)
    chosen = draw(st.lists(st.sampled_from(columns), min_size=1, max_size=8, unique=True))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(chosen)
    cell = st.one_of(EDGE_TIMES, st.text(max_size=12), ODD_TEXT, st.integers().map(str))
    for _ in range(draw(st.integers(0, 3))):
        width = len(chosen) + draw(st.sampled_from([0, 0, 0, -1, 1]))
        writer.writerow([draw(cell) for _ in range(max(width, 0))])
    return out.getvalue()


@given(text=st.text(max_size=200), name=st.sampled_from(sorted(NAMES.values())))
@FUZZ
def test_any_text_in_any_format_is_read_without_a_crash(text: str, name: str) -> None:
    read_all(text, name)


@given(text=json_files(), name=st.sampled_from([NAMES["json"], NAMES["ndjson"], NAMES["unknown"]]))
@FUZZ
def test_near_valid_json_and_ndjson_files(text: str, name: str) -> None:
    read_all(text, name)


@given(text=csv_files())
@FUZZ
def test_near_valid_csv_files(text: str) -> None:
    read_all(text, NAMES["csv"])


@given(
    data=st.binary(max_size=200)
    | st.integers(1, 200).map(lambda n: b"[" * n + b"]" * n)
    | st.integers(1, 200).map(lambda n: b'{"a":' * n + b"1" + b"}" * n)
)
@FUZZ
def test_the_api_json_reader_answers_a_value_or_a_value_error(data: bytes) -> None:
    try:
        value = json_input.loads(data)
    except json_input.JsonTooDeep:  # a 422 naming the depth
        assert data.count(b"[") + data.count(b"{") > json_input.MAX_DEPTH
        return
    except ValueError:  # JSONDecodeError, UnicodeDecodeError: a 400
        return
    assert value is None or isinstance(value, dict | list | str | int | float)
