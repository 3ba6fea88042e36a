"""GET /patients/{id}/report against the real FHIR server, every answer checked against the spec."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service import wiring
from service.app import create_app
from service.config import Settings
from service.store.models import AuditLog
from tests.api.contract import ContractClient
from tests.conftest import headers, make_env
from tests.unit.imports.synthetic import seed_patient

pytestmark = pytest.mark.integration

DAYS = 63  # three 21-day infusion cycles


@pytest.fixture(scope="module")
def patient_id(fhir_server: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A patient with three infusion cycles of synthetic diary entries on the server."""
    patient = f"synthetic-report-{datetime.now(UTC).strftime('%H%M%S%f')}"
    seed_patient(
        fhir_server, str(tmp_path_factory.mktemp("seed") / "seed.sqlite3"),
        f"Patient/{patient}", DAYS,
    )  # fmt: skip
    return patient


@pytest.fixture
def app(tmp_path: Path, fhir_server: str) -> Iterator[Flask]:
    env = make_env(tmp_path, DIARYBRIDGE_FHIR_BASE_URL=fhir_server)
    app = create_app(Settings.from_env(env))
    app.test_client_class = ContractClient
    yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def cycle_means(html: str) -> dict[str, list[str]]:
    """The cycle table's rows: label -> cells after it."""
    table = html[html.index('<table id="cycle-table">') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr><td>([^<]+)</td>((?:<td>[^<]*</td>)+)</tr>", table)
    return {label: re.findall(r"<td>([^<]*)</td>", cells) for label, cells in rows}


def test_the_page_shows_chart_infusions_reactions_and_wearing_off(
    client: FlaskClient, patient_id: str
) -> None:
    answer = client.get(f"/patients/{patient_id}/report", headers=headers("clinician"))
    assert answer.status_code == HTTPStatus.OK
    assert answer.mimetype == "text/html"
    assert answer.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    html = answer.get_data(as_text=True)
    assert '<figure id="report-chart"' in html and "<svg" in html
    assert f"{DAYS} diary entries" in html
    assert "3 infusions" in html and "1 infusion reactions" in html
    assert html.count("<td>completed</td>") == 3
    assert "<td>headache</td><td>moderate</td>" in html
    means = cycle_means(html)
    # entries, MG-ADL, fatigue, muscle weakness per bin; the synthetic patient wears off
    near, far = means["0-2 days"], means["14+ days"]
    assert int(near[0]) > 0 and int(far[0]) > 0
    assert float(near[1]) > float(far[1]) and float(near[2]) > float(far[2])


def test_png_and_svg_are_the_chart_alone(client: FlaskClient, patient_id: str) -> None:
    png = client.get(f"/patients/{patient_id}/report?format=png", headers=headers("clinician"))
    assert png.status_code == HTTPStatus.OK and png.mimetype == "image/png"
    assert png.data.startswith(b"\x89PNG\r\n\x1a\n")
    svg = client.get(
        f"/patients/{patient_id}/report?format=svg&symptoms=ptosis,fatigue",
        headers=headers("clinician"),
    )
    assert svg.status_code == HTTPStatus.OK and svg.mimetype == "image/svg+xml"
    assert ElementTree.fromstring(svg.data).tag == "{http://www.w3.org/2000/svg}svg"


def test_since_and_until_narrow_the_entries(client: FlaskClient, patient_id: str) -> None:
    answer = client.get(
        f"/patients/{patient_id}/report",
        query_string={"since": "2026-06-08T00:00:00+00:00", "until": "2026-06-15T00:00:00Z"},
        headers=headers("clinician"),
    )
    assert answer.status_code == HTTPStatus.OK
    html = answer.get_data(as_text=True)
    assert "7 diary entries" in html
    assert "0 infusions" in html  # none overlaps that week


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"symptoms": "fatigue,tiredness"}, "symptoms"),
        ({"format": "gif"}, "format"),
        ({"since": "2026-06-08T00:00:00"}, "since"),
        ({"since": "2026-06-08T00:00:00Z", "until": "2026-06-01T00:00:00Z"}, "until"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_are_named(
    client: FlaskClient, patient_id: str, query: dict[str, str], field: str
) -> None:
    answer = client.get(
        f"/patients/{patient_id}/report", query_string=query, headers=headers("clinician")
    )
    assert answer.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert field in {p["field"] for p in answer.json["problems"]}


def test_a_caller_confined_to_another_patient_is_refused(
    client: FlaskClient, patient_id: str
) -> None:
    answer = client.get(f"/patients/{patient_id}/report", headers=headers("diary_app"))
    # Not its patient: answered as an unknown patient is, byte for byte.
    unknown = client.get("/patients/synthetic-nobody-x/report", headers=headers("diary_app"))
    assert answer.status_code == unknown.status_code == HTTPStatus.NOT_FOUND
    assert answer.get_data() == unknown.get_data()
    assert client.get(f"/patients/{patient_id}/report").status_code == HTTPStatus.UNAUTHORIZED


def test_a_report_is_audited_as_reads_with_counts_only(
    app: Flask, client: FlaskClient, patient_id: str
) -> None:
    assert (
        client.get(f"/patients/{patient_id}/report", headers=headers("clinician")).status_code
        == HTTPStatus.OK
    )
    with wiring.of(app).sessions() as session:
        rows: list[Any] = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        seen = {(r.action, r.resource_kind, r.patient, r.count) for r in rows}
    assert seen == {
        ("read", "diary-entry", f"Patient/{patient_id}", DAYS),
        ("read", "infusion", f"Patient/{patient_id}", 3),
    }
