"""The canonical base of our local CodeSystems is a deployment setting: the default keeps
every system, identifier and id of today (nothing on a server is orphaned); another base moves
only local coding systems, and resources under either base read back alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

import mappings
from mappings import canonical
from mappings.context import FhirVersion
from mappings.terminology import code_systems
from service.config import ConfigError, Settings
from tests.unit.mappings.samples import ENTRY, INFUSION, ctx

TODAY = "https://diarybridge.dev/fhir"
CLINIC = "https://terminology.clinic.example/fhir"


@pytest.fixture
def clinic_base() -> Iterator[str]:
    canonical.configure(CLINIC)
    try:
        yield CLINIC
    finally:
        canonical.configure(TODAY)


def _strings(value: Any, key: str) -> list[str]:
    """Every string under `key` anywhere in the JSON."""
    if isinstance(value, list):
        return [s for v in value for s in _strings(v, key)]
    if not isinstance(value, dict):
        return []
    own = [value[key]] if isinstance(value.get(key), str) else []
    return own + [s for v in value.values() for s in _strings(v, key)]


def test_the_default_base_is_todays_value() -> None:
    assert canonical.DEFAULT_CANONICAL_BASE == TODAY
    assert Settings.from_env({}).canonical_base == TODAY
    assert canonical.configured() == TODAY


@pytest.mark.parametrize("version", list(FhirVersion))
def test_default_output_keeps_todays_systems_identifiers_and_ids(version: FhirVersion) -> None:
    resources = mappings.to_resources([ENTRY, INFUSION], ctx(version))
    explicit = mappings.to_resources([ENTRY, INFUSION], replace(ctx(version), canonical_base=TODAY))
    assert resources == explicit
    systems = _strings(resources, "system")
    local = [s for s in systems if "diarybridge" in s]
    assert local and all(s.startswith(TODAY + "/") for s in local)
    assert any(s.startswith(TODAY + "/CodeSystem/") for s in systems)
    assert any(s == TODAY + "/sid/mg-diary-app" for s in systems)


@pytest.mark.parametrize("version", list(FhirVersion))
def test_another_base_moves_only_local_coding_systems(version: FhirVersion) -> None:
    default = mappings.to_resources([ENTRY, INFUSION], ctx(version))
    moved = mappings.to_resources([ENTRY, INFUSION], replace(ctx(version), canonical_base=CLINIC))
    assert [r["id"] for r in moved] == [r["id"] for r in default]
    assert [r["identifier"] for r in moved] == [r["identifier"] for r in default]
    assert _strings(moved, "url") == _strings(default, "url")  # extension urls stay
    text = json.dumps(moved)
    assert TODAY + "/CodeSystem/" not in text
    assert text.count(CLINIC + "/CodeSystem/") == json.dumps(default).count(TODAY + "/CodeSystem/")
    assert json.loads(text.replace(CLINIC + "/CodeSystem/", TODAY + "/CodeSystem/")) == default


def test_resources_under_either_base_read_back_under_a_configured_base(clinic_base: str) -> None:
    moved = mappings.to_resources([ENTRY, INFUSION], ctx())  # ctx takes the configured base
    assert CLINIC + "/CodeSystem/" in json.dumps(moved)
    old = mappings.to_resources([ENTRY, INFUSION], replace(ctx(), canonical_base=TODAY))
    assert mappings.from_resources(moved) == [ENTRY, INFUSION]
    assert mappings.from_resources(old) == [ENTRY, INFUSION]  # already on servers: still ours


def test_codesystems_follow_the_base(clinic_base: str) -> None:
    urls = {cs["url"] for cs in code_systems()}
    ours = ("mg-diary", "venous-access", "provenance", "care-team-signal")
    assert urls == {f"{CLINIC}/CodeSystem/{i}" for i in ours}
    assert all("not an address" not in cs["description"] for cs in code_systems())
    assert all("not an address" in cs["description"] for cs in code_systems(TODAY))


@pytest.mark.parametrize(
    "base",
    [CLINIC, "urn:diarybridge:clinic-7", "http://localhost:8080/fhir", "https://x.example"],
)
def test_valid_bases(base: str) -> None:
    assert canonical.check_base(base) == base
    assert Settings.from_env({"DIARYBRIDGE_CANONICAL_BASE": base}).canonical_base == base


@pytest.mark.parametrize(
    "base", [CLINIC + "/", "ftp://x.example/fhir", "https://x.example/a b", "fhir", "urn:"]
)
def test_invalid_bases_are_refused_naming_the_variable(base: str) -> None:
    with pytest.raises(ValueError):
        canonical.check_base(base)
    with pytest.raises(ConfigError, match="DIARYBRIDGE_CANONICAL_BASE"):
        Settings.from_env({"DIARYBRIDGE_CANONICAL_BASE": base})
