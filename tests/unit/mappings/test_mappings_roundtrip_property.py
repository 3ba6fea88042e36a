"""Property: from_resources(to_resources([r], ctx)) == [r] for every record, in R4 and R5."""

from __future__ import annotations

import json
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings import from_resources, to_resources
from mappings.context import FhirVersion, MappingContext
from mappings.records import DiaryEntry, InfusionRecord
from tests.unit.mappings.strategies import diary_entries, infusion_records

PROPERTY = settings(
    max_examples=int(os.environ.get("MAPPINGS_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
VERSIONS = [FhirVersion.R4, FhirVersion.R5]


def ctx(version: FhirVersion) -> MappingContext:
    return MappingContext("prop-app", "https://prop-app.example/diary", version)


@pytest.mark.parametrize("version", VERSIONS)
@PROPERTY
@given(entry=diary_entries())
def test_diary_entry_round_trips(version: FhirVersion, entry: DiaryEntry) -> None:
    resources = to_resources([entry], ctx(version))
    assert from_resources(resources) == [entry]


@pytest.mark.parametrize("version", VERSIONS)
@PROPERTY
@given(record=infusion_records())
def test_infusion_record_round_trips(version: FhirVersion, record: InfusionRecord) -> None:
    resources = to_resources([record], ctx(version))
    assert from_resources(resources) == [record]


@pytest.mark.parametrize("version", VERSIONS)
@PROPERTY
@given(entry=diary_entries(), record=infusion_records())
def test_round_trip_survives_json_wire_format(
    version: FhirVersion, entry: DiaryEntry, record: InfusionRecord
) -> None:
    wire = json.loads(json.dumps(to_resources([entry, record], ctx(version))))
    assert from_resources(wire) == [entry, record]


@PROPERTY
@given(entry=diary_entries())
def test_offsets_are_kept_on_the_wire(entry: DiaryEntry) -> None:
    resources = to_resources([entry], ctx(FhirVersion.R4))
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    for obs in observations:
        assert obs["effectiveDateTime"] == entry.recorded_at.isoformat()
        assert obs["effectiveDateTime"][-6:] == entry.recorded_at.isoformat()[-6:]


@pytest.mark.parametrize("version", VERSIONS)
@PROPERTY
@given(record=infusion_records(), shuffle=st.randoms(use_true_random=False))
def test_infusion_round_trips_in_any_resource_order(
    version: FhirVersion, record: InfusionRecord, shuffle: random.Random
) -> None:
    """A server returns the steps, symptoms and AdverseEvent in any order."""
    resources = to_resources([record], ctx(version))
    shuffle.shuffle(resources)
    assert from_resources(resources) == [record]
    steps = [r for r in resources if "rate-step-" in json.dumps(r.get("identifier"))]
    assert len(steps) == len(record.rate_steps)
    events = [r for r in resources if r["resourceType"] == "AdverseEvent"]
    assert len(events) == (1 if record.adverse_reactions else 0)
