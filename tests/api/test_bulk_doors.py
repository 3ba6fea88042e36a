"""The Bulk Data doors: $export kick-off rules, discovery, and OperationOutcome errors.

No FHIR server here, so queued jobs fail; the kick-off's effect is read from the job it queued.
The full flow against a real server, with SMART's own bulk client, is in
tests/integration/test_bulk_smart_fetch.py.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import fhir.resources as r5
import pytest
from fhir.resources.R4B import get_fhir_model_class
from flask import Flask
from flask.testing import FlaskClient

from service import wiring
from service.app import create_app
from service.config import ConfigError, Settings
from service.discovery import EXPORT_OPERATIONS
from service.store import exports as jobs
from tests.api.contract import ContractClient
from tests.conftest import PATIENT, headers, make_env

ASYNC = {"Prefer": "respond-async"}
STRICT = {"Prefer": "respond-async, handling=strict"}


def as_(who: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**headers(who), **(extra if extra is not None else ASYNC)}


def job_request(app: Flask, response: Any) -> dict[str, Any]:
    """The stored request of the job a 202 kick-off queued (its id ends Content-Location)."""
    location = response.headers["Content-Location"]
    assert location.startswith("http://localhost/exports/"), location  # absolute, as the IG asks
    with wiring.of(app).sessions.begin() as session:
        job = jobs.get_export_job(session, location.rsplit("/", 1)[1])
    assert job is not None
    return job.request


def issue(response: Any) -> dict[str, Any]:
    assert response.mimetype == "application/fhir+json"
    body = response.get_json(force=True)
    assert body["resourceType"] == "OperationOutcome"
    first: dict[str, Any] = body["issue"][0]
    return first


def test_kick_off_needs_prefer_respond_async(client: FlaskClient) -> None:
    refused = client.get("/$export", headers=as_("batch", {}))
    assert refused.status_code == 400
    assert issue(refused)["expression"] == ["Prefer"]
    assert client.get("/$export", headers=as_("batch")).status_code == 202


def test_get_kick_off_takes_the_ig_parameter_names(app: Flask, client: FlaskClient) -> None:
    started = client.get(
        "/$export?_type=Observation&_since=2026-03-01T10:00:00%2B02:00"
        "&_outputFormat=application/fhir%2Bndjson",
        headers=as_("batch"),
    )
    assert started.status_code == 202
    assert issue(started)["severity"] == "information"
    stored = job_request(app, started)
    assert stored["types"] == ["Observation"]
    assert stored["since"] == "2026-03-01T08:00:00Z"
    assert stored["format"] == "fhir"
    assert stored["patient"] is None
    assert stored["kickoff"].startswith("http://localhost/$export?_type=Observation")


@pytest.mark.parametrize(
    ("output_format", "stored"),
    [
        ("application/fhir+ndjson", "fhir"),
        ("application/ndjson", "fhir"),
        ("ndjson", "fhir"),
        ("text/csv", "csv"),
        ("csv", "csv"),
        ("records", "records"),
    ],
)
def test_output_formats(app: Flask, client: FlaskClient, output_format: str, stored: str) -> None:
    started = client.get(
        "/$export", query_string={"_outputFormat": output_format}, headers=as_("batch")
    )
    assert started.status_code == 202
    assert job_request(app, started)["format"] == stored


def test_an_unknown_output_format_is_refused_even_when_lenient(client: FlaskClient) -> None:
    refused = client.get("/$export?_outputFormat=application/xml", headers=as_("batch"))
    assert refused.status_code == 400
    assert issue(refused)["code"] == "not-supported"
    assert issue(refused)["expression"] == ["_outputFormat"]


def test_type_lists_repeated_and_comma_separated(app: Flask, client: FlaskClient) -> None:
    started = client.get(
        "/$export?_type=MedicationAdministration&_type=Observation,MedicationAdministration",
        headers=as_("batch"),
    )
    assert job_request(app, started)["types"] == ["MedicationAdministration", "Observation"]


@pytest.mark.parametrize("query", ["_typeFilter=Observation%3Fcategory%3Dsurvey", "_elements=id"])
def test_strict_refuses_what_we_do_not_support(client: FlaskClient, query: str) -> None:
    refused = client.get(f"/$export?{query}", headers=as_("batch", STRICT))
    assert refused.status_code == 400
    assert issue(refused)["code"] == "not-supported"
    assert issue(refused)["expression"] == [query.split("=")[0]]


def test_strict_refuses_an_unknown_type(client: FlaskClient) -> None:
    refused = client.get("/$export?_type=Observation,Condition", headers=as_("batch", STRICT))
    assert refused.status_code == 400
    assert "Condition" in issue(refused)["diagnostics"]


def test_lenient_ignores_and_says_so(app: Flask, client: FlaskClient) -> None:
    started = client.get(
        "/$export?_type=Observation,Condition&_typeFilter=Observation%3Fcategory%3Dsurvey"
        "&_elements=id",
        headers=as_("batch", {"Prefer": "respond-async, handling=lenient"}),
    )
    assert started.status_code == 202
    warnings = [i["diagnostics"] for i in started.get_json(force=True)["issue"][1:]]
    assert [w.split(":")[0] for w in warnings] == ["_elements", "_typeFilter", "_type=Condition"]
    stored = job_request(app, started)
    assert stored["types"] == ["Observation"]
    assert stored["ignored"] == ["_elements", "_typeFilter", "_type=Condition"]


def test_only_unknown_types_is_refused_even_when_lenient(client: FlaskClient) -> None:
    assert client.get("/$export?_type=Condition", headers=as_("batch")).status_code == 400


def test_post_parameters_at_patient_level(app: Flask, client: FlaskClient) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "_type", "valueString": "MedicationAdministration"},
            {"name": "_since", "valueInstant": "2026-01-01T00:00:00Z"},
            {"name": "_outputFormat", "valueString": "ndjson"},
            {"name": "patient", "valueReference": {"reference": "Patient/synthetic-mg-042"}},
        ],
    }
    started = client.post(
        "/Patient/$export",
        json=body,
        headers={**as_("batch"), "Content-Type": "application/fhir+json"},
    )
    assert started.status_code == 202
    stored = job_request(app, started)
    assert stored["patient"] == "Patient/synthetic-mg-042"
    assert stored["types"] == ["MedicationAdministration"]
    assert stored["since"] == "2026-01-01T00:00:00Z"


def test_post_needs_a_parameters_resource(client: FlaskClient) -> None:
    refused = client.post("/$export", json={"types": ["Observation"]}, headers=as_("batch"))
    assert refused.status_code == 400
    assert issue(refused)["expression"] == ["resourceType"]


def test_several_patients_or_a_patient_at_system_level_are_refused(client: FlaskClient) -> None:
    two = client.get(
        "/Patient/$export?patient=Patient/synthetic-a,Patient/synthetic-b", headers=as_("batch")
    )
    assert two.status_code == 400 and issue(two)["code"] == "not-supported"
    system = client.get("/$export?patient=Patient/synthetic-a", headers=as_("batch"))
    assert system.status_code == 400 and issue(system)["expression"] == ["patient"]


def test_a_patient_bound_caller_exports_its_own_patient_only(
    app: Flask, client: FlaskClient
) -> None:
    own = client.get("/Patient/$export", headers=as_("diary_app"))
    assert own.status_code == 202
    assert job_request(app, own)["patient"] == PATIENT
    other = client.get(
        "/Patient/$export?patient=Patient/synthetic-mg-002", headers=as_("diary_app")
    )
    system = client.get("/$export", headers=as_("diary_app"))
    # The same answer for the whole system as for another patient: 403, nothing revealed.
    assert other.status_code == system.status_code == 403
    assert issue(other) == issue(system)


def test_credentials_are_still_needed(client: FlaskClient) -> None:
    refused = client.get("/$export", headers=ASYNC)
    assert refused.status_code == 401
    assert issue(refused)["code"] == "login"


def test_group_export_is_not_supported_without_a_configured_cohort(client: FlaskClient) -> None:
    refused = client.get("/Group/registry/$export", headers=as_("batch"))
    assert refused.status_code == 400
    assert issue(refused)["code"] == "not-supported"


def test_group_export_maps_the_configured_cohort(tmp_path: Path) -> None:
    app = create_app(Settings.from_env(make_env(tmp_path, DIARYBRIDGE_EXPORT_GROUP="registry")))
    app.test_client_class = ContractClient
    client = app.test_client()
    started = client.get("/Group/registry/$export?_type=Observation", headers=as_("batch"))
    assert started.status_code == 202
    assert job_request(app, started)["patient"] is None
    assert client.get("/Group/other/$export", headers=as_("batch")).status_code == 404
    assert client.get("/Group/registry/$export", headers=as_("diary_app")).status_code == 403
    statement = client.get("/metadata").get_json(force=True)
    [group] = [r for r in statement["rest"][0]["resource"] if r["type"] == "Group"]
    assert group["operation"][0]["definition"] == EXPORT_OPERATIONS["Group"]


def test_unknown_and_failed_jobs_answer_operation_outcomes(client: FlaskClient) -> None:
    unknown = client.get("/exports/no-such-job", headers=headers("batch"))
    assert unknown.status_code == 404 and issue(unknown)["code"] == "not-found"
    started = client.get("/$export", headers=as_("batch"))
    status_path = "/" + started.headers["Content-Location"].split("/", 3)[3]
    deadline = time.monotonic() + 30
    while (polled := client.get(status_path, headers=headers("batch"))).status_code == 202:
        assert time.monotonic() < deadline, "the job did not fail in 30 s"
        time.sleep(0.05)
    # No FHIR server is configured here, so the job fails: a 5xx OperationOutcome, no values.
    assert polled.status_code == 500
    assert issue(polled)["diagnostics"] == "NoFhirServer"


def test_metadata_is_a_truthful_capability_statement(app: Flask, client: FlaskClient) -> None:
    answer = client.get("/metadata")  # no credentials: discovery
    assert answer.status_code == 200 and answer.mimetype == "application/fhir+json"
    statement = answer.get_json(force=True)
    get_fhir_model_class("CapabilityStatement").model_validate(statement)
    assert statement["kind"] == "instance" and statement["fhirVersion"] == "4.0.1"
    [rest] = statement["rest"]
    assert rest["security"]["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    assert "extension" not in rest["security"]  # no token URL configured: none claimed

    # Every declared operation is routed, and every $export route is declared.
    routes = {
        re.sub(r"<[^>]+>", "[id]", rule.rule): rule.methods or set()
        for rule in app.url_map.iter_rules()
    }
    declared = {"/$export": rest["operation"]} | {
        (f"/{r['type']}/$export" if r["type"] == "Patient" else f"/{r['type']}/[id]/$export"): r[
            "operation"
        ]
        for r in rest["resource"]
        if "operation" in r
    }
    for path, operations in declared.items():
        assert [op["name"] for op in operations] == ["export"]
        assert {"GET", "POST"} <= routes[path], path
    assert {p for p in routes if p.endswith("$export")} - set(declared) == {"/Group/[id]/$export"}
    # No resource interaction is claimed: DiaryBridge serves none.
    assert all("interaction" not in r for r in rest["resource"])
    assert "interaction" not in rest
    assert {
        op["definition"] for r in [rest, *rest["resource"]] for op in r.get("operation", [])
    } == {EXPORT_OPERATIONS["system"], EXPORT_OPERATIONS["Patient"]}


def test_metadata_in_r5_on_request(client: FlaskClient) -> None:
    by_query = client.get("/metadata?fhirVersion=5.0").get_json(force=True)
    by_accept = client.get(
        "/metadata", headers={"Accept": "application/fhir+json; fhirVersion=5.0"}
    ).get_json(force=True)
    assert by_query == by_accept
    assert by_query["fhirVersion"] == "5.0.0"
    r5.get_fhir_model_class("CapabilityStatement").model_validate(by_query)


def test_smart_configuration_from_settings(tmp_path: Path) -> None:
    env = make_env(
        tmp_path,
        DIARYBRIDGE_SMART_TOKEN_URL="https://auth.example.test/token",
        DIARYBRIDGE_JWKS_URL="https://auth.example.test/jwks",
        DIARYBRIDGE_JWT_ISSUER="https://auth.example.test",
        DIARYBRIDGE_JWT_AUDIENCE="https://diarybridge.example.test",
    )
    app = create_app(Settings.from_env(env))
    app.test_client_class = ContractClient
    client = app.test_client()
    config = client.get("/.well-known/smart-configuration").get_json()
    assert config["token_endpoint"] == "https://auth.example.test/token"
    assert config["issuer"] == "https://auth.example.test"
    assert config["jwks_uri"] == "https://auth.example.test/jwks"
    assert config["grant_types_supported"] == ["client_credentials"]
    assert config["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert "client-confidential-asymmetric" in config["capabilities"]
    assert "system/*.read" in config["scopes_supported"]
    statement = client.get("/metadata").get_json(force=True)
    [oauth] = statement["rest"][0]["security"]["extension"]
    assert oauth["extension"] == [{"url": "token", "valueUri": "https://auth.example.test/token"}]


def test_smart_configuration_without_an_authorization_server(client: FlaskClient) -> None:
    missing = client.get("/.well-known/smart-configuration")
    assert missing.status_code == 404 and issue(missing)["code"] == "not-found"


def test_post_exports_cannot_set_what_only_a_kick_off_stores(client: FlaskClient) -> None:
    # kickoff/ignored shape the manifest; a POST /exports body must not be able to forge them.
    for field in ("kickoff", "ignored"):
        refused = client.post("/exports", json={field: "x"}, headers=headers("batch"))
        assert refused.status_code == 422
        assert refused.get_json()["problems"][0]["field"] == field


def test_the_token_url_setting_must_be_a_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DIARYBRIDGE_SMART_TOKEN_URL"):
        Settings.from_env(make_env(tmp_path, DIARYBRIDGE_SMART_TOKEN_URL="auth.example.test"))


def test_a_kick_off_logs_no_patient(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    app = create_app(Settings.from_env(make_env(tmp_path, DIARYBRIDGE_LOG_LEVEL="DEBUG")))
    client = app.test_client()
    caplog.set_level("DEBUG")
    marker = "zq7BulkMarker41"
    started = client.get(
        f"/Patient/$export?patient=Patient/{marker}&_typeFilter=Observation%3Fcode%3D{marker}",
        headers=as_("batch"),
    )
    assert started.status_code == 202
    refused = client.get(f"/Patient/$export?patient=Patient/{marker}", headers=as_("batch", {}))
    assert refused.status_code == 400 and marker not in refused.get_data(as_text=True)
    wiring.of(app).exports.join(10)  # its run (failing: no server) logs too
    out, err = capfd.readouterr()
    logged = out + err + "".join(str(vars(record)) for record in caplog.records)
    assert "export job" in logged  # the runner did log, and not the patient
    assert marker not in logged


def test_local_codesystems_are_served_without_credentials(client: FlaskClient) -> None:
    answer = client.get("/CodeSystem/mg-diary")  # no credentials: definitions, no patient data
    assert answer.status_code == 200
    assert answer.mimetype == "application/fhir+json"
    body = answer.get_json(force=True)
    assert body["resourceType"] == "CodeSystem"
    assert body["url"] == "https://diarybridge.dev/fhir/CodeSystem/mg-diary"
    get_fhir_model_class("CodeSystem").model_validate(body)
    missing = client.get("/CodeSystem/not-ours")
    assert missing.status_code == 404
    assert missing.get_json(force=True)["resourceType"] == "OperationOutcome"
