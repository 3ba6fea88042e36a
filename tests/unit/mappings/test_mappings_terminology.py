"""Our local CodeSystems as FHIR resources: valid R4, every local code defined once, MG-ADL
described as the instrument it is (items 0-3, total 0-24, 7-day recall vs a daily diary)."""

from __future__ import annotations

from fhir.resources.R4B import get_fhir_model_class

from mappings import code_tables
from mappings.terminology import code_system, code_systems


def test_each_codesystem_is_valid_r4() -> None:
    model = get_fhir_model_class("CodeSystem")
    for cs in code_systems():
        model.model_validate(cs)
        assert cs["count"] == len(cs["concept"])
        assert cs["status"] == "active" and cs["content"] == "complete"


def test_every_local_code_is_defined_in_the_codesystem_of_its_system() -> None:
    by_url = {cs["url"]: {c["code"]: c for c in cs["concept"]} for cs in code_systems()}
    for entries in code_tables.table("local").sections.values():
        for entry in entries.values():
            concept = by_url[entry.system][entry.code]
            assert concept["display"] == entry.display


def test_ids_are_the_last_url_segment_and_urls_are_todays_systems() -> None:
    ids = {cs["id"]: cs["url"] for cs in code_systems()}
    assert ids == {
        "mg-diary": "https://diarybridge.dev/fhir/CodeSystem/mg-diary",
        "venous-access": "https://diarybridge.dev/fhir/CodeSystem/venous-access",
        "provenance": "https://diarybridge.dev/fhir/CodeSystem/provenance",
        "care-team-signal": "https://diarybridge.dev/fhir/CodeSystem/care-team-signal",
    }


def test_mg_adl_is_described_with_its_ranges_and_recall() -> None:
    cs = code_system("mg-diary")
    assert cs is not None
    concepts = {c["code"]: c for c in cs["concept"]}
    assert "0-24" in concepts["mg-adl-total"]["definition"]
    assert "7-day recall" in concepts["mg-adl-total"]["definition"]
    for item in ("mg-adl-talking", "mg-adl-breathing", "mg-adl-eyelid-droop"):
        assert "0 (normal) to 3" in concepts[item]["definition"]
        assert "7-day recall" in concepts[item]["definition"]
    assert "7 days" in cs["description"] and "daily diary" in cs["description"]
    assert "not an address a reader can resolve" in cs["description"]


def test_unknown_id_is_none() -> None:
    assert code_system("no-such-system") is None
