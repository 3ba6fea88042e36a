"""The tables of durable sync: ledger, its FHIR resources, accepted sync requests, audit log.

ledger_entry      one row per source record with its JSON,
                  content hash, delivery status and the claim (lease) of the worker pushing it
ledger_resource   one row per FHIR resource produced from a ledger entry: business identifier,
                  server id, versionId / ETag, hash of what was last sent
sync_request      one accepted POST (the 202 with a status URL): who, how many, when
sync_request_item which ledger entries a request enqueued, with the hash it enqueued, the
                  entry's patient (a request is shown only to callers of its patients) and
                  what the delivery of that hash did (created / updated / unchanged)
audit_log         who did what to which patient's data, when (ids and counts, no values)
export_job        one bulk export: its request, status, runner heartbeat and manifest

Life of a ledger entry (see ledger.py and outbox.py):
  accept: new or changed content -> queued (attempts 0); same content -> status unchanged
  claim_batch: queued and next_attempt_at <= now -> still queued, leased (claim_token,
      lease_expires_at = next_attempt_at = now + lease, attempts + 1); an expired lease is due
  request_retraction: -> queued with retract_requested (the worker withdraws the resources)
  mark_sent -> sent | mark_retracted -> retracted | mark_conflict -> conflict
  mark_failed -> queued after a backoff, or failed when not retryable / out of attempts
  any report after new content arrived mid-push -> queued again; requeue_failed: failed -> queued
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import cast

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from service.store.coltypes import UtcDateTime


class LedgerStatus(StrEnum):
    """Delivery state of a ledger entry; a claim (lease) is held on top of 'queued'."""

    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    CONFLICT = "conflict"
    RETRACTED = "retracted"


class RecordKind(StrEnum):
    """The kinds of source record the ledger holds: a mirror of mappings.records.RecordKind (the
    store imports no mappings; tests/unit/mappings/test_mappings_vocabulary.py holds them equal)."""

    DIARY_ENTRY = "diary-entry"
    INFUSION = "infusion"


def _in_list(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


# Named constraints so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class LedgerEntry(Base):
    """One source record and where it stands in delivery."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        # A record id names one record per id space: the app's (patient_scope "") or, for a
        # patient-bound app, each patient's own. So two patients' equal ids are two rows.
        UniqueConstraint("namespace", "patient_scope", "kind", "source_id"),
        # And one id never names two records of one patient (whichever space it came from).
        UniqueConstraint("namespace", "kind", "source_id", "patient_key"),
        CheckConstraint(_in_list("status", LedgerStatus), name="status"),
        CheckConstraint(_in_list("kind", RecordKind), name="kind"),
        # The claim query: status = 'queued' AND next_attempt_at <= now ORDER BY next_attempt_at.
        Index("ix_ledger_entry_claimable", "status", "next_attempt_at"),
        Index("ix_ledger_entry_status_queued_at", "status", "queued_at"),
        Index("ix_ledger_entry_patient_key", "patient_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(200))  # the diary app's namespace
    kind: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[str] = mapped_column(String(200))  # entry_id / infusion_id from the app
    # The record's patient: set once, never changed (a record belongs to one patient forever).
    patient_key: Mapped[str] = mapped_column(String(400))
    # "" when the record id is unique in the app (system callers, rows from before 0004);
    # the patient key when it is the patient's own (a patient-bound caller): the identifiers
    # we mint carry it too (mappings.identifiers), so it must never change either.
    patient_scope: Mapped[str] = mapped_column(String(400), default="", server_default="")
    record_json: Mapped[str] = mapped_column(Text)  # canonical JSON of our record format
    content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims since last (re)queue
    last_error: Mapped[str | None] = mapped_column(Text)  # JSON error, no diagnostics
    conflict_json: Mapped[str | None] = mapped_column(Text)  # the server's version on conflict
    sent_hash: Mapped[str | None] = mapped_column(String(64))  # content_hash last delivered
    # The app deleted the record: the worker marks its resources entered-in-error, then
    # 'retracted'. New content cancels it (the record is back).
    retract_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Eligible for a claim from this time; a claim moves it to the lease expiry, so an expired
    # lease makes the row claimable again without a sweeper.
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # last (re)queued
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claim_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    resources: Mapped[list[LedgerResource]] = relationship(
        back_populates="entry", cascade="all, delete-orphan", order_by="LedgerResource.id"
    )


class LedgerResource(Base):
    """A FHIR resource produced from a ledger entry and its state on the clinic's server."""

    __tablename__ = "ledger_resource"
    __table_args__ = (
        # Explicit name: the generated one passes PostgreSQL's 63-character limit.
        UniqueConstraint(
            "ledger_id",
            "resource_type",
            "identifier_system",
            "identifier_value",
            name="uq_ledger_resource_identifier",
        ),
        Index("ix_ledger_resource_server", "resource_type", "server_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ledger_id: Mapped[int] = mapped_column(ForeignKey("ledger_entry.id", ondelete="CASCADE"))
    resource_type: Mapped[str] = mapped_column(String(64))
    identifier_system: Mapped[str] = mapped_column(String(400))
    identifier_value: Mapped[str] = mapped_column(String(400))
    server_id: Mapped[str | None] = mapped_column(String(64))
    version_id: Mapped[str | None] = mapped_column(String(64))
    etag: Mapped[str | None] = mapped_column(String(100))
    last_sent_hash: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    entry: Mapped[LedgerEntry] = relationship(back_populates="resources")


class SyncRequest(Base):
    """One accepted sync request, reported by GET /sync/requests/{id}."""

    __tablename__ = "sync_request"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid4
    client_id: Mapped[str] = mapped_column(String(200))
    item_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SyncRequestItem(Base):
    """A ledger entry a request touched, with the content hash it asked to deliver."""

    __tablename__ = "sync_request_item"
    __table_args__ = (Index("ix_sync_request_item_ledger_id", "ledger_id"),)

    request_id: Mapped[str] = mapped_column(
        ForeignKey("sync_request.id", ondelete="CASCADE"), primary_key=True
    )
    ledger_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_entry.id", ondelete="CASCADE"), primary_key=True
    )
    content_hash: Mapped[str] = mapped_column(String(64))
    disposition: Mapped[str] = mapped_column(String(16))  # what accept() did: see Disposition
    # created | updated | unchanged: what the delivery of this content_hash did on the server,
    # recorded by whichever worker delivered it, so the request's answer can say so.
    outcome: Mapped[str | None] = mapped_column(String(16))
    patient_key: Mapped[str] = mapped_column(String(400))  # the entry's patient, for filtering


class AuditLog(Base):
    """Who (client, scopes) did what (action, kind, count) to whose data (patient), when."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_patient", "patient"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    client_id: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(Text)  # space-separated, as in OAuth
    patient: Mapped[str | None] = mapped_column(String(400))  # patient key, never values
    action: Mapped[str] = mapped_column(String(64))
    resource_kind: Mapped[str | None] = mapped_column(String(64))
    count: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(64))


# Core handles for the statements that bypass the ORM (bulk insert, claim update).
ledger_entry_table = cast(Table, LedgerEntry.__table__)
ledger_resource_table = cast(Table, LedgerResource.__table__)
sync_request_item_table = cast(Table, SyncRequestItem.__table__)


class ExportJobStatus(StrEnum):
    """Life of an export job; 'running' rows carry the runner and its heartbeat."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ExportJob(Base):
    """One bulk export (POST /exports): what was asked, who runs it, and its manifest when done."""

    __tablename__ = "export_job"
    __table_args__ = (
        CheckConstraint(_in_list("status", ExportJobStatus), name="status"),
        Index("ix_export_job_status_heartbeat_at", "status", "heartbeat_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid4
    client_id: Mapped[str] = mapped_column(String(200))
    patient: Mapped[str | None] = mapped_column(String(400))  # patient key, if confined to one
    request_json: Mapped[str] = mapped_column(Text)  # since, until, types, format, patient
    request_url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[str | None] = mapped_column(String(400))  # counts only, never values
    manifest_json: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)  # error type and safe message
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # runs started (resumes count)
    runner_id: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class SignalInput(Base):
    """When each of a patient's records happened, so signals read only a window of them.

    Keyed like the ledger row it indexes (namespace, kind, source id, patient); written when the
    record is accepted. A retracted record stays here: the ledger's status leaves it out.
    """

    __tablename__ = "signal_input"
    __table_args__ = (Index("ix_signal_input_window", "patient_key", "namespace", "at"),)

    patient_key: Mapped[str] = mapped_column(String(400), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    source_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())  # recorded_at, or an infusion's start


class SignalState(Base):
    """The stored signals of one patient's records from one app and id space (all episodes,
    as JSON), and the fingerprint of the rules that made them ("" = stale: evaluate again)."""

    __tablename__ = "signal_state"

    patient_key: Mapped[str] = mapped_column(String(400), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(200), primary_key=True)
    patient_scope: Mapped[str] = mapped_column(String(400), primary_key=True)
    rules_fingerprint: Mapped[str] = mapped_column(String(64))
    signals_json: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


signal_input_table = cast(Table, SignalInput.__table__)
signal_state_table = cast(Table, SignalState.__table__)
