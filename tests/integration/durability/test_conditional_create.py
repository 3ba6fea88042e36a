"""Conditional create (If-None-Exist) on a server that caps conditional transactions (Medplum: 8
entries): a record of more resources than that still arrives, once, even from an empty ledger."""

from __future__ import annotations

import pytest

from service.config import FhirServerSettings
from service.store import status_counts
from service.sync.accept import accept_records
from service.sync.runtime import SyncRuntime
from tests.integration.durability.conftest import migrated_sessions
from tests.integration.durability.helpers import (
    NAMESPACE,
    diary_payloads,
    expected_identifiers,
    infusion_payloads,
    records_of,
    server_identifiers,
    unique_patient,
)

pytestmark = pytest.mark.integration


def test_records_bigger_than_the_conditional_transaction_cap_arrive_once(
    fhir_server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = FhirServerSettings(
        base_url=fhir_server, chunk_size=8, push_strategy="conditional-create"
    )
    patient = unique_patient("cc")
    given = records_of(diary_payloads(patient, 4), infusion_payloads(patient, 2))
    expected = expected_identifiers(given)
    assert len(expected) / len(given) > 8  # each record alone exceeds the server's cap

    for run in range(2):  # the second run has an empty ledger: If-None-Exist keeps it single
        url = f"sqlite:///{tmp_path_factory.mktemp(f'run{run}')}/ledger.sqlite3"
        sessions = migrated_sessions(url)
        accept_records(sessions, NAMESPACE, given)
        delivered = SyncRuntime(settings, sessions).worker().drain()
        # From the empty ledger the server's 200s are read: it holds this content already.
        expected_outcome = "created" if run == 0 else "unchanged"
        assert {d.outcome.value for d in delivered} == {expected_outcome}, [
            d.error for d in delivered
        ]
        with sessions.begin() as session:
            assert status_counts(session).counts == {"sent": len(given)}
        assert server_identifiers(fhir_server, patient) == expected
