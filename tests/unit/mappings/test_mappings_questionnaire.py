"""The MG-ADL also as a QuestionnaireResponse (SDC), by setting; the Observation stays."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from hypothesis import given

from mappings import from_resources, to_resources
from mappings.context import FhirVersion, MappingContext
from mappings.errors import InvalidInput
from mappings.questionnaire import mg_adl_canonical, mg_adl_questionnaire
from mappings.records import MG_ADL_ITEMS, DiaryEntry, MgAdl
from mappings.validate import check
from tests.unit.mappings.samples import ENTRY, NS, SOURCE
from tests.unit.mappings.strategies import diary_entries
from tests.unit.mappings.test_mappings_roundtrip_property import PROPERTY

VERSIONS = [FhirVersion.R4, FhirVersion.R5]
LOCAL = "https://diarybridge.dev/fhir/CodeSystem/mg-diary"


def sdc(version: FhirVersion) -> MappingContext:
    return MappingContext(NS, SOURCE, version, mg_adl_questionnaire_response=True)


def by_type(resources: list[dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["resourceType"] == resource_type]


def mg_adl_observation(resources: list[dict[str, Any]]) -> dict[str, Any]:
    (obs,) = [
        r
        for r in by_type(resources, "Observation")
        if r["code"]["coding"][0]["code"] == "mg-adl-total"
    ]
    return obs


def test_the_observation_alone_is_the_default() -> None:
    resources = to_resources([ENTRY], MappingContext(NS, SOURCE))
    assert by_type(resources, "QuestionnaireResponse") == []
    assert "derivedFrom" not in mg_adl_observation(resources)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_response_answers_every_item_and_the_observation_derives_from_it(
    version: FhirVersion,
) -> None:
    assert ENTRY.mg_adl is not None
    resources = to_resources([ENTRY], sdc(version))  # validated by fhir.resources (R4B / R5)
    (qr,) = by_type(resources, "QuestionnaireResponse")
    assert qr["questionnaire"] == "https://diarybridge.dev/fhir/Questionnaire/mg-adl|1"
    assert qr["status"] == "completed"
    assert qr["authored"] == ENTRY.recorded_at.isoformat()
    assert qr["subject"] == {"reference": "Patient/synthetic-mg-001"} == qr["author"]
    answers = {i["linkId"]: i["answer"][0]["valueInteger"] for i in qr["item"]}
    assert answers == {
        **{item: getattr(ENTRY.mg_adl, item) for item in MG_ADL_ITEMS},
        "total": ENTRY.mg_adl.total,
    }
    assert mg_adl_observation(resources)["derivedFrom"] == [
        {"reference": f"QuestionnaireResponse/{qr['id']}"}
    ]
    # QuestionnaireResponse.identifier is 0..1 in R4, 0..* in R5
    identifier = qr["identifier"] if version == FhirVersion.R4 else qr["identifier"][0]
    assert isinstance(qr["identifier"], dict if version == FhirVersion.R4 else list)
    assert identifier["value"] == f"diary-entry/{ENTRY.entry_id}/mg-adl-response"
    assert check(qr, version) is None


@pytest.mark.parametrize("version", VERSIONS)
def test_the_questionnaire_is_valid_and_matches_the_item_codes(version: FhirVersion) -> None:
    q = mg_adl_questionnaire()
    assert check(q, version) is None
    assert q["url"].startswith("https://diarybridge.dev/fhir/")
    assert mg_adl_canonical() == f"{q['url']}|{q['version']}"
    assert [i["linkId"] for i in q["item"]] == [*MG_ADL_ITEMS, "total"]
    codes = {i["linkId"]: (i["code"][0]["system"], i["code"][0]["code"]) for i in q["item"]}
    assert codes["breathing"] == (LOCAL, "mg-adl-breathing")
    assert codes["brushing_teeth_or_combing_hair"] == (
        LOCAL, "mg-adl-brushing-teeth-or-combing-hair",
    )  # fmt: skip
    assert codes["total"] == (LOCAL, "mg-adl-total")
    # the same codes as the Observation's components
    obs = mg_adl_observation(to_resources([ENTRY], MappingContext(NS, SOURCE, version)))
    components = [(c["code"]["coding"][0]["system"], c["code"]["coding"][0]["code"])
                  for c in obs["component"]]  # fmt: skip
    assert components == [codes[item] for item in MG_ADL_ITEMS]


@pytest.mark.parametrize("version", VERSIONS)
def test_either_the_observation_or_the_response_gives_the_mg_adl_back(
    version: FhirVersion,
) -> None:
    resources = to_resources([ENTRY], sdc(version))
    assert from_resources(resources) == [ENTRY]
    without_observation = [r for r in resources if r is not mg_adl_observation(resources)]
    assert from_resources(without_observation) == [ENTRY]
    only_observation = by_type(resources, "Observation") + by_type(
        resources, "MedicationAdministration"
    )
    assert from_resources(only_observation) == [ENTRY]


def test_a_response_that_disagrees_with_the_observation_is_refused() -> None:
    resources = copy.deepcopy(to_resources([ENTRY], sdc(FhirVersion.R4)))
    (qr,) = by_type(resources, "QuestionnaireResponse")
    breathing = next(i for i in qr["item"] if i["linkId"] == "breathing")
    total = next(i for i in qr["item"] if i["linkId"] == "total")
    breathing["answer"][0]["valueInteger"] += 1
    total["answer"][0]["valueInteger"] += 1
    with pytest.raises(InvalidInput, match="disagree"):
        from_resources(resources)
    total["answer"][0]["valueInteger"] += 1  # now the total no longer matches the items
    with pytest.raises(InvalidInput, match="total"):
        from_resources([r for r in resources if r["resourceType"] == "QuestionnaireResponse"])


def test_an_entry_without_mg_adl_sends_no_response() -> None:
    entry = dataclasses.replace(ENTRY, mg_adl=None)
    assert by_type(to_resources([entry], sdc(FhirVersion.R4)), "QuestionnaireResponse") == []


@pytest.mark.parametrize("version", VERSIONS)
@PROPERTY
@given(entry=diary_entries())
def test_diary_entries_round_trip_through_the_response(
    version: FhirVersion, entry: DiaryEntry
) -> None:
    resources = to_resources([entry], sdc(version))
    assert from_resources(resources) == [entry]
    if entry.mg_adl is not None:
        response_only = [r for r in resources if r is not mg_adl_observation(resources)]
        back = from_resources(response_only)
        assert [e.mg_adl for e in back] == [entry.mg_adl]
        assert isinstance(back[0].mg_adl, MgAdl)
