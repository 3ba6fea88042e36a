"""Push signals to the clinic's FHIR server after a delivery: a Flag and a DetectedIssue each.

Runs after the outbox delivered a batch, for the patients in it: their signals are evaluated
again and every active signal, and every signal a delivered record touched (its evidence, or the
record that resolved it), is written with an idempotent upsert on its deterministic identity, so
a resend never duplicates and a resolved signal's Flag becomes inactive in place.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from mappings.context import FhirVersion, MappingContext, client_source
from mappings.identifiers import PATIENT_SCOPE, SYSTEM_PREFIX, business_key
from mappings.signals import RuleSet
from mappings.signals.fhir import (
    FLAG_PART,
    ISSUE_PART,
    SIGNAL,
    signal_communication,
    signal_source_id,
    signal_to_resources,
)
from service.fhir_client import FhirClient, choose_push_strategy
from service.fhir_client.capabilities import PushMethod
from service.signals import PatientSignal, patient_signals
from service.store.signals import server_ids

log = logging.getLogger(__name__)
SIGNAL_TYPES = ("Flag", "DetectedIssue")


@dataclass(frozen=True)
class Touched:
    """A record a delivery wrote: its namespace, kind, id and patient."""

    namespace: str
    kind: str
    source_id: str
    patient_key: str


def _touches(item: PatientSignal, touched: set[tuple[str, str, str]]) -> bool:
    s = item.signal
    keys = {(item.namespace, e.kind, e.record_id) for e in s.evidence}
    if s.resolved_by:
        kind, _, source_id = s.resolved_by.partition("/")
        keys.add((item.namespace, kind, source_id))
    return bool(keys & touched)


def _escape(value: str) -> str:
    # FHIR token search: \ | , $ in a value are escaped with a backslash.
    return "".join("\\" + ch if ch in "\\|,$" else ch for ch in value)


def _token(resource: dict[str, Any]) -> str:
    ident = resource["identifier"][0]
    return f"{ident['system']}|{_escape(ident['value'])}"


def _upsert(
    client: FhirClient, resource: dict[str, Any], method: PushMethod, rid: str | None
) -> None:
    if method == "update-as-create":
        client.update(resource, request_id=rid)
        return
    body = {k: v for k, v in resource.items() if k != "id"}  # the server picks its id
    query = [("identifier", _token(resource))]
    if method == "conditional-update":
        client.conditional_update(body, query, request_id=rid)
        return
    # conditional-create never updates: find the one that exists and update it in place.
    result = client.create(body, if_none_exist=query, request_id=rid)
    if result.status != 201 and result.id:
        client.update({**body, "id": result.id}, request_id=rid)


def _context(item: PatientSignal, version: FhirVersion) -> MappingContext:
    # The id space of the records: signal resources and evidence references share it.
    return MappingContext(
        app_namespace=item.namespace,
        source=client_source(item.namespace),
        fhir_version=version,
        patient_scope=item.patient_scope or None,
    )


def _flag_identifier(item: PatientSignal) -> tuple[str, str]:
    ctx = _context(item, FhirVersion.R4)  # identifiers do not depend on the version
    key = business_key(ctx, SIGNAL, signal_source_id(item.signal), FLAG_PART)
    return key.system, key.value


def _ours(resource: dict[str, Any]) -> tuple[str, str] | None:
    for ident in resource.get("identifier") or []:
        system, value = ident.get("system", ""), ident.get("value", "")
        segments = value.split("/")
        # [patient/<token>/]signal/<source id>/<part>
        kind = segments[2] if segments[0] == PATIENT_SCOPE and len(segments) > 2 else segments[0]
        if system.startswith(SYSTEM_PREFIX) and kind == SIGNAL:
            return system, value
    return None


def _server_active_flags(
    client: FhirClient, patient_key: str, rid: str | None
) -> dict[tuple[str, str], dict[str, Any]]:
    """Our signal Flags of the patient that the server holds as active, by identifier."""
    # Flag has no status search parameter in R4: filter here.
    subject = "subject" if patient_key.startswith("Patient/") else "subject:identifier"
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for flag in client.search("Flag", [(subject, patient_key)], request_id=rid):
        ident = _ours(flag)
        if ident is not None and flag.get("status") == "active":
            found[ident] = flag
    return found


def _withdraw(
    client: FhirClient, flag: dict[str, Any], ident: tuple[str, str], rid: str | None
) -> None:
    # Its evidence is gone (records withdrawn, or history changed): never a delete, as for records.
    client.update({**flag, "status": "entered-in-error"}, request_id=rid)
    system, value = ident
    issue_value = value.removesuffix(f"/{FLAG_PART}") + f"/{ISSUE_PART}"
    query = [("identifier", f"{system}|{_escape(issue_value)}")]
    for issue in client.search("DetectedIssue", query, request_id=rid):
        client.update({**issue, "status": "entered-in-error"}, request_id=rid)


def push_signals(
    sessions: sessionmaker[Session],
    client: FhirClient,
    rules: RuleSet,
    delivered: Iterable[Touched],
    *,
    method: str = "auto",
    request_id: str | None = None,
    care_team: str = "",
) -> int:
    """Write the signals of the delivered records' patients; returns how many were written.

    Written: every active signal, every signal a delivered record touched, and every signal the
    server still shows active though it has resolved (a repair after a failed push). A Flag of
    ours the server shows active for a signal that no longer exists becomes entered-in-error.
    care_team (a CareTeam/Practitioner/... reference; empty: off) also gets a Communication per
    active signal (one per signal: written again, it stays one).
    """
    delivered = list(delivered)
    if not delivered:
        return 0
    touched = {(d.namespace, d.kind, d.source_id) for d in delivered}
    caps = client.capabilities()
    version = FhirVersion(caps.release)
    types = (*SIGNAL_TYPES, "Communication") if care_team else SIGNAL_TYPES
    chosen: PushMethod = choose_push_strategy(caps, types).method
    if method in ("update-as-create", "conditional-update", "conditional-create"):
        chosen = method  # type: ignore[assignment]  # the operator's choice, as for records
    written = withdrawn = 0
    for patient_key in sorted({d.patient_key for d in delivered}):
        current = patient_signals(sessions, patient_key, rules)
        on_server = _server_active_flags(client, patient_key, request_id)
        items = [
            i
            for i in current
            if i.signal.active or _touches(i, touched) or _flag_identifier(i) in on_server
        ]
        with sessions.begin() as session:
            known = server_ids(session, patient_key)
        for item in items:
            source = (item.namespace, item.patient_scope)
            mine = {
                (k, s, p): sid for (ns, sc, k, s, p), sid in known.items() if (ns, sc) == source
            }
            ctx = _context(item, version)
            resources = signal_to_resources(item.signal, ctx, mine)
            if care_team and item.signal.active:
                resources.append(signal_communication(item.signal, ctx, care_team))
            for resource in resources:
                _upsert(client, resource, chosen, request_id)
            written += 1
        live = {_flag_identifier(i) for i in current}
        for ident, flag in on_server.items():
            if ident not in live:
                _withdraw(client, flag, ident, request_id)
                withdrawn += 1
    log.info("signals pushed", extra={"signals": written, "withdrawn": withdrawn})
    return written
