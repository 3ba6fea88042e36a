"""The R4 <-> R5 table: version detection and unsupported versions."""

from __future__ import annotations

import pytest

from mappings import record_to_resources
from mappings.context import FhirVersion, MappingContext
from mappings.errors import UnsupportedVersion
from mappings.versions import SHAPES, adverse_event_shape, detect_version, shape
from tests.unit.mappings.samples import INFUSION, ctx


def test_table_covers_every_version() -> None:
    assert set(SHAPES) == set(FhirVersion)
    assert shape(FhirVersion.R5).occurrence_prefix == "occurence"  # R5 spells it so
    assert shape(FhirVersion.R4).occurrence_prefix == "effective"


@pytest.mark.parametrize("version", [FhirVersion.R4, FhirVersion.R5])
def test_detects_the_version_it_wrote(version: FhirVersion) -> None:
    ma, premed, step, *_, event = record_to_resources(INFUSION, ctx(version))
    assert detect_version(ma) == version
    assert detect_version(premed) == version
    assert detect_version(step) == version
    assert event["resourceType"] == "AdverseEvent" and detect_version(event) == version


def test_adverse_event_shapes_differ_where_r5_changed() -> None:
    r4, r5 = adverse_event_shape(FhirVersion.R4), adverse_event_shape(FhirVersion.R5)
    assert (r4.event, r5.event) == ("event", "code")
    assert (r4.occurrence, r5.occurrence) == ("date", "occurrenceDateTime")
    assert (r4.severity, r5.severity) == (True, False)  # R5 dropped AdverseEvent.severity
    assert (r4.status, r5.status) == (None, "completed")  # R5 requires status
    assert (r4.supporting, r5.supporting) == ("subjectMedicalHistory", "supportingInfo")
    with pytest.raises(UnsupportedVersion):
        adverse_event_shape("R6")  # type: ignore[arg-type]


def test_unsupported_version() -> None:
    bad = MappingContext("a", "b", "R6")  # type: ignore[arg-type]
    with pytest.raises(UnsupportedVersion, match="R6"):
        record_to_resources(INFUSION, bad)
