"""Hypothesis on the marshmallow schemas: any JSON value fails only with ValidationError, and
whatever they accept maps to valid FHIR (a record that gets in never becomes a 500 later)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

import mappings
from mappings.context import FhirVersion, MappingContext
from service.schemas import RecordKind, dump_record, load_records
from tests.api.samples import DIARY_ENTRY, INFUSION
from tests.fuzz.strategies import EDGE_TIMES

# Python's json (and so Flask's get_json) also reads NaN and Infinity: they are JSON values to us.
# Text that is only whitespace, control characters or lone surrogates: valid JSON strings that
# are not valid FHIR strings, rare in st.text() yet what broke us before.
ODD_TEXT = st.text(
    alphabet=st.characters(categories=("Zs", "Zl", "Zp", "Cc", "Cs")), min_size=1, max_size=4
)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | ODD_TEXT
    | EDGE_TIMES
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4)
    ),
    max_leaves=12,
)
SAMPLES = {RecordKind.DIARY_ENTRY: DIARY_ENTRY, RecordKind.INFUSION: INFUSION}
FUZZ = settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place inside a JSON value where another value could go."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replaced(record: dict[str, Any], path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    result = copy.deepcopy(record)
    target = result
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return result


@st.composite
def near_valid(draw: st.DrawFn, kind: RecordKind) -> Any:
    """A valid sample with one value anywhere (or one new key) replaced by any JSON value."""
    sample = SAMPLES[kind]
    paths = _paths(sample)
    if draw(st.booleans()):
        path = draw(st.sampled_from(paths))
        # A string is most often replaced by another string, the odd ones included.
        values = (
            ODD_TEXT | EDGE_TIMES | st.text() | JSON_VALUES
            if isinstance(_at(sample, path), str)
            else JSON_VALUES
        )
        return _replaced(sample, path, draw(values))
    parents = [p for p in paths if isinstance(_at(sample, p), dict)]
    path = (*draw(st.sampled_from(parents)), draw(st.text(max_size=20)))
    return _replaced(sample, path, draw(JSON_VALUES))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _load_and_map(payload: Any, kind: RecordKind) -> None:
    try:
        records = load_records(payload, kind)
    except ValidationError:
        return
    for version in FhirVersion:
        ctx = MappingContext(app_namespace="fuzz-app", source="urn:fuzz", fhir_version=version)
        resources = mappings.to_resources(records, ctx)  # raises InvalidResource on bad FHIR
        assert resources
    for record in records:
        assert load_records(dump_record(record), kind) == [record]  # what got in dumps back in


@given(kind=st.sampled_from(list(RecordKind)), payload=JSON_VALUES)
@FUZZ
def test_any_json_value_fails_only_with_validation_error(kind: RecordKind, payload: Any) -> None:
    _load_and_map(payload, kind)


@given(data=st.data(), kind=st.sampled_from(list(RecordKind)))
@FUZZ
def test_near_valid_records_are_refused_cleanly_or_map_to_valid_fhir(
    data: st.DataObject, kind: RecordKind
) -> None:
    _load_and_map(data.draw(near_valid(kind)), kind)


@given(data=st.data(), kind=st.sampled_from(list(RecordKind)))
@FUZZ
def test_lists_of_near_valid_records(data: st.DataObject, kind: RecordKind) -> None:
    payload = data.draw(st.lists(near_valid(kind), min_size=1, max_size=3))
    _load_and_map(payload, kind)
