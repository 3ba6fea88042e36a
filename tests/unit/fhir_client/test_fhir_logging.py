"""Request logs carry method, path, status and counts; never query values or bodies."""

from __future__ import annotations

import logging
from http import HTTPStatus

import pytest
import responses
from fhir_fakes import BASE, observation

from service.fhir_client import FhirClient


def test_search_logs_parameter_names_not_values(
    rsps: responses.RequestsMock, client: FhirClient, caplog: pytest.LogCaptureFixture
) -> None:
    # page 2 first: a URL registered without a query would match it too
    rsps.get(
        f"{BASE}/Observation?_page=2&token=Patient-7",
        json={"resourceType": "Bundle", "type": "searchset"},
    )
    rsps.get(
        f"{BASE}/Observation",
        json={
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [{"relation": "next", "url": f"{BASE}/Observation?_page=2&token=Patient-7"}],
        },
    )
    caplog.set_level(logging.DEBUG, logger="service.fhir_client")

    list(client.search("Observation", {"subject": "Patient/secret-patient-9"}))

    assert "GET /Observation?subject -> 200" in caplog.text
    assert "GET /Observation?_page,token -> 200" in caplog.text
    assert "secret-patient-9" not in caplog.text
    assert "Patient-7" not in caplog.text


def test_bodies_are_never_logged(
    rsps: responses.RequestsMock, client: FhirClient, caplog: pytest.LogCaptureFixture
) -> None:
    resource = {**observation(), "note": [{"text": "felt weak on stairs"}]}
    rsps.put(f"{BASE}/Observation/obs-1", status=HTTPStatus.BAD_REQUEST, json=resource)
    caplog.set_level(logging.DEBUG, logger="service.fhir_client")

    with pytest.raises(Exception):  # noqa: B017 - only the log matters here
        client.update(resource)

    assert "PUT /Observation/obs-1 -> 400" in caplog.text
    assert "felt weak" not in caplog.text
