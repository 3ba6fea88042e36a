"""Plain values going into and out of the store, so callers never hold ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Disposition(StrEnum):
    """What accept() did with one item."""

    QUEUED = "queued"  # new, or content changed, or re-submitted after retraction
    UNCHANGED = "unchanged"  # same content as already stored; status left as it was


@dataclass(frozen=True)
class AcceptItem:
    """One source record to store: its key, the patient key and our record as JSON data.

    per_patient: the sender is bound to this patient, so the record id is the patient's own
    (two patients of one app may both use it); else the id is unique within the namespace.
    """

    namespace: str
    kind: str  # "diary-entry" | "infusion"
    source_id: str
    patient_key: str
    record: dict[str, Any]
    per_patient: bool = False


@dataclass(frozen=True)
class Patients:
    """Whose records a caller may see: these patient keys, or every patient (keys None).

    Every store read of patient data takes one, so no path can forget to filter.
    """

    keys: frozenset[str] | None

    @classmethod
    def every(cls) -> Patients:
        """No patient restriction (a caller with user/ or system/ access)."""
        return cls(None)

    @classmethod
    def only(cls, *keys: str) -> Patients:
        """Just these patients (a patient-bound caller)."""
        return cls(frozenset(keys))

    def allows(self, patient_key: str) -> bool:
        """Whether a record of this patient is visible."""
        return self.keys is None or patient_key in self.keys


@dataclass(frozen=True)
class ErrorInfo:
    """Why a push failed: HTTP status, the server's issue code, severity and expression.

    `diagnostics` (already cleaned) lives for the request that pushed, for system/* callers;
    it is never stored, since a server may quote the refused body (notes, values) in it.
    """

    status: int | None = None
    code: str | None = None
    diagnostics: str | None = None
    severity: str | None = None
    expression: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The JSON stored in ledger_entry.last_error: no diagnostics."""
        return {
            "status": self.status,
            "code": self.code,
            "severity": self.severity,
            "expression": list(self.expression),
        }


@dataclass(frozen=True)
class ResourceState:
    """A FHIR resource produced from an entry, as last seen on the server."""

    resource_type: str
    identifier_system: str
    identifier_value: str
    server_id: str | None = None
    version_id: str | None = None
    etag: str | None = None
    last_sent_hash: str | None = None


@dataclass(frozen=True)
class ClaimedEntry:
    """A ledger entry a worker holds until lease_expires_at; report back with the same object."""

    ledger_id: int
    namespace: str
    kind: str
    source_id: str
    patient_key: str
    record: dict[str, Any]
    content_hash: str
    attempts: int  # including this one
    claimed_by: str
    claim_token: str
    lease_expires_at: datetime
    resources: tuple[ResourceState, ...] = ()
    retract: bool = False  # withdraw the resources instead of sending the record
    patient_scope: str = ""  # the patient whose own id space source_id is in, "" for the app's


@dataclass(frozen=True)
class EntryView:
    """Everything known about one source record."""

    ledger_id: int
    namespace: str
    kind: str
    source_id: str
    patient_key: str
    record: dict[str, Any]
    content_hash: str
    status: str
    in_flight: bool
    attempts: int
    last_error: dict[str, Any] | None
    conflict: dict[str, Any] | None
    sent_hash: str | None
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime
    resources: tuple[ResourceState, ...] = ()


@dataclass(frozen=True)
class RequestItemProgress:
    """One item of a sync request: its current state, or 'superseded' if newer content came."""

    kind: str
    source_id: str
    disposition: str
    state: str


@dataclass(frozen=True)
class RequestItemResult:
    """One item of a sync request with what is known of its delivery, to answer the request."""

    kind: str
    source_id: str
    disposition: str  # what accept() did: see Disposition
    content_hash: str  # the content this request sent
    delivered: str | None  # created | updated | unchanged, once that content was delivered
    status: str  # the entry's status now (it may concern newer content: see entry_hash)
    entry_hash: str  # the entry's content now
    last_error: dict[str, Any] | None
    resources: tuple[ResourceState, ...] = ()


@dataclass(frozen=True)
class RequestProgress:
    """Progress of an accepted sync request."""

    request_id: str
    client_id: str
    item_count: int
    created_at: datetime
    counts: dict[str, int]  # state -> number of items
    items: tuple[RequestItemProgress, ...] = ()

    @property
    def done(self) -> bool:
        """True when no item is waiting for delivery any more."""
        return self.counts.get("queued", 0) == 0


@dataclass(frozen=True)
class StatusCounts:
    """Counts per status for health and metrics; in_flight is the part of 'queued' under lease."""

    counts: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    oldest_queued_age_seconds: float | None = None
