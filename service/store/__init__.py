"""Durable sync state: the ledger of source records, the outbox workers claim from, the audit log.

Functions take a Session and run in the caller's transaction, so it stays short and explicit:

    factory = make_session_factory(make_engine(settings.database_url))
    with factory.begin() as session:          # commits on leaving the block
        request_id = accept(session, client_id, items)

The store knows no FHIR and no HTTP: it keeps JSON payloads and strings.
"""

from service.store.audit import record_audit
from service.store.engine import make_engine, make_session_factory
from service.store.errors import (
    AmbiguousRecordError,
    DuplicateItemError,
    EntryNotFoundError,
    InvalidItemError,
    LeaseLostError,
    MigrationError,
    PatientMismatchError,
    StorageUnavailable,
    StoreError,
)
from service.store.hashing import canonical_json, content_hash
from service.store.ledger import (
    accept,
    get_entry,
    get_request,
    list_entries,
    request_retraction,
    requeue_failed,
    status_counts,
)
from service.store.migrate import SchemaGate, current_revision, head_revision, upgrade
from service.store.models import LedgerStatus, RecordKind
from service.store.outbox import (
    backoff_seconds,
    claim_batch,
    hold_claims,
    mark_conflict,
    mark_failed,
    mark_retracted,
    mark_sent,
    release_claims,
    renew_claims,
)
from service.store.probe import probe_write
from service.store.results import request_results
from service.store.values import (
    AcceptItem,
    ClaimedEntry,
    Disposition,
    EntryView,
    ErrorInfo,
    Patients,
    RequestItemProgress,
    RequestItemResult,
    RequestProgress,
    ResourceState,
    StatusCounts,
)

__all__ = [
    "AcceptItem",
    "AmbiguousRecordError",
    "ClaimedEntry",
    "Disposition",
    "DuplicateItemError",
    "EntryNotFoundError",
    "EntryView",
    "ErrorInfo",
    "InvalidItemError",
    "LeaseLostError",
    "LedgerStatus",
    "MigrationError",
    "PatientMismatchError",
    "Patients",
    "RecordKind",
    "RequestItemProgress",
    "RequestItemResult",
    "RequestProgress",
    "ResourceState",
    "SchemaGate",
    "StatusCounts",
    "StorageUnavailable",
    "StoreError",
    "accept",
    "backoff_seconds",
    "canonical_json",
    "claim_batch",
    "content_hash",
    "current_revision",
    "get_entry",
    "get_request",
    "head_revision",
    "hold_claims",
    "list_entries",
    "make_engine",
    "make_session_factory",
    "mark_conflict",
    "mark_failed",
    "mark_retracted",
    "mark_sent",
    "probe_write",
    "record_audit",
    "release_claims",
    "renew_claims",
    "request_results",
    "request_retraction",
    "requeue_failed",
    "status_counts",
    "upgrade",
]
