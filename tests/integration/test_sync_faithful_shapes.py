"""An infusion with titration and an IVIG-flu reaction, pushed to the real Medplum server: what a
standard reader finds there (each rate on its own administration, the reaction's cause on an
AdverseEvent) and that a pull rebuilds the record."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import requests
from fhirclient import client as smart_client
from fhirclient.models.adverseevent import AdverseEvent
from fhirclient.models.medicationadministration import MedicationAdministration

from service.app import create_app
from service.config import Settings
from tests.api.contract import ContractClient
from tests.api.samples import infusion
from tests.conftest import KEYS, make_env

pytestmark = pytest.mark.integration

BATCH = {"X-API-Key": KEYS["batch"]["key"]}
FLU = [
    {"symptom": "headache", "severity": "moderate", "onset": "2026-11-11T18:00:00+01:00"},
    {"symptom": "fever", "severity": "mild", "onset": "2026-11-11T17:30:00+01:00"},
    {"symptom": "chills", "severity": "mild", "onset": "2026-11-11T19:00:00+01:00"},
]


def search(base: str, resource_type: str, patient: str) -> list[dict[str, Any]]:
    bundle = requests.get(
        f"{base}/{resource_type}",
        params={"subject": f"Patient/{patient}", "_count": "100"},
        timeout=30,
    ).json()
    return [e["resource"] for e in bundle.get("entry", [])]


def test_titration_and_reaction_reach_the_server_in_standard_shapes_and_pull_back(
    tmp_path: Path, fhir_server: str
) -> None:
    patient = f"synthetic-shapes-{datetime.now(UTC).strftime('%H%M%S%f')}"
    record = infusion(
        infusion_id=f"{patient}-ivig",
        patient={"reference": f"Patient/{patient}"},
        adverse_reactions=FLU,
    )
    app = create_app(Settings.from_env(make_env(tmp_path, DIARYBRIDGE_FHIR_BASE_URL=fhir_server)))
    app.test_client_class = ContractClient
    client = app.test_client()
    pushed = client.post("/sync/infusions", json=[record], headers=BATCH)
    assert pushed.status_code == HTTPStatus.OK, pushed.json
    assert [r["outcome"] for r in pushed.json["results"]] == ["created"]

    admins = search(fhir_server, "MedicationAdministration", patient)
    whole = [a for a in admins if "partOf" not in a]
    assert len(whole) == 1
    main_ref = f"MedicationAdministration/{whole[0]['id']}"
    assert whole[0]["dosage"]["dose"]["value"] == record["dose_g"]
    assert "rateQuantity" not in whole[0]["dosage"]
    steps = sorted(
        (a for a in admins if "rateQuantity" in a.get("dosage", {})),
        key=lambda a: a["effectivePeriod"]["start"],
    )
    assert [s["dosage"]["rateQuantity"]["value"] for s in steps] == [
        s["ml_per_hour"] for s in record["rate_steps"]
    ]
    assert all(s["partOf"] == [{"reference": main_ref}] for s in steps)
    assert [s["effectivePeriod"].get("end") for s in steps] == [
        *(s["at"] for s in record["rate_steps"][1:]),
        record["end"],
    ]

    (event,) = search(fhir_server, "AdverseEvent", patient)
    assert event["actuality"] == "actual"
    assert event["suspectEntity"] == [{"instance": {"reference": main_ref}}]
    assert event["date"] == "2026-11-11T17:30:00+01:00"  # the first onset
    assert event["severity"]["coding"][0]["code"] == "moderate"  # the worst symptom
    symptoms = {f"Observation/{o['id']}": o for o in search(fhir_server, "Observation", patient)}
    linked = [h["reference"] for h in event["subjectMedicalHistory"]]
    assert sorted(linked) == sorted(symptoms) and len(linked) == len(FLU)
    assert all("partOf" not in o for o in symptoms.values())

    # SMART's fhirclient (strict R4 models, no knowledge of us) finds the cause and each rate.
    smart = smart_client.FHIRClient(
        settings={"app_id": "diarybridge-test", "api_base": fhir_server}
    )
    query = {"subject": f"Patient/{patient}"}
    (read_event,) = AdverseEvent.where(struct=query).perform_resources_iter(smart.server)
    assert read_event.suspectEntity[0].instance.reference == main_ref
    read_admins = list(
        MedicationAdministration.where(struct=query).perform_resources_iter(smart.server)
    )
    rates = sorted(
        (a.effectivePeriod.start.isostring, a.dosage.rateQuantity.value)
        for a in read_admins
        if a.dosage is not None and a.dosage.rateQuantity is not None
    )
    assert [rate for _, rate in rates] == [s["ml_per_hour"] for s in record["rate_steps"]]
    assert all(
        a.partOf[0].reference == main_ref
        for a in read_admins
        if a.dosage is not None and a.dosage.rateQuantity is not None
    )
    # ... and the medicine's standard code: the infusion's product (a contained Medication,
    # referenced as #product) is ATC J06BA02 whatever the brand; the premedication names its
    # substance (paracetamol, ATC N02BE01) on medicationCodeableConcept.
    (read_whole,) = [a for a in read_admins if not a.partOf]
    local_id = read_whole.medicationReference.reference.removeprefix("#")
    (product,) = [c for c in read_whole.contained if c.id == local_id]
    assert product.resource_type == "Medication"
    assert product.code.text == record["product"]["brand"]
    assert ("http://www.whocc.no/atc", "J06BA02") in {
        (c.system, c.code) for c in product.code.coding
    }
    premeds = [a for a in read_admins if a.partOf and a.medicationCodeableConcept is not None]
    assert [(p.medicationCodeableConcept.text, p.partOf[0].reference) for p in premeds] == [
        ("paracetamol", main_ref)
    ]
    assert [(c.system, c.code) for c in premeds[0].medicationCodeableConcept.coding] == [
        ("http://www.whocc.no/atc", "N02BE01")
    ]

    back = client.get(f"/patients/{patient}/infusions", headers=BATCH)
    assert back.status_code == HTTPStatus.OK, back.json
    assert back.json["unreadable"] == 0
    (got,) = back.json["infusions"]
    got.pop("dose_g_per_kg")
    assert got == {"route": "intravenous", "reason": "myasthenia_gravis", **record}
