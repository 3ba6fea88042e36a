"""Signals in the store: a patient's current records from the ledger (whole, or a window of
them by time), when each record happened (signal_input), and the stored signals (signal_state).

Every function takes the patient: rows are keyed by patient, so no call reaches another's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Insert, Select, and_, bindparam, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.store.models import (
    LedgerEntry,
    LedgerResource,
    LedgerStatus,
    SignalInput,
    SignalState,
    signal_input_table,
    signal_state_table,
)

STALE = ""  # the fingerprint of a state to evaluate again from the whole history


@dataclass(frozen=True)
class StoredRecord:
    """One record of a patient as the app sent it last: namespace, id space (patient_scope: the
    patient key when the app numbers records per patient, else ""), kind, id, hash and JSON text.

    The text stays unparsed: a caller that already holds this content (same hash) skips it.
    """

    namespace: str
    patient_scope: str
    kind: str
    source_id: str
    content_hash: str
    record_json: str

    def record(self) -> dict[str, Any]:
        """The record's JSON, parsed."""
        parsed: dict[str, Any] = json.loads(self.record_json)
        return parsed


def _current(patient_key: str) -> Select[Any]:
    return select(
        LedgerEntry.namespace,
        LedgerEntry.patient_scope,
        LedgerEntry.kind,
        LedgerEntry.source_id,
        LedgerEntry.content_hash,
        LedgerEntry.record_json,
    ).where(
        LedgerEntry.patient_key == patient_key,
        LedgerEntry.status != LedgerStatus.RETRACTED.value,
        LedgerEntry.retract_requested.is_(False),
    )


def patient_records(
    session: Session, patient_key: str, namespace: str | None = None
) -> list[StoredRecord]:
    """The patient's records (in every namespace, or one), leaving out the ones the app
    withdrew."""
    query = _current(patient_key)
    if namespace is not None:
        query = query.where(LedgerEntry.namespace == namespace)
    return [StoredRecord(*row) for row in session.execute(query)]


RecordHead = tuple[str, str, str, str]  # id space, kind, id, content hash: a record, no JSON


# Built once: the window read runs for every accepted batch.
_WINDOW = (
    select(
        LedgerEntry.patient_scope, LedgerEntry.kind, LedgerEntry.source_id, LedgerEntry.content_hash
    )
    .join(
        SignalInput,
        and_(
            SignalInput.patient_key == LedgerEntry.patient_key,
            SignalInput.namespace == LedgerEntry.namespace,
            SignalInput.kind == LedgerEntry.kind,
            SignalInput.source_id == LedgerEntry.source_id,
        ),
    )
    .where(
        SignalInput.patient_key == bindparam("patient_key"),
        SignalInput.namespace == bindparam("namespace"),
        SignalInput.at >= bindparam("start"),
        LedgerEntry.status != LedgerStatus.RETRACTED.value,
        LedgerEntry.retract_requested.is_(False),
    )
)


def window_heads(
    session: Session, patient_key: str, namespace: str, start: datetime
) -> list[RecordHead]:
    """The patient's current records from one namespace that happened at or after `start`,
    without their JSON (a caller holds most of them parsed already): one indexed query."""
    params = {"patient_key": patient_key, "namespace": namespace, "start": start}
    # Core on the session's connection: the ORM layer (autoflush, ORM results) is not needed.
    rows = session.connection().execute(_WINDOW, params)
    return [(scope, kind, sid, digest) for scope, kind, sid, digest in rows]


def records_by_id(
    session: Session, patient_key: str, namespace: str, keys: Iterable[tuple[str, str]]
) -> list[StoredRecord]:
    """The patient's current records from one namespace with these (kind, id), with JSON."""
    wanted = sorted(set(keys))
    if not wanted:
        return []
    query = _current(patient_key).where(
        LedgerEntry.namespace == namespace,
        tuple_(LedgerEntry.kind, LedgerEntry.source_id).in_(wanted),
    )
    return [StoredRecord(*row) for row in session.execute(query)]


@cache
def _upsert(dialect: str, table: str) -> Insert:
    """INSERT .. ON CONFLICT (the primary key) DO UPDATE the other columns; built once."""
    target = signal_input_table if table == "signal_input" else signal_state_table
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(target)
    keys = [c.name for c in target.primary_key.columns]
    others = {c.name: insert.excluded[c.name] for c in target.columns if c.name not in keys}
    return insert.on_conflict_do_update(index_elements=keys, set_=others)


def note_times(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """When records happened: rows of patient_key, namespace, kind, source_id, at (one
    statement; a changed record's new time replaces its old one)."""
    if rows:
        dialect = session.get_bind().dialect.name
        session.connection().execute(_upsert(dialect, "signal_input"), list(rows))


_LOCK = (
    select(SignalState.patient_scope, SignalState.rules_fingerprint, SignalState.signals_json)
    .where(
        SignalState.patient_key == bindparam("patient_key"),
        SignalState.namespace == bindparam("namespace"),
    )
    .with_for_update()
)


def lock_states(session: Session, patient_key: str, namespace: str) -> dict[str, tuple[str, str]]:
    """The stored signals of the patient's records from one namespace, locked until commit:
    id space -> (rules fingerprint, signals JSON text)."""
    rows = session.connection().execute(_LOCK, {"patient_key": patient_key, "namespace": namespace})
    return {scope: (fingerprint, text) for scope, fingerprint, text in rows}


def create_state(
    session: Session, patient_key: str, namespace: str, patient_scope: str, now: datetime
) -> None:
    """A stale state row for the patient's records from one namespace and id space, unless
    one exists (a concurrent insert waits for the other transaction, then does nothing)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.connection().execute(
        insert(signal_state_table).on_conflict_do_nothing(),
        {
            "patient_key": patient_key,
            "namespace": namespace,
            "patient_scope": patient_scope,
            "rules_fingerprint": STALE,
            "signals_json": "{}",
            "updated_at": now,
        },
    )


def save_states(
    session: Session,
    patient_key: str,
    namespace: str,
    states: Mapping[str, tuple[str, str]],
    now: datetime,
) -> None:
    """Store signals: id space -> (rules fingerprint, signals JSON text); one statement."""
    if not states:
        return
    statement = _upsert(session.get_bind().dialect.name, "signal_state")
    session.connection().execute(
        statement,
        [
            {
                "patient_key": patient_key,
                "namespace": namespace,
                "patient_scope": scope,
                "rules_fingerprint": fingerprint,
                "signals_json": text,
                "updated_at": now,
            }
            for scope, (fingerprint, text) in sorted(states.items())
        ],
    )


def mark_stale(session: Session, patient_keys: Iterable[str], now: datetime) -> None:
    """The patients' stored signals no longer follow from their records (a record withdrawn,
    or an evaluation failed): the next reader or accepted record evaluates the whole history."""
    keys = sorted(set(patient_keys))
    if keys:
        session.execute(
            update(SignalState)
            .where(SignalState.patient_key.in_(keys))
            .values(rules_fingerprint=STALE, updated_at=now)
        )


def patient_states(session: Session, patient_key: str) -> dict[tuple[str, str], tuple[str, str]]:
    """The patient's stored signals: (namespace, id space) -> (rules fingerprint, JSON text)."""
    rows = session.execute(
        select(
            SignalState.namespace,
            SignalState.patient_scope,
            SignalState.rules_fingerprint,
            SignalState.signals_json,
        ).where(SignalState.patient_key == patient_key)
    )
    return {(ns, scope): (fingerprint, text) for ns, scope, fingerprint, text in rows}


def patient_sources(session: Session, patient_key: str) -> set[tuple[str, str]]:
    """(namespace, id space) of the patient's current records."""
    rows = session.execute(
        select(LedgerEntry.namespace, LedgerEntry.patient_scope)
        .where(
            LedgerEntry.patient_key == patient_key,
            LedgerEntry.status != LedgerStatus.RETRACTED.value,
            LedgerEntry.retract_requested.is_(False),
        )
        .distinct()
    )
    return {(ns, scope) for ns, scope in rows}


def server_ids(session: Session, patient_key: str) -> dict[tuple[str, str, str, str, str], str]:
    """(namespace, patient scope, kind, source id, part) -> the server's id of the patient's
    sent resources."""
    rows = session.execute(
        select(
            LedgerEntry.namespace,
            LedgerEntry.patient_scope,
            LedgerEntry.kind,
            LedgerEntry.source_id,
            LedgerResource.identifier_value,
            LedgerResource.server_id,
        )
        .join(LedgerResource, LedgerResource.ledger_id == LedgerEntry.id)
        .where(LedgerEntry.patient_key == patient_key, LedgerResource.server_id.is_not(None))
    )
    # identifier value = [patient/<token>/]kind/source id/part; a part never contains "/".
    return {
        (ns, scope, kind, sid, value.rpartition("/")[2]): server_id
        for ns, scope, kind, sid, value, server_id in rows
        if server_id is not None
    }
