"""Planning a push: which of a record's resources to write, and how, given what the ledger knows.

Pure: no I/O. A resource whose content hash equals the one we last sent is left alone; one we
have sent before is updated in place with If-Match on the version we last saw (so a clinician's
edit in between is a 412, never overwritten); a new one is written with the server's cheapest
idempotent method.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from mappings import business_identifier
from mappings.bundle import full_url
from mappings.context import FhirVersion
from mappings.validate import validate_bundle
from service.fhir_client import (
    ConditionalCreate,
    ConditionalUpdate,
    Limits,
    Update,
    Write,
    bundle_entry,
    token,
    weak_etag,
)
from service.store import ResourceState, content_hash

JSON = dict[str, Any]


@dataclass(frozen=True)
class PlannedWrite:
    """One resource to write: a typed interaction (body and precondition), what it replaces."""

    resource_type: str
    identifier: tuple[str, str]
    our_id: str  # the deterministic id the mapping gave it
    full_url: str
    interaction: Write
    content_hash: str
    known: ResourceState | None

    @property
    def body(self) -> JSON:
        """The resource as it is sent."""
        return self.interaction.resource

    @property
    def request(self) -> JSON:
        """Bundle.entry.request, as the client renders the interaction."""
        return self.interaction.request()

    @property
    def conditional(self) -> bool:
        """True for a write the server must search for first (capped by some servers)."""
        return self.interaction.conditional

    @property
    def is_update(self) -> bool:
        """True when the server already holds a version we sent."""
        return _on_server(self.known)

    def entry(self) -> JSON:
        """This write as a transaction/batch entry."""
        return bundle_entry(self.interaction, self.full_url)


@dataclass(frozen=True)
class RecordPlan:
    """Everything to do for one record."""

    writes: tuple[PlannedWrite, ...]
    unchanged: tuple[ResourceState, ...]
    # Resources we sent before that the record no longer produces: to mark entered-in-error.
    dropped: tuple[ResourceState, ...] = field(default=())

    @property
    def size(self) -> int:
        """Bundle entries this plan needs."""
        return len(self.writes)

    @property
    def conditional_size(self) -> int:
        """Conditional writes (If-None-Exist, PUT Type?search) among them: servers cap these
        per transaction separately (Medplum: 8), as each costs a search."""
        return sum(1 for w in self.writes if w.conditional)


def _on_server(state: ResourceState | None) -> TypeGuard[ResourceState]:
    return state is not None and state.server_id is not None


def _references(node: Any, targets: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: targets.get(v, v)
            if k == "reference" and isinstance(v, str)
            else _references(v, targets)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_references(v, targets) for v in node]
    return node


def _targets(
    resources: Sequence[JSON], by_identifier: Mapping[tuple[str, str], ResourceState], method: str
) -> dict[str, str]:
    """Where each of our own resources lives on the server, for references between them."""
    targets: dict[str, str] = {}
    for resource in resources:
        ours = f"{resource['resourceType']}/{resource['id']}"
        state = by_identifier.get(business_identifier(resource))
        if _on_server(state):
            targets[ours] = f"{resource['resourceType']}/{state.server_id}"
        elif method != "update-as-create":
            targets[ours] = full_url(resource)  # the server resolves it within the transaction
    return targets


def _interaction(resource: JSON, body: JSON, state: ResourceState | None, method: str) -> Write:
    """How to write one resource: onto the version we know, or with the server's method."""
    if _on_server(state):
        body["id"] = state.server_id
        return Update(body, if_match=state.version_id or None)
    if method == "update-as-create":
        return Update(body)
    del body["id"]  # the server picks the id
    query = (("identifier", token(*business_identifier(resource))),)
    if method == "conditional-update":
        return ConditionalUpdate(body, query=query)
    return ConditionalCreate(body, if_none_exist=query)


def plan_record(
    resources: Sequence[JSON], known: Iterable[ResourceState], method: str
) -> RecordPlan:
    """Plan the writes for one record's freshly mapped resources."""
    by_identifier = {(s.identifier_system, s.identifier_value): s for s in known}
    targets = _targets(resources, by_identifier, method)
    writes: list[PlannedWrite] = []
    unchanged: list[ResourceState] = []
    for resource in resources:
        identifier = business_identifier(resource)
        digest = content_hash(resource)
        state = by_identifier.get(identifier)
        if _on_server(state) and state.last_sent_hash == digest:
            unchanged.append(state)
            continue
        body = _references(copy.deepcopy(resource), targets)
        writes.append(
            PlannedWrite(
                resource_type=resource["resourceType"],
                identifier=identifier,
                our_id=resource["id"],
                full_url=full_url(resource),
                interaction=_interaction(resource, body, state, method),
                content_hash=digest,
                known=state,
            )
        )
    produced = {business_identifier(r) for r in resources}
    dropped = tuple(s for key, s in by_identifier.items() if key not in produced and _on_server(s))
    return RecordPlan(writes=tuple(writes), unchanged=tuple(unchanged), dropped=dropped)


def transaction_of(plans: Iterable[RecordPlan], kind: str = "transaction") -> JSON:
    """One Bundle (transaction or batch) with every planned write of the given records."""
    bundle = {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [w.entry() for plan in plans for w in plan.writes],
    }
    # Bundle.type and request.method are required bindings, checked before the Bundle leaves
    # (the resources were validated when mapped). These envelope elements are the same in R4
    # and R5, so the R4 metadata serves both.
    validate_bundle(bundle, FhirVersion.R4)
    return bundle


def chunks(
    plans: Sequence[RecordPlan], max_entries: int, max_conditional: int | None = None
) -> list[list[int]]:
    """Group record indexes so no Bundle exceeds max_entries, nor max_conditional conditional
    writes when given (a record is never split: one over a cap stands alone)."""
    groups: list[list[int]] = []
    current: list[int] = []
    size = conditional = 0
    for index, plan in enumerate(plans):
        if not plan.writes:
            continue
        if current and (
            size + plan.size > max_entries
            or (
                max_conditional is not None
                and conditional + plan.conditional_size > max_conditional
            )
        ):
            groups.append(current)
            current, size, conditional = [], 0, 0
        current.append(index)
        size += plan.size
        conditional += plan.conditional_size
    if current:
        groups.append(current)
    return groups


def fits(plan: RecordPlan, limits: Limits) -> bool:
    """Whether the record's writes may go in one transaction under these limits."""
    cap = limits.conditional_entries
    return cap is None or plan.conditional_size <= cap


def rewrite_references(body: JSON, targets: Mapping[str, str]) -> JSON:
    """Point references at server locations learnt so far (for one-by-one writes)."""
    rewritten: JSON = _references(body, targets)
    return rewritten


__all__ = [
    "PlannedWrite",
    "RecordPlan",
    "chunks",
    "fits",
    "plan_record",
    "rewrite_references",
    "transaction_of",
    "weak_etag",
]
