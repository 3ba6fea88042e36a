"""What we know of one FHIR server, in one value: the planner asks it instead of branching.

- capabilities: its CapabilityStatement (what it supports, which FHIR release);
- configured limits: what our configuration allows per request;
- known limits: what quirks.py knows of its software;
- learned limits: what it refused or trimmed before, kept for the process (limits.py);
- reference style: how its references are read (relative to its base URL).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .capabilities import PushStrategy, ServerCapabilities, choose_push_strategy
from .limits import NO_LIMITS, Limits, ServerLimits
from .quirks import known_limits
from .references import Json, is_foreign_reference, local_reference, normalise_references


@dataclass(frozen=True)
class ReferenceStyle:
    """References to this server: an absolute one under its base URL reads as `Type/id`."""

    base_url: str

    def local(self, reference: str) -> str | None:
        """`Type/id` for a reference to this server; None for another server's."""
        return local_reference(reference, self.base_url)

    def normalise(self, node: Json) -> Json:
        """A copy with every reference to this server made relative."""
        return normalise_references(node, self.base_url)

    def is_foreign(self, reference: str) -> bool:
        """True for an absolute URL of another server."""
        return is_foreign_reference(reference, self.base_url)


@dataclass(frozen=True)
class ServerProfile:
    """One server: capabilities, configured + known + learned limits, reference style."""

    capabilities: ServerCapabilities
    references: ReferenceStyle
    configured: Limits = NO_LIMITS
    learned: ServerLimits = field(default_factory=ServerLimits)

    @property
    def known(self) -> Limits:
        """The limits known of this server's software (quirks.py)."""
        return known_limits(self.capabilities.software_name)

    @property
    def limits(self) -> Limits:
        """What a request to this server may carry now: the strictest of all we know."""
        return self.configured.within(self.known).within(self.learned.value())

    def strategy(self, resource_types: Iterable[str]) -> PushStrategy:
        """The cheapest idempotent write method and the best transport for these types."""
        return choose_push_strategy(self.capabilities, resource_types)

    def learn_transaction_cap(self, entries: int) -> None:
        """The server takes no more than `entries` entries in one transaction."""
        self.learned.cap_transaction(entries)

    def learn_conditional_cap(self, entries: int) -> None:
        """The server takes no more than `entries` conditional writes in one transaction."""
        self.learned.cap_conditional(entries)

    def learn_page_size(self, size: int) -> None:
        """The server returns no more than `size` resources per page."""
        self.learned.cap_page_size(size)
