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

from sqlalchemy.orm import Session, sessionmaker

from mappings.context import FhirVersion, MappingContext
from mappings.signals import RuleSet
from mappings.signals.fhir import signal_to_resources
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


def _token(resource: dict[str, object]) -> str:
    ident = resource["identifier"][0]  # type: ignore[index]
    escaped = "".join("\\" + ch if ch in "\\|,$" else ch for ch in ident["value"])
    return f"{ident['system']}|{escaped}"


def _upsert(
    client: FhirClient, resource: dict[str, object], method: PushMethod, rid: str | None
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


def push_signals(
    sessions: sessionmaker[Session],
    client: FhirClient,
    rules: RuleSet,
    delivered: Iterable[Touched],
    *,
    method: str = "auto",
    request_id: str | None = None,
) -> int:
    """Write the signals of the delivered records' patients; returns how many were written."""
    delivered = list(delivered)
    if not delivered:
        return 0
    touched = {(d.namespace, d.kind, d.source_id) for d in delivered}
    caps = client.capabilities()
    version = FhirVersion(caps.release)
    chosen: PushMethod = choose_push_strategy(caps, SIGNAL_TYPES).method
    if method in ("update-as-create", "conditional-update", "conditional-create"):
        chosen = method  # type: ignore[assignment]  # the operator's choice, as for records
    written = 0
    for patient_key in sorted({d.patient_key for d in delivered}):
        items = [
            i
            for i in patient_signals(sessions, patient_key, rules)
            if i.signal.active or _touches(i, touched)
        ]
        if not items:
            continue
        with sessions.begin() as session:
            known = server_ids(session, patient_key)
        for item in items:
            ctx = MappingContext(
                app_namespace=item.namespace,
                source=f"urn:diarybridge:client:{item.namespace}",
                fhir_version=version,
            )
            mine = {(k, s, p): sid for (ns, k, s, p), sid in known.items() if ns == item.namespace}
            for resource in signal_to_resources(item.signal, ctx, mine):
                _upsert(client, resource, chosen, request_id)
            written += 1
    log.info("signals pushed", extra={"signals": written})
    return written
