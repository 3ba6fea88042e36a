"""The R4 <-> R5 table: version detection and unsupported versions."""

from __future__ import annotations

import pytest

from mappings import record_to_resources
from mappings.context import FhirVersion, MappingContext
from mappings.errors import UnsupportedVersion
from mappings.versions import SHAPES, detect_version, shape
from tests.unit.mappings.samples import INFUSION, ctx


def test_table_covers_every_version() -> None:
    assert set(SHAPES) == set(FhirVersion)
    assert shape(FhirVersion.R5).occurrence_prefix == "occurence"  # R5 spells it so
    assert shape(FhirVersion.R4).occurrence_prefix == "effective"


@pytest.mark.parametrize("version", [FhirVersion.R4, FhirVersion.R5])
def test_detects_the_version_it_wrote(version: FhirVersion) -> None:
    ma, premed, _reaction = record_to_resources(INFUSION, ctx(version))
    assert detect_version(ma) == version
    assert detect_version(premed) == version


def test_unsupported_version() -> None:
    bad = MappingContext("a", "b", "R6")  # type: ignore[arg-type]
    with pytest.raises(UnsupportedVersion, match="R6"):
        record_to_resources(INFUSION, bad)
