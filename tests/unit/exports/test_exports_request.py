"""Export requests are checked in one place for the API and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service.exports import EXPORTABLE_TYPES, ExportFormat, ExportRequestError, export_request


def test_defaults_are_every_type_as_fhir() -> None:
    request = export_request({})
    assert request.types == EXPORTABLE_TYPES
    assert request.format is ExportFormat.FHIR
    assert (request.since, request.until, request.patient) == (None, None, None)


def test_types_from_a_comma_string_keep_order_and_drop_repeats() -> None:
    request = export_request({"types": "MedicationAdministration, Observation,Observation"})
    assert request.types == ("MedicationAdministration", "Observation")


def test_times_become_utc() -> None:
    request = export_request({"since": "2026-03-01T10:00:00+02:00"})
    assert request.since == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert request.to_json()["since"] == "2026-03-01T08:00:00Z"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"since": "2026-03-01T10:00:00"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "until"),
        ({"types": ["Patient"]}, "types"),
        ({"types": 3}, "types"),
        ({"format": "xlsx"}, "format"),
        ({"patient": "123"}, "patient"),
        ({"patient": "https://id.example|123"}, "patient"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_requests_name_their_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ExportRequestError) as caught:
        export_request(body)
    assert caught.value.field == field
