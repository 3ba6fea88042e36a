"""The audit trail: one row per patient for each successful read or write, ids and counts only."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service import wiring
from service.api import audit
from service.store.models import AuditLog
from tests.api.samples import DIARY_ENTRY, INFUSION, diary, infusion
from tests.conftest import OTHER_PATIENT, PATIENT, headers


def audit_rows(app: Flask) -> list[dict[str, Any]]:
    with wiring.of(app).sessions() as session:
        rows = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        return [
            {
                "client_id": row.client_id,
                "scopes": row.scopes,
                "patient": row.patient,
                "action": row.action,
                "kind": row.resource_kind,
                "count": row.count,
                "request_id": row.request_id,
            }
            for row in rows
        ]


def test_a_conversion_writes_one_row_per_patient_with_its_count(
    app: Flask, client: FlaskClient
) -> None:
    entries = [
        DIARY_ENTRY,
        diary(entry_id="second"),
        diary(entry_id="third", patient={"reference": OTHER_PATIENT}),
    ]
    response = client.post(
        "/convert/diary-entries",
        json=entries,
        headers={**headers("batch"), "X-Request-ID": "audit-req-1"},
    )
    assert response.status_code == HTTPStatus.OK
    rows = audit_rows(app)
    assert sorted((row["patient"], row["count"]) for row in rows) == [
        (PATIENT, 2),
        (OTHER_PATIENT, 1),
    ]
    for row in rows:
        assert row["client_id"] == "registry-export"
        assert row["scopes"] == "system/*.read system/*.write"
        assert row["action"] == "write" and row["kind"] == "diary-entry"
        assert row["request_id"] == "audit-req-1"


def test_reading_back_from_fhir_is_audited_as_a_read_per_kind(
    app: Flask, client: FlaskClient
) -> None:
    bundle = client.post("/convert/infusions", json=INFUSION, headers=headers("diary_app")).json
    back = client.post("/convert/fhir", json=bundle, headers=headers("diary_app"))
    assert back.status_code == HTTPStatus.OK
    reads = [row for row in audit_rows(app) if row["action"] == "read"]
    assert [(r["patient"], r["kind"], r["count"]) for r in reads] == [(PATIENT, "infusion", 1)]
    assert reads[0]["client_id"] == "mg-diary-app"


@pytest.mark.parametrize(
    ("body", "who", "status"),
    [
        (diary(fatigue=11), "diary_app", HTTPStatus.UNPROCESSABLE_ENTITY),
        (diary(patient={"reference": OTHER_PATIENT}), "diary_app", HTTPStatus.FORBIDDEN),
        (DIARY_ENTRY, "clinician", HTTPStatus.FORBIDDEN),
    ],
)
def test_failed_requests_write_no_rows(
    app: Flask, client: FlaskClient, body: Any, who: str, status: HTTPStatus
) -> None:
    response = client.post("/convert/diary-entries", json=body, headers=headers(who))
    assert response.status_code == status
    assert audit_rows(app) == []


def test_rows_never_carry_values(app: Flask, client: FlaskClient) -> None:
    record = infusion(lot_number="LOT-VALUE-7781", note="a note value 7781")
    client.post("/convert/infusions", json=record, headers=headers("diary_app"))
    rows = audit_rows(app)
    assert rows
    assert "7781" not in repr(rows)


def test_note_rejects_an_unknown_action(app: Flask) -> None:
    with app.test_request_context(), pytest.raises(ValueError, match="unknown audit action"):
        audit.note("delete", "infusion", [PATIENT], 1)  # type: ignore[arg-type]


def test_an_audit_that_cannot_be_written_fails_the_request(app: Flask) -> None:
    # Fail closed: data is not handed out when the read cannot be recorded.
    app.config["PROPAGATE_EXCEPTIONS"] = False
    with wiring.of(app).engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE audit_log")
    response = app.test_client().post(
        "/convert/diary-entries", json=DIARY_ENTRY, headers=headers("diary_app")
    )
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert "Arms heavy" not in response.get_data(as_text=True)
