"""What we know of particular FHIR servers before they tell us: one row per server software.

A server's CapabilityStatement lists what it supports but not its limits; those it shows only
by refusing. Where a server's limits are documented (or were found by the integration tests),
they belong here, so the planner sizes Bundles right from the first push instead of learning
by refusal. A row matches when its `software` occurs in CapabilityStatement.software.name
(case-insensitive). Adding a server's quirk is one row here and a test (CONTRIBUTING.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from .limits import Limits


@dataclass(frozen=True)
class ServerQuirk:
    """Known limits of one server software."""

    software: str  # occurs in CapabilityStatement.software.name, case-insensitive
    limits: Limits
    why: str  # where the limit is documented or how it was found


KNOWN_SERVERS: tuple[ServerQuirk, ...] = (
    ServerQuirk(
        software="medplum",
        # A transaction with a conditional entry needs strict isolation, which Medplum grants
        # to at most 8 entries; at most 50 updates per transaction in any case.
        limits=Limits(transaction_entries=50, conditional_entries=8),
        why="Medplum's FhirRouter (tests/fhir_server/README.md: transaction caps)",
    ),
)


def known_limits(
    software_name: str | None, quirks: tuple[ServerQuirk, ...] | None = None
) -> Limits:
    """The limits known for a server software (no caps for one we know nothing of)."""
    name = (software_name or "").casefold()
    found = Limits()
    for quirk in KNOWN_SERVERS if quirks is None else quirks:
        if name and quirk.software.casefold() in name:
            found = found.within(quirk.limits)
    return found
