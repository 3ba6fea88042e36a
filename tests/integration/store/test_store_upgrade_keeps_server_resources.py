"""Upgrading a populated database to the patient-keyed ledger (0004) neither duplicates nor
orphans what is already on the FHIR server: every existing record keeps the identifiers and
server ids it was pushed with, so pushing it again updates it in place.

The database is made at the previous revision (0003) and filled as that release did: records
pushed to the real test server with its identifiers (app + kind + id, no patient), then its
ledger rows written into the 0003 tables. Then migrate, and push again through the API, with
patient-bound keys of one app (two patients) and with an unbound key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import MetaData, select

from mappings.identifiers import identifier_system
from service.app import create_app
from service.config import Settings
from service.fhir_client import NO_RETRY, FhirClient
from service.schemas import RecordKind, dump_record, load_records
from service.store import (
    ClaimedEntry,
    canonical_json,
    content_hash,
    current_revision,
    head_revision,
    make_engine,
    upgrade,
)
from service.sync.push import Outcome, Pusher
from tests.api.contract import ContractClient
from tests.api.samples import diary, infusion
from tests.conftest import make_env

pytestmark = pytest.mark.integration

PREVIOUS = "0003_retraction"
APP = "upgrade-diary-app"  # a patient-bound app: one key per patient
BACKEND = "upgrade-backend"  # an unbound (system) client
Json = dict[str, Any]


def patient_id(tag: str) -> str:
    return f"synthetic-upg-{tag}-{uuid.uuid4().hex[:10]}"


def push_as_before(fhir_server: str, namespace: str, records: Sequence[Json], kind: str) -> Any:
    """What the 0003 release sent: its identifiers are today's unscoped ones."""
    loaded = load_records(list(records), RecordKind(kind))
    now = datetime.now(UTC)
    entries = [
        ClaimedEntry(
            ledger_id=n,
            namespace=namespace,
            kind=kind,
            source_id=body["entry_id" if kind == "diary-entry" else "infusion_id"],
            patient_key=body["patient"]["reference"],
            record=body,
            content_hash=content_hash(body),
            attempts=1,
            claimed_by="release-0003",
            claim_token="t",
            lease_expires_at=now + timedelta(minutes=5),
        )
        for n, body in enumerate(dump_record(r) for r in loaded)
    ]
    deliveries = Pusher(FhirClient(fhir_server, retry=NO_RETRY)).push(entries)
    assert [d.outcome for d in deliveries] == [Outcome.CREATED] * len(entries)
    return deliveries


def write_0003_ledger(database_url: str, client_id: str, deliveries: Sequence[Any]) -> str:
    """The rows 0003's accept() and mark_sent() wrote for these deliveries; the request id."""
    engine = make_engine(database_url)
    meta = MetaData()
    meta.reflect(engine)
    assert "patient_scope" not in meta.tables["ledger_entry"].c  # really the old schema
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    with engine.begin() as connection:
        connection.execute(
            meta.tables["sync_request"].insert(),
            {
                "id": request_id,
                "client_id": client_id,
                "item_count": len(deliveries),
                "created_at": now,
            },
        )
        for delivery in deliveries:
            entry = delivery.entry
            ledger_id = connection.execute(
                meta.tables["ledger_entry"]
                .insert()
                .values(
                    namespace=entry.namespace,
                    kind=entry.kind,
                    source_id=entry.source_id,
                    patient_key=entry.patient_key,
                    record_json=canonical_json(entry.record),
                    content_hash=entry.content_hash,
                    status="sent",
                    attempts=1,
                    sent_hash=entry.content_hash,
                    retract_requested=False,
                    next_attempt_at=now,
                    queued_at=now,
                    created_at=now,
                    updated_at=now,
                )
                .returning(meta.tables["ledger_entry"].c.id)
            ).scalar_one()
            for state in delivery.resources:
                connection.execute(
                    meta.tables["ledger_resource"].insert(),
                    {
                        "ledger_id": ledger_id,
                        "resource_type": state.resource_type,
                        "identifier_system": state.identifier_system,
                        "identifier_value": state.identifier_value,
                        "server_id": state.server_id,
                        "version_id": state.version_id,
                        "etag": state.etag,
                        "last_sent_hash": state.last_sent_hash,
                        "updated_at": now,
                    },
                )
            connection.execute(
                meta.tables["sync_request_item"].insert(),
                {
                    "request_id": request_id,
                    "ledger_id": ledger_id,
                    "content_hash": entry.content_hash,
                    "disposition": "queued",
                },
            )
    engine.dispose()
    return request_id


def server_state(fhir_server: str, patient: str) -> dict[str, tuple[str, str]]:
    """Every resource of ours about the patient: id -> (identifier, status)."""
    found = {}
    for resource_type in ("Observation", "MedicationAdministration", "AdverseEvent"):
        bundle = requests.get(
            f"{fhir_server}/{resource_type}",
            params={"subject": f"Patient/{patient}", "_count": 500},
            timeout=30,
        ).json()
        for hit in bundle.get("entry", []):
            resource = hit["resource"]
            ident = resource["identifier"]  # one Identifier on an R4 AdverseEvent
            ident = ident if isinstance(ident, dict) else ident[0]
            found[f"{resource_type}/{resource['id']}"] = (
                f"{ident['system']}|{ident['value']}",
                resource.get("status") or resource["actuality"],  # R4 AdverseEvent: no status
            )
    return found


def test_an_upgraded_database_pushes_again_in_place(
    database_url: str, fhir_server: str, tmp_path: Path
) -> None:
    a, b, c = patient_id("a"), patient_id("b"), patient_id("c")

    def entry(patient: str, entry_id: str, fatigue: int) -> Json:
        return diary(
            entry_id=entry_id, patient={"reference": f"Patient/{patient}"}, fatigue=fatigue
        )

    app_entries = [entry(a, f"{a}-e1", 3), entry(b, f"{b}-e1", 4)]
    app_infusions = [
        infusion(infusion_id=f"{a}-ivig", patient={"reference": f"Patient/{a}"}, dose_g=30.0)
    ]
    backend_entries = [entry(c, f"{c}-e1", 5)]

    upgrade(database_url, PREVIOUS)
    app_request = write_0003_ledger(
        database_url,
        APP,
        [
            *push_as_before(fhir_server, APP, app_entries, "diary-entry"),
            *push_as_before(fhir_server, APP, app_infusions, "infusion"),
        ],
    )
    write_0003_ledger(
        database_url, BACKEND, push_as_before(fhir_server, BACKEND, backend_entries, "diary-entry")
    )
    before = {p: server_state(fhir_server, p) for p in (a, b, c)}
    assert all(before.values())

    upgrade(database_url)  # what the app does at start; done here to look at the result
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as connection:
            scopes = set(connection.execute(select(meta.tables["ledger_entry"].c.patient_scope)))
            items = connection.execute(select(meta.tables["sync_request_item"].c.patient_key)).all()
            resources = connection.execute(
                select(meta.tables["ledger_resource"].c.server_id).order_by("id")
            ).all()
        assert scopes == {("",)}  # every existing record stays in its app's id space
        assert {row.patient_key for row in items} == {f"Patient/{p}" for p in (a, b, c)}
        # Every resource row survived (SQLite copies ledger_entry, and a drop would cascade).
        on_server = {key.split("/")[1] for state in before.values() for key in state}
        assert sorted(r.server_id for r in resources) == sorted(on_server)
    finally:
        engine.dispose()

    keys = [
        {
            "key": f"upgrade-key-{tag}-0123456789",
            "client_id": APP,
            "scopes": "patient/*.read patient/*.write",
            "patient": f"Patient/{patient}",
        }
        for tag, patient in (("a", a), ("b", b))
    ] + [
        {
            "key": "upgrade-key-backend-0123456789",
            "client_id": BACKEND,
            "scopes": "system/*.read system/*.write",
        }
    ]
    env = make_env(
        tmp_path,
        DATABASE_URL=database_url,
        DIARYBRIDGE_API_KEYS=json.dumps(keys),
        DIARYBRIDGE_FHIR_BASE_URL=fhir_server,
    )
    app = create_app(Settings.from_env(env))
    app.test_client_class = ContractClient
    client = app.test_client()

    def post(tag: str, path: str, body: Any) -> list[str]:
        answer = client.post(
            path, json=body, headers={"X-API-Key": f"upgrade-key-{tag}-0123456789"}
        )
        assert answer.status_code == HTTPStatus.OK, answer.json
        return [r["outcome"] for r in answer.json["results"]]

    # The same records again: nothing to send.
    assert post("a", "/sync/diary-entries", app_entries[0]) == ["unchanged"]
    assert post("a", "/sync/infusions", app_infusions[0]) == ["unchanged"]
    assert post("backend", "/sync/diary-entries", backend_entries) == ["unchanged"]
    # Changed records: updated in place, by each patient's own key and by the unbound one.
    assert post("a", "/sync/diary-entries", {**app_entries[0], "fatigue": 9}) == ["updated"]
    assert post("b", "/sync/diary-entries", {**app_entries[1], "fatigue": 8}) == ["updated"]
    assert post("backend", "/sync/diary-entries", {**backend_entries[0], "fatigue": 1}) == [
        "updated"
    ]
    after = {p: server_state(fhir_server, p) for p in (a, b, c)}
    assert after == before  # the same resources, same identifiers, none added, none withdrawn
    old_ids = {ident for state in before.values() for ident, _ in state.values()}
    assert all(f"{identifier_system(APP)}|patient/" not in i for i in old_ids)

    # The request made before the upgrade: each patient sees its own item only.
    progress = client.get(
        f"/sync/requests/{app_request}", headers={"X-API-Key": "upgrade-key-b-0123456789"}
    )
    assert progress.status_code == HTTPStatus.OK
    assert [i["id"] for i in progress.json["items"]] == [f"{b}-e1"]
    # A new record of a patient-bound key gets the patient in its identifier, next to the old.
    assert post("a", "/sync/diary-entries", entry(a, f"{a}-e2", 2)) == ["created"]
    added = set(server_state(fhir_server, a)) - set(before[a])
    assert added and all("|patient/" in server_state(fhir_server, a)[key][0] for key in added)
