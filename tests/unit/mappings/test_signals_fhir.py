"""Signals as FHIR: Flag + DetectedIssue, deterministic ids, evidence pointing at our resources."""

from __future__ import annotations

from mappings import record_to_resources
from mappings.context import FhirVersion, MappingContext
from mappings.records import PatientRef
from mappings.signals import evaluate
from mappings.signals.fhir import signal_to_resources
from mappings.validate import check
from tests.unit.mappings.signal_courses import bulbar_flare, ivig_flu, recovery

CTX = MappingContext("mg-diary-app", "urn:diarybridge:client:mg-diary-app")
SYSTEM = "https://diarybridge.dev/fhir/sid/mg-diary-app"
SIGNAL_SYSTEM = "https://diarybridge.dev/fhir/CodeSystem/care-team-signal"


def _by_rule(records: list, ctx: MappingContext = CTX) -> dict[str, list[dict]]:
    return {s.rule.id: signal_to_resources(s, ctx) for s in evaluate(records)}


def test_an_active_danger_sign_is_an_active_clinical_flag_with_a_local_code() -> None:
    flag, issue = _by_rule(bulbar_flare())["danger_sign"]
    assert flag["resourceType"] == "Flag" and flag["status"] == "active"
    assert flag["category"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/flag-category",
        "code": "clinical",
        "display": "Clinical",
    }
    assert flag["code"]["coding"][0]["system"] == SIGNAL_SYSTEM
    assert flag["code"]["coding"][0]["code"] == "danger-sign"
    assert "not a diagnosis" in flag["code"]["text"]
    assert flag["subject"] == {"reference": "Patient/synthetic-signals-001"}
    assert "end" not in flag["period"]
    assert issue["resourceType"] == "DetectedIssue" and issue["status"] == "preliminary"
    assert issue["severity"] == "high" and issue["patient"] == flag["subject"]
    assert "not a diagnosis" in issue["detail"]


def test_every_rule_has_its_own_code() -> None:
    codes = {
        rule: resources[0]["code"]["coding"][0]["code"]
        for records in (bulbar_flare(), ivig_flu())
        for rule, resources in _by_rule(records).items()
    }
    assert codes == {
        "danger_sign": "danger-sign",
        "worsening": "worsening",
        "infusion_reaction": "infusion-reaction",
    }


def test_evidence_points_at_the_observations_the_diary_mapping_sends() -> None:
    records = bulbar_flare()
    _, issue = _by_rule(records)["danger_sign"]
    details = issue["evidence"][0]["detail"]
    values = {d["identifier"]["value"] for d in details}
    assert values == {
        "diary-entry/D-21.5/mg-adl",
        "diary-entry/D-22.5/mg-adl",
        "diary-entry/D-22.5/symptom-shortness_of_breath",
    }
    assert {d["type"] for d in details} == {"Observation"}
    # The same identifiers are on the Observations we push for those entries.
    sent = {
        ident["value"]
        for record in records[-2:]
        for resource in record_to_resources(record, CTX)
        for ident in resource["identifier"]
    }
    assert values <= sent
    assert all(d["identifier"]["system"] == SYSTEM for d in details)


def test_a_reaction_points_at_the_infusions_medication_administration() -> None:
    _, issue = _by_rule(ivig_flu())["infusion_reaction"]
    details = issue["evidence"][0]["detail"]
    administration = [d for d in details if d["type"] == "MedicationAdministration"]
    assert [d["identifier"]["value"] for d in administration] == ["infusion/I-28/administration"]


def test_a_known_server_id_makes_the_reference_literal() -> None:
    (signal, *_) = evaluate(bulbar_flare())
    known = {("diary-entry", "D-21.5", "mg-adl"): "obs-123"}
    _, issue = signal_to_resources(signal, CTX, known)
    literal = [d["reference"] for d in issue["evidence"][0]["detail"] if "reference" in d]
    assert literal == ["Observation/obs-123"]


def test_resolving_keeps_the_ids_and_makes_the_flag_inactive() -> None:
    open_flag, open_issue = _by_rule(bulbar_flare())["danger_sign"]
    flag, issue = _by_rule(recovery())["danger_sign"]
    assert (flag["id"], issue["id"]) == (open_flag["id"], open_issue["id"])
    assert flag["identifier"] == open_flag["identifier"]
    assert flag["status"] == "inactive" and flag["period"]["end"].startswith("2026-01-28")
    assert issue["status"] == "final" and "identifiedPeriod" in issue


def test_two_patients_with_equal_record_ids_get_different_resources() -> None:
    other = PatientRef(reference="Patient/synthetic-signals-002")
    mine = _by_rule(bulbar_flare())["danger_sign"]
    theirs = _by_rule(bulbar_flare(other))["danger_sign"]
    assert mine[0]["id"] != theirs[0]["id"] and mine[1]["id"] != theirs[1]["id"]


def test_r5_names_the_patient_subject_and_both_versions_validate() -> None:
    r5 = MappingContext(CTX.app_namespace, CTX.source, FhirVersion.R5)
    for ctx in (CTX, r5):
        for resources in _by_rule(recovery(), ctx).values():
            for resource in resources:
                assert check(resource, ctx.fhir_version) is None
    _, issue = _by_rule(bulbar_flare(), r5)["danger_sign"]
    assert "subject" in issue and "patient" not in issue


def test_with_per_patient_record_ids_evidence_and_signals_share_the_patients_id_space() -> None:
    scoped = MappingContext(CTX.app_namespace, CTX.source, patient_scope="Patient/synthetic-1")
    records = bulbar_flare()
    flag, issue = _by_rule(records, scoped)["danger_sign"]
    values = {d["identifier"]["value"] for d in issue["evidence"][0]["detail"]}
    sent = {
        ident["value"]
        for record in records[-2:]
        for resource in record_to_resources(record, scoped)
        for ident in resource["identifier"]
    }
    assert values <= sent and all(v.startswith("patient/") for v in values)
    assert flag["identifier"][0]["value"].startswith("patient/")
    assert flag["id"] != _by_rule(records)["danger_sign"][0]["id"]
