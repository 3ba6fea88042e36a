"""The signal push against a FHIR server faked with `responses`: each write method, idempotent."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import responses
from sqlalchemy.orm import Session, sessionmaker

from mappings.records import PatientRef
from mappings.signals import default_rules
from service.fhir_client import NO_RETRY, FhirClient
from service.signals.push import Touched, push_signals
from service.store import make_engine, make_session_factory, upgrade
from service.sync.accept import accept_records
from tests.unit.mappings.signal_courses import bulbar_flare

BASE = "https://fhir.clinic.test/fhir"
PATIENT = "Patient/synthetic-signals-001"
NAMESPACE = "mg-diary-app"
EMPTY = {"resourceType": "Bundle", "type": "searchset", "entry": []}


def capability(update_create: bool, conditional_update: bool) -> dict[str, Any]:
    resource = {
        "interaction": [{"code": c} for c in ("read", "create", "update", "search-type")],
        "updateCreate": update_create,
        "conditionalCreate": True,
        "conditionalUpdate": conditional_update,
    }
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "date": "2026-01-01",
        "rest": [
            {
                "mode": "server",
                "resource": [{"type": t, **resource} for t in ("Flag", "DetectedIssue")],
            }
        ],
    }


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    upgrade(engine)
    factory = make_session_factory(engine)
    accept_records(factory, NAMESPACE, bulbar_flare(PatientRef(reference=PATIENT)))
    return factory


def _push(sessions: sessionmaker[Session]) -> int:
    client = FhirClient(BASE, retry=NO_RETRY)
    touched = [Touched(NAMESPACE, "diary-entry", "D-22.5", PATIENT)]
    return push_signals(sessions, client, default_rules(), touched)


def _echo(status: int) -> Any:
    def reply(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        body.setdefault("id", "server-1")
        body["meta"] = {**body.get("meta", {}), "versionId": "1"}
        return status, {}, json.dumps(body)

    return reply


def _writes() -> list[tuple[str, str]]:
    return [
        (c.request.method, c.request.url.removeprefix(BASE))
        for c in responses.calls
        if c.request.method != "GET"
    ]


@responses.activate
def test_update_as_create_puts_each_resource_at_its_deterministic_id(
    sessions: sessionmaker[Session],
) -> None:
    responses.get(f"{BASE}/metadata", json=capability(True, True))
    responses.get(f"{BASE}/Flag", json=EMPTY)
    responses.add_callback(responses.PUT, re.compile(f"{BASE}/.*"), callback=_echo(201))
    assert _push(sessions) == 2  # danger sign and worsening, both active
    writes = _writes()
    assert len(writes) == 4
    assert all(
        m == "PUT" and re.fullmatch(r"/(Flag|DetectedIssue)/[0-9a-f-]{36}", u) for m, u in writes
    )
    responses.calls.reset()
    _push(sessions)
    assert _writes() == writes  # a resend writes the same four ids again, nothing new


@responses.activate
def test_conditional_update_puts_on_the_business_identifier_without_an_id(
    sessions: sessionmaker[Session],
) -> None:
    responses.get(f"{BASE}/metadata", json=capability(False, True))
    responses.get(f"{BASE}/Flag", json=EMPTY)
    responses.add_callback(responses.PUT, re.compile(f"{BASE}/.*"), callback=_echo(201))
    _push(sessions)
    puts = [c.request for c in responses.calls if c.request.method == "PUT"]
    assert len(puts) == 4
    for request in puts:
        assert "?identifier=" in request.url and "signal%2F" in request.url
        assert "id" not in json.loads(request.body)


@responses.activate
def test_conditional_create_updates_the_one_that_already_exists(
    sessions: sessionmaker[Session],
) -> None:
    caps = capability(False, False)
    responses.get(f"{BASE}/metadata", json=caps)
    responses.get(f"{BASE}/Flag", json=EMPTY)
    # The server already holds them: 200 with the existing resource, then an update by its id.
    responses.add_callback(responses.POST, re.compile(f"{BASE}/.*"), callback=_echo(200))
    responses.add_callback(responses.PUT, re.compile(f"{BASE}/.*"), callback=_echo(200))
    _push(sessions)
    methods = [m for m, _ in _writes()]
    assert methods == ["POST", "PUT"] * 4
    assert all(u.endswith("/server-1") for m, u in _writes() if m == "PUT")


def _with_communication(caps: dict[str, Any]) -> dict[str, Any]:
    resources = caps["rest"][0]["resource"]
    return {
        **caps,
        "rest": [
            {**caps["rest"][0], "resource": [*resources, {**resources[0], "type": "Communication"}]}
        ],
    }


@responses.activate
def test_a_configured_care_team_gets_one_communication_per_active_signal(
    sessions: sessionmaker[Session],
) -> None:
    responses.get(f"{BASE}/metadata", json=_with_communication(capability(True, True)))
    responses.get(f"{BASE}/Flag", json=EMPTY)
    responses.add_callback(responses.PUT, re.compile(f"{BASE}/.*"), callback=_echo(201))
    client = FhirClient(BASE, retry=NO_RETRY)
    touched = [Touched(NAMESPACE, "diary-entry", "D-22.5", PATIENT)]
    push_signals(sessions, client, default_rules(), touched, care_team="CareTeam/mg-clinic")
    sent = [json.loads(c.request.body) for c in responses.calls if c.request.method == "PUT"]
    messages = [r for r in sent if r["resourceType"] == "Communication"]
    assert len(messages) == 2  # danger sign and worsening
    assert all(m["recipient"] == [{"reference": "CareTeam/mg-clinic"}] for m in messages)
    first = _writes()
    responses.calls.reset()
    push_signals(sessions, client, default_rules(), touched, care_team="CareTeam/mg-clinic")
    assert _writes() == first  # the same ids again: still one Communication per signal


@responses.activate
def test_without_a_care_team_no_communication_is_sent(sessions: sessionmaker[Session]) -> None:
    responses.get(f"{BASE}/metadata", json=capability(True, True))
    responses.get(f"{BASE}/Flag", json=EMPTY)
    responses.add_callback(responses.PUT, re.compile(f"{BASE}/.*"), callback=_echo(201))
    _push(sessions)
    assert not [u for _, u in _writes() if u.startswith("/Communication")]


def test_the_care_team_setting_is_off_by_default_and_checked() -> None:
    from service.config import ConfigError, Settings

    assert Settings.from_env({}).signal_care_team == ""
    env = {"DIARYBRIDGE_SIGNAL_CARE_TEAM": "CareTeam/mg-clinic"}
    assert Settings.from_env(env).signal_care_team == "CareTeam/mg-clinic"
    with pytest.raises(ConfigError, match="DIARYBRIDGE_SIGNAL_CARE_TEAM"):
        Settings.from_env({"DIARYBRIDGE_SIGNAL_CARE_TEAM": "Patient/synthetic-signals-001"})
