"""A server's limits: a plain value (configured or known), and those learned once per base URL.

A server that caps transaction Bundles (Medplum: 50 updates, 8 conditional entries) or `_count`
says so only by refusing or by trimming. Each client and each Pusher used to find out again by
being refused; here the first finding is kept for the process, so later requests start at the
known size. The ServerProfile (profile.py) joins these with the configured and known limits.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class Limits:
    """Caps on what one request may carry; None where there is none (or none known)."""

    transaction_entries: int | None = None  # most entries one transaction Bundle may carry
    conditional_entries: int | None = None  # most conditional writes in one transaction
    page_size: int | None = None  # largest _count the server honours

    def within(self, other: Limits) -> Limits:
        """The stricter of both, cap by cap."""
        return Limits(
            *(_least(getattr(self, f.name), getattr(other, f.name)) for f in fields(Limits))
        )


NO_LIMITS = Limits()


def _least(a: int | None, b: int | None) -> int | None:
    if a is None or b is None:
        return b if a is None else a
    return min(a, b)


@dataclass
class ServerLimits:
    """Limits learned of one server; None while not known. Only ever lowered, never raised."""

    transaction_entries: int | None = None
    conditional_entries: int | None = None
    page_size: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def cap_transaction(self, entries: int) -> None:
        """The server refused more than `entries` entries in one transaction."""
        with self._lock:
            self.transaction_entries = _lower(self.transaction_entries, entries)

    def cap_conditional(self, entries: int) -> None:
        """The server refused more than `entries` conditional writes in one transaction."""
        with self._lock:
            self.conditional_entries = _lower(self.conditional_entries, entries)

    def cap_page_size(self, size: int) -> None:
        """The server returned at most `size` resources per page when asked for more."""
        with self._lock:
            self.page_size = _lower(self.page_size, size)

    def value(self) -> Limits:
        """What has been learned so far, as a plain value."""
        with self._lock:
            return Limits(self.transaction_entries, self.conditional_entries, self.page_size)


def _lower(known: int | None, new: int) -> int:
    new = max(1, new)
    return new if known is None else min(known, new)


_registry: dict[str, ServerLimits] = {}
_registry_lock = threading.Lock()


def limits_for(base_url: str) -> ServerLimits:
    """The limits learned for the server at base_url (the same object for the whole process)."""
    key = base_url.rstrip("/")
    with _registry_lock:
        return _registry.setdefault(key, ServerLimits())


def forget_limits() -> None:
    """Forget every learned limit (tests, or after a server was reconfigured)."""
    with _registry_lock:
        _registry.clear()
