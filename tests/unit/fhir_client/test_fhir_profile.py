"""The server profile: capabilities, configured + known + learned limits, reference style."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses
from fhir_fakes import BASE, capability_statement

from service.fhir_client import (
    KNOWN_SERVERS,
    FhirClient,
    FhirClientConfig,
    Limits,
    ServerQuirk,
    build_client,
    forget_limits,
    known_limits,
)
from service.fhir_client import quirks as quirks_module


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    forget_limits()
    yield
    forget_limits()


def served_by(rsps: responses.RequestsMock, software: str) -> None:
    statement: dict[str, Any] = capability_statement()
    statement["software"] = {"name": software, "version": "1"}
    rsps.get(f"{BASE}/metadata", json=statement)


def test_medplum_is_known_by_its_software_name() -> None:
    medplum = known_limits("Medplum FhirRouter + MemoryRepository (DiaryBridge test adapter)")
    assert medplum == Limits(transaction_entries=50, conditional_entries=8)
    assert known_limits("SEKMET") == Limits()
    assert known_limits(None) == Limits()
    assert all(q.why for q in KNOWN_SERVERS)  # each row says where its limit comes from


def test_limits_are_the_strictest_of_configured_known_and_learned(
    rsps: responses.RequestsMock,
) -> None:
    served_by(rsps, "Medplum")
    config = FhirClientConfig(BASE, limits=Limits(transaction_entries=30, page_size=100))
    profile = build_client(config).profile()
    assert profile.configured == Limits(transaction_entries=30, page_size=100)
    assert profile.known == Limits(transaction_entries=50, conditional_entries=8)
    assert profile.limits == Limits(transaction_entries=30, conditional_entries=8, page_size=100)
    profile.learn_conditional_cap(5)
    profile.learn_transaction_cap(40)  # looser than configured: the configured cap stays
    assert profile.limits == Limits(transaction_entries=30, conditional_entries=5, page_size=100)


def test_what_is_learned_is_kept_for_the_server_not_the_client(
    rsps: responses.RequestsMock,
) -> None:
    served_by(rsps, "TestServer")
    FhirClient(BASE).profile().learn_transaction_cap(12)
    again = FhirClient(BASE + "/").profile()  # another client (a request, a worker) of it
    assert again.limits.transaction_entries == 12
    again.learn_transaction_cap(20)  # only ever lowered
    assert FhirClient(BASE).profile().limits.transaction_entries == 12


def test_a_new_quirk_row_is_all_a_server_cap_needs(
    rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = ServerQuirk("acme fhir", Limits(transaction_entries=20), why="vendor docs")
    monkeypatch.setattr(quirks_module, "KNOWN_SERVERS", (*KNOWN_SERVERS, row))
    served_by(rsps, "ACME FHIR Server 3")
    assert FhirClient(BASE).profile().limits.transaction_entries == 20


def test_the_reference_style_reads_this_servers_absolute_references(
    rsps: responses.RequestsMock,
) -> None:
    served_by(rsps, "TestServer")
    style = FhirClient(BASE).profile().references
    assert style.local(f"{BASE}/Patient/p1") == "Patient/p1"
    assert style.local("https://other.test/fhir/Patient/p1") is None
    assert style.is_foreign("https://other.test/fhir/Patient/p1")
    assert style.normalise({"subject": {"reference": f"{BASE}/Patient/p1"}}) == {
        "subject": {"reference": "Patient/p1"}
    }
