"""Exceptions of the store layer; api/errors.py maps them to HTTP in one place."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of everything the store raises on purpose."""


class InvalidItemError(StoreError):
    """An item handed to accept() cannot be stored (unknown kind, not JSON, empty key)."""


class DuplicateItemError(StoreError):
    """The same source record appears twice in one accept() call."""

    def __init__(self, namespace: str, kind: str, source_id: str) -> None:
        super().__init__(f"duplicate item in one request: {namespace}|{kind}|{source_id}")
        self.namespace = namespace
        self.kind = kind
        self.source_id = source_id


class PatientMismatchError(StoreError):
    """A record id of the app's namespace already belongs to another patient.

    The message names the record, never a patient: the caller must not learn whose it is.
    """

    def __init__(self, kind: str, source_id: str) -> None:
        super().__init__(f"{kind} {source_id!r} already belongs to another patient of this client")
        self.kind = kind
        self.source_id = source_id


class AmbiguousRecordError(StoreError):
    """Several of the caller's patients have a record with this id; the caller must name one."""

    def __init__(self, kind: str, source_id: str) -> None:
        super().__init__(f"several patients have a {kind} {source_id!r}: name the patient")
        self.kind = kind
        self.source_id = source_id


class LeaseLostError(StoreError):
    """A worker reports on an entry it no longer holds: its lease expired and it was re-claimed."""

    def __init__(self, ledger_id: int) -> None:
        super().__init__(f"claim on ledger entry {ledger_id} is no longer held")
        self.ledger_id = ledger_id


class EntryNotFoundError(StoreError):
    """No ledger entry exists for the given source record."""

    def __init__(self, namespace: str, kind: str, source_id: str) -> None:
        super().__init__(f"no ledger entry for {namespace}|{kind}|{source_id}")
        self.namespace = namespace
        self.kind = kind
        self.source_id = source_id


class StorageUnavailable(StoreError):
    """The database cannot serve now: full, read-only, unreachable, busy or failing I/O.

    Raised in place of the driver's error (see engine.py), whose text may quote SQL parameters:
    this one carries the kind only. Nothing was committed by the statement that failed.
    """

    def __init__(self, kind: str, retry_after: int) -> None:
        super().__init__(f"storage unavailable ({kind})")
        self.kind = kind
        self.retry_after = retry_after  # seconds a client should wait before trying again


class MigrationError(StoreError):
    """The schema could not be brought to the current revision."""
