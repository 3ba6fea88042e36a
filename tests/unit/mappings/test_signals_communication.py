"""The optional Communication to the care team: one per signal, about its Flag, valid R4 and R5."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mappings.context import FhirVersion, MappingContext
from mappings.signals import evaluate
from mappings.signals.fhir import signal_communication, signal_to_resources
from tests.unit.mappings.signal_courses import bulbar_flare

CTX = MappingContext("mg-diary-app", "urn:diarybridge:client:mg-diary-app")


def _danger():
    (sign,) = [s for s in evaluate(bulbar_flare()) if s.rule.id == "danger_sign"]
    return sign


@pytest.mark.parametrize("version", [FhirVersion.R4, FhirVersion.R5])
def test_the_care_team_is_told_about_the_flag_never_the_patient(version: FhirVersion) -> None:
    ctx = replace(CTX, fhir_version=version)
    sign = _danger()
    message = signal_communication(sign, ctx, "CareTeam/mg-clinic")
    flag = signal_to_resources(sign, ctx)[0]
    assert message["resourceType"] == "Communication" and message["status"] == "completed"
    assert message["recipient"] == [{"reference": "CareTeam/mg-clinic"}]
    assert message["subject"] == flag["subject"]  # about the patient, not sent to them
    ident = flag["identifier"][0]
    about = message["about"][0]["identifier"]
    assert (about["system"], about["value"]) == (ident["system"], ident["value"])
    assert message["priority"] == "urgent"  # the danger sign is high severity
    (payload,) = message["payload"]
    text = (
        payload["contentString"]
        if version is FhirVersion.R4
        else payload["contentCodeableConcept"]["text"]
    )
    assert "not a diagnosis" in text
    # Deterministic: the same signal is the same Communication, so a resend never adds one.
    assert signal_communication(sign, ctx, "CareTeam/mg-clinic")["id"] == message["id"]


def test_a_recipient_that_is_not_a_care_team_reference_is_refused() -> None:
    with pytest.raises(ValueError, match="CareTeam"):
        signal_communication(_danger(), CTX, "Patient/synthetic-signals-001")
