"""diarybridge publish-terminology against real FHIR servers: twice gives one CodeSystem per
url, and the second run writes nothing (same versionId)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from mappings import canonical
from mappings.terminology import code_systems
from service.cli import main
from service.config import FhirServerSettings
from service.sync.target import make_client
from service.sync.terminology import UNCHANGED, WRITTEN, publish_terminology, server_id

pytestmark = pytest.mark.integration

TODAY = canonical.DEFAULT_CANONICAL_BASE
CLINIC = "https://terminology.clinic.example/fhir"


def _by_url(base: str, url: str) -> list[dict[str, Any]]:
    # Filtered here as well: SEKMET ignores the `url` search parameter (and says so).
    bundle = requests.get(
        f"{base}/CodeSystem",
        params={"url": url, "_count": "200"},
        headers={"Accept": "application/fhir+json"},
        timeout=10,
    ).json()
    assert not any(link.get("relation") == "next" for link in bundle.get("link", []))
    resources = [e["resource"] for e in bundle.get("entry", [])]
    return [r for r in resources if r["resourceType"] == "CodeSystem" and r.get("url") == url]


def test_publish_twice_gives_one_codesystem_per_url_unchanged(any_fhir_server: str) -> None:
    settings = FhirServerSettings(base_url=any_fhir_server)
    with make_client(settings) as client:
        first = publish_terminology(client)
        versions = {
            p.url: client.read("CodeSystem", p.server_id)["meta"]["versionId"] for p in first
        }
        second = publish_terminology(client)
        after = {p.url: client.read("CodeSystem", p.server_id)["meta"]["versionId"] for p in second}
    ours = {cs["url"] for cs in code_systems()}
    assert {p.url for p in first} == ours
    assert {p.outcome for p in first} <= {WRITTEN, UNCHANGED}
    assert [p.outcome for p in second] == [UNCHANGED] * len(ours)
    assert after == versions  # nothing written the second time
    for url in ours:
        found = _by_url(any_fhir_server, url)
        assert len(found) == 1, f"{url}: {len(found)} CodeSystems"
        assert found[0]["status"] == "active" and found[0]["content"] == "complete"


def test_a_changed_definition_is_written_again(fhir_server: str) -> None:
    cs = code_systems()[0]
    with make_client(FhirServerSettings(base_url=fhir_server)) as client:
        publish_terminology(client)
        stale = {**cs, "id": server_id(cs), "title": "an older title"}
        client.update(stale)
        results = {p.url: p.outcome for p in publish_terminology(client)}
        stored = client.read("CodeSystem", server_id(cs))
    assert results[cs["url"]] == WRITTEN
    assert stored["title"] == cs["title"]


def test_the_command_prints_each_codesystem(
    fhir_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["publish-terminology", "--fhir-base-url", fhir_server]) == 0
    assert main(["publish-terminology", "--fhir-base-url", fhir_server]) == 0
    lines = capsys.readouterr().out.splitlines()
    ours = code_systems()
    assert len(lines) == 2 * len(ours)
    assert all(line.startswith(UNCHANGED) for line in lines[len(ours) :])


def test_moving_the_base_orphans_nothing_already_on_the_server(
    fhir_server: str, count_resources: Any
) -> None:
    """Resources pushed under today's base, pushed again under another: the same resources
    (ids and identifiers do not move), now coded under the new base, and still read back."""
    import json
    from dataclasses import replace

    import mappings
    from tests.unit.mappings.samples import INFUSION, ctx

    record = replace(INFUSION, infusion_id=f"base-move-{uuid.uuid4()}")
    before = mappings.to_resources([record], replace(ctx(), canonical_base=TODAY))
    after = mappings.to_resources([record], replace(ctx(), canonical_base=CLINIC))
    with make_client(FhirServerSettings(base_url=fhir_server)) as client:
        for resource in before + after:
            client.update(resource)
        stored = [client.read(r["resourceType"], r["id"]) for r in before]
    for resource in before:
        if resource["resourceType"] == "AdverseEvent":
            continue  # R4 defines no identifier search for it (its id follows the identifier)
        ident = resource["identifier"]  # one Identifier on an R4 AdverseEvent, else a list of one
        (ident,) = [ident] if isinstance(ident, dict) else ident
        assert count_resources(resource["resourceType"], ident["system"], ident["value"]) == 1
    assert CLINIC + "/CodeSystem/" in json.dumps(stored)
    canonical.configure(CLINIC)
    try:
        assert mappings.from_resources(stored) == [record]
    finally:
        canonical.configure(TODAY)


def test_premedications_are_found_by_patient_and_time_with_their_infusion_and_atc_code(
    fhir_server: str,
) -> None:
    """The README's standard search for an infusion's premedications (R4 has no partOf search
    parameter): patient + effective-time around the infusion; partOf and the ATC code say which
    is which."""
    from dataclasses import replace

    import mappings
    from mappings.records import PatientRef
    from tests.unit.mappings.samples import INFUSION, ctx

    patient = f"Patient/premed-{uuid.uuid4()}"
    record = replace(INFUSION, patient=PatientRef(reference=patient))
    resources = mappings.to_resources([record], ctx())
    with make_client(FhirServerSettings(base_url=fhir_server)) as client:
        for resource in resources:
            client.update(resource)
    found = requests.get(
        f"{fhir_server}/MedicationAdministration",
        params=[
            ("patient", patient),
            ("effective-time", "ge2026-11-10T00:00:00+01:00"),
            ("effective-time", "le2026-11-10T23:59:59+01:00"),
        ],
        headers={"Accept": "application/fhir+json"},
        timeout=10,
    ).json()
    given = {e["resource"]["id"]: e["resource"] for e in found.get("entry", [])}
    main_id = resources[0]["id"]
    premed_ids = [
        r["id"]
        for r in resources
        if r["resourceType"] == "MedicationAdministration"
        and "/premedication-" in r["identifier"][0]["value"]
    ]
    assert premed_ids and {main_id, *premed_ids} <= set(given)
    for premed_id in premed_ids:  # each says which infusion it belongs to, and what it is
        premed = given[premed_id]
        assert premed["partOf"] == [{"reference": f"MedicationAdministration/{main_id}"}]
        coding = premed["medicationCodeableConcept"]["coding"]
        assert {
            "system": "http://www.whocc.no/atc",
            "code": "N02BE01",
            "display": "paracetamol",
        } in (coding)
