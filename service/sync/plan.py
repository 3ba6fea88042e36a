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
from typing import Any

from mappings import business_identifier
from mappings.bundle import full_url, identifier_token
from mappings.context import FhirVersion
from mappings.validate import validate_bundle
from service.store import ResourceState, content_hash

JSON = dict[str, Any]


@dataclass(frozen=True)
class PlannedWrite:
    """One resource to write: the body and Bundle request, and what it replaces."""

    resource_type: str
    identifier: tuple[str, str]
    our_id: str  # the deterministic id the mapping gave it
    full_url: str
    body: JSON
    request: JSON
    content_hash: str
    known: ResourceState | None

    @property
    def is_update(self) -> bool:
        """True when the server already holds a version we sent."""
        return self.known is not None and self.known.server_id is not None


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
        return sum(
            1 for w in self.writes if w.request["method"] == "POST" or "?" in w.request["url"]
        )


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


def weak_etag(version_id: str) -> str:
    """The If-Match value for a version id."""
    return f'W/"{version_id}"'


def plan_record(
    resources: Sequence[JSON], known: Iterable[ResourceState], method: str
) -> RecordPlan:
    """Plan the writes for one record's freshly mapped resources."""
    by_identifier = {(s.identifier_system, s.identifier_value): s for s in known}
    # Where each of our own resources lives on the server, for references between them.
    targets: dict[str, str] = {}
    for resource in resources:
        ours = f"{resource['resourceType']}/{resource['id']}"
        state = by_identifier.get(business_identifier(resource))
        if state is not None and state.server_id is not None:
            targets[ours] = f"{resource['resourceType']}/{state.server_id}"
        elif method != "update-as-create":
            targets[ours] = full_url(resource)  # the server resolves it within the transaction
    writes: list[PlannedWrite] = []
    unchanged: list[ResourceState] = []
    produced: set[tuple[str, str]] = set()
    for resource in resources:
        identifier = business_identifier(resource)
        produced.add(identifier)
        digest = content_hash(resource)
        state = by_identifier.get(identifier)
        rtype = resource["resourceType"]
        if state is not None and state.server_id is not None and state.last_sent_hash == digest:
            unchanged.append(state)
            continue
        body = _references(copy.deepcopy(resource), targets)
        request: JSON
        if state is not None and state.server_id is not None:
            body["id"] = state.server_id
            request = {"method": "PUT", "url": f"{rtype}/{state.server_id}"}
            if state.version_id:
                request["ifMatch"] = weak_etag(state.version_id)
        elif method == "update-as-create":
            request = {"method": "PUT", "url": f"{rtype}/{resource['id']}"}
        elif method == "conditional-update":
            del body["id"]
            request = {"method": "PUT", "url": f"{rtype}?{identifier_token(resource)}"}
        else:
            del body["id"]
            request = {"method": "POST", "url": rtype, "ifNoneExist": identifier_token(resource)}
        writes.append(
            PlannedWrite(
                resource_type=rtype,
                identifier=identifier,
                our_id=resource["id"],
                full_url=full_url(resource),
                body=body,
                request=request,
                content_hash=digest,
                known=state,
            )
        )
    dropped = tuple(
        s for key, s in by_identifier.items() if key not in produced and s.server_id is not None
    )
    return RecordPlan(writes=tuple(writes), unchanged=tuple(unchanged), dropped=dropped)


def transaction_of(plans: Iterable[RecordPlan], kind: str = "transaction") -> JSON:
    """One Bundle (transaction or batch) with every planned write of the given records."""
    bundle = {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {"fullUrl": w.full_url, "resource": w.body, "request": w.request}
            for plan in plans
            for w in plan.writes
        ],
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


def rewrite_references(body: JSON, targets: Mapping[str, str]) -> JSON:
    """Point references at server locations learnt so far (for one-by-one writes)."""
    rewritten: JSON = _references(body, targets)
    return rewritten
