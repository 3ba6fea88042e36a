"""CapabilityStatement parsing, version support, and the push strategy chosen from it."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from fhir_fakes import BASE, capability_statement

from service.fhir_client import (
    FhirClient,
    InvalidServerResponse,
    PushStrategy,
    UnsupportedServerCapability,
    UnsupportedServerVersion,
    choose_push_strategy,
    parse_capability_statement,
    release_for_version,
)


def resource(
    type_: str,
    interactions: tuple[str, ...] = ("read", "create", "update"),
    **flags: bool,
) -> dict[str, Any]:
    """One CapabilityStatement.rest.resource entry."""
    return {"type": type_, "interaction": [{"code": c} for c in interactions], **flags}


def test_r4_capabilities_are_read_once_and_cached(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.get(
        f"{BASE}/metadata",
        json=capability_statement(
            "4.0.1",
            operations=[
                {
                    "name": "export",
                    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                }
            ],
        ),
    )

    caps = client.capabilities()
    assert client.capabilities() is caps
    assert len(rsps.calls) == 1

    assert (caps.fhir_version, caps.release) == ("4.0.1", "R4")
    assert (caps.software_name, caps.software_version) == ("TestServer", "1.2")
    assert caps.transaction and caps.batch and caps.export
    obs = caps.resource("Observation")
    assert obs is not None
    assert obs.update_create and obs.conditional_create and obs.conditional_update
    assert caps.supports("Observation", "search-type")
    assert not caps.supports("MedicationAdministration", "create")


def test_r5_capabilities(rsps: responses.RequestsMock, client: FhirClient) -> None:
    rsps.get(
        f"{BASE}/metadata",
        json=capability_statement(
            "5.0.0",
            system=("batch",),
            resources=[
                resource(
                    "Patient",
                    ("read",),
                )
                | {
                    "operation": [
                        {"name": "$export", "definition": "http://x/OperationDefinition/y"}
                    ]
                },
                resource("MedicationAdministration", conditionalCreate=True),
            ],
        ),
    )

    caps = client.capabilities()

    assert caps.release == "R5"
    assert not caps.transaction and caps.batch
    assert caps.export  # Patient-level $export counts
    med = caps.resource("MedicationAdministration")
    assert med is not None and med.conditional_create and not med.update_create


@pytest.mark.parametrize(
    ("version", "release"),
    [("4.0.0", "R4"), ("4.0.1", "R4"), ("4.3.0", "R4"), ("5.0.0", "R5"), ("5.0", "R5")],
)
def test_supported_versions(version: str, release: str) -> None:
    assert release_for_version(version) == release


@pytest.mark.parametrize("version", ["3.0.2", "1.0.2", "4.2.0", "5.0.0-ballot", "6.0.0", "R4", ""])
def test_unsupported_versions_are_refused_clearly(version: str) -> None:
    with pytest.raises(UnsupportedServerVersion) as caught:
        parse_capability_statement(capability_statement(version))
    assert repr(version) in str(caught.value)
    assert "4.0.x (R4)" in str(caught.value) and "5.0.x (R5)" in str(caught.value)


def test_metadata_must_be_a_capability_statement(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.get(f"{BASE}/metadata", json={"resourceType": "Conformance", "fhirVersion": "1.0.2"})

    with pytest.raises(InvalidServerResponse, match="CapabilityStatement"):
        client.capabilities()


TYPES = ("Observation", "MedicationAdministration")


def caps_for(*resources: dict[str, Any], system: tuple[str, ...] = ()) -> Any:
    return parse_capability_statement(
        capability_statement("4.0.1", system=system, resources=list(resources))
    )


@pytest.mark.parametrize(
    ("resources", "system", "expected"),
    [
        (
            [resource(t, updateCreate=True, conditionalCreate=True) for t in TYPES],
            ("transaction", "batch"),
            PushStrategy("update-as-create", "transaction"),
        ),
        (
            [resource(t, conditionalUpdate=True, conditionalCreate=True) for t in TYPES],
            ("batch",),
            PushStrategy("conditional-update", "batch"),
        ),
        (
            [resource(t, conditionalCreate=True) for t in TYPES],
            (),
            PushStrategy("conditional-create", "single"),
        ),
        (
            # one type lacks updateCreate: the best method that all types share wins
            [
                resource("Observation", updateCreate=True, conditionalCreate=True),
                resource("MedicationAdministration", conditionalCreate=True),
            ],
            ("transaction",),
            PushStrategy("conditional-create", "transaction"),
        ),
        (
            # updateCreate without the update interaction is not usable
            [
                resource(t, ("read", "create"), updateCreate=True, conditionalCreate=True)
                for t in TYPES
            ],
            ("transaction",),
            PushStrategy("conditional-create", "transaction"),
        ),
    ],
)
def test_choose_push_strategy(
    resources: list[dict[str, Any]], system: tuple[str, ...], expected: PushStrategy
) -> None:
    assert choose_push_strategy(caps_for(*resources, system=system), TYPES) == expected


def test_no_idempotent_write_is_refused() -> None:
    caps = caps_for(resource("Observation", updateCreate=True))

    with pytest.raises(UnsupportedServerCapability, match="MedicationAdministration"):
        choose_push_strategy(caps, TYPES)
