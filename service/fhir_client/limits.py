"""What a server's limits turned out to be, learned once per base URL and kept for the process.

A server that caps transaction Bundles (Medplum: 50 updates, 8 conditional entries) or `_count`
says so only by refusing or by trimming. Each client and each Pusher used to find out again by
being refused; here the first finding is kept, so later requests start at the known size.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class ServerLimits:
    """Limits of one server; None while not known. Only ever lowered, never raised."""

    transaction_entries: int | None = None  # most entries one transaction Bundle may carry
    conditional_entries: int | None = None  # most conditional writes in one transaction
    page_size: int | None = None  # largest _count the server honours
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
