"""Output compared with the committed golden Bundles (R4 and R5), each resource validated."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mappings import from_resources
from mappings.context import FhirVersion
from mappings.validate import check
from tests.golden.cases import CASES
from tests.golden.golden import VERSIONS, bundle, path, records_json

# Paths whose values may differ between runs. None: ids are uuid5 of business identifiers and
# the mapping adds no timestamps. Named here so a future volatile field has one place to go.
VOLATILE_PATHS: tuple[tuple[str, ...], ...] = ()

PARAMS = [(case, version) for case in CASES for version in VERSIONS]


def without_volatile(data: Any) -> Any:
    for volatile in VOLATILE_PATHS:
        for entry in data.get("entry", []):
            node = entry
            for step in volatile[:-1]:
                node = node.get(step, {})
            node.pop(volatile[-1], None)
    return data


def load(case: str, what: str) -> Any:
    return json.loads(path(case, what).read_text("utf-8"))


@pytest.mark.parametrize(("case", "version"), PARAMS)
def test_output_equals_golden_bundle(case: str, version: FhirVersion) -> None:
    expected = without_volatile(load(case, f"{version.value}.bundle"))
    actual = without_volatile(json.loads(json.dumps(bundle(CASES[case], version, case))))
    assert actual == expected, "run `python -m tests.golden.regenerate` and review the diff"


@pytest.mark.parametrize("case", list(CASES))
def test_golden_records_file_matches_the_cases(case: str) -> None:
    assert load(case, "records") == records_json(CASES[case])


@pytest.mark.parametrize(("case", "version"), PARAMS)
def test_every_golden_resource_is_valid(case: str, version: FhirVersion) -> None:
    for entry in load(case, f"{version.value}.bundle")["entry"]:
        assert check(entry["resource"], version) is None, entry["fullUrl"]


@pytest.mark.parametrize(("case", "version"), PARAMS)
def test_golden_bundle_maps_back_to_the_records(case: str, version: FhirVersion) -> None:
    resources = [e["resource"] for e in load(case, f"{version.value}.bundle")["entry"]]
    assert from_resources(resources) == list(CASES[case])


def test_the_cases_are_what_the_golden_files_promise() -> None:
    week = CASES["diary_week"]
    assert len(week) == 7 and len({e.patient for e in week}) == 1
    course = CASES["ivig_two_days"]
    assert len(course) == 2 and all(len(r.rate_steps) > 1 for r in course)
    assert any(r.adverse_reactions for r in course)
