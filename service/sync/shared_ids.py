"""The shared id space: which first blind writes would land on another patient's resource.

A system caller's record ids (and so our identifiers and uuid5 ids) are the app's, not the
patient's: with the ledger lost (or a second instance), reusing an id for another patient makes
`PUT Type/{id}` (update as create) or `PUT Type?identifier=` (conditional update) replace that
patient's resource. So before the first write of resources the ledger never sent, one lookup
per chunk (a batch of one search per type, or a search per type where the server has no batch)
finds which already exist. Patient-scoped records carry the patient in their identifiers and
need no lookup; a conditional create's 200 is checked after the write (push._settle_existing).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

from service.fhir_client import EntryResult, FhirClient, FhirServerError, token
from service.store import ClaimedEntry
from service.sync.plan import PlannedWrite, RecordPlan
from service.sync.subjects import is_patients

log = logging.getLogger(__name__)

JSON = dict[str, Any]
# (resource type, our id or "system|value") -> the planned writes of that key, by record index
Blind = dict[tuple[str, str], list[tuple[int, PlannedWrite]]]


def looks_up(method: str) -> bool:
    """Whether writes of this method could land blindly on an existing resource."""
    return method in ("update-as-create", "conditional-update")


def blind_writes(
    entries: Sequence[ClaimedEntry], plans: Sequence[RecordPlan], group: Iterable[int], by_id: bool
) -> Blind:
    """The first writes of resources the ledger never sent, of records that are not
    patient-scoped, keyed as the lookup finds them."""
    blind: Blind = {}
    for index in group:
        if entries[index].patient_scope:
            continue
        for write in plans[index].writes:
            if not write.is_update:
                key = write.our_id if by_id else "|".join(write.identifier)
                blind.setdefault((write.resource_type, key), []).append((index, write))
    return blind


def _keys(theirs: JSON, by_id: bool) -> list[tuple[str, str]]:
    rtype = str(theirs.get("resourceType"))
    if by_id:
        return [(rtype, str(theirs.get("id")))]
    return [
        (rtype, f"{i.get('system')}|{i.get('value')}")
        for i in theirs.get("identifier") or []
        if isinstance(i, dict)
    ]


def foreign_owners(
    found: Iterable[JSON], blind: Blind, entries: Sequence[ClaimedEntry], by_id: bool
) -> dict[int, tuple[PlannedWrite, str]]:
    """Per record index, a write of it whose resource exists with another subject (and that
    resource's id). Ids only: never the other patient's resource or reference."""
    owners: dict[int, tuple[PlannedWrite, str]] = {}
    for theirs in found:
        for match in _keys(theirs, by_id):
            for index, write in blind.get(match, []):
                if index not in owners and not is_patients(theirs, entries[index].patient_key):
                    owners[index] = (write, str(theirs.get("id")))
    return owners


def searches(blind: Blind, by_id: bool) -> dict[str, list[tuple[str, str]]]:
    """One search per resource type for every blind key of it."""
    wanted: dict[str, list[str]] = {}
    for resource_type, key in blind:
        if not by_id:  # a token search: escape what separates values
            system, _, value = key.partition("|")
            key = token(system, value)
        wanted.setdefault(resource_type, []).append(key)
    name = "_id" if by_id else "identifier"
    return {
        rtype: [(name, ",".join(keys)), ("_count", str(len(keys)))]
        for rtype, keys in sorted(wanted.items())
    }


def existing_resources(
    client: FhirClient, blind: Blind, by_id: bool, request_id: str | None
) -> list[JSON]:
    """The server's resources at the planned ids (or identifiers): one request if it can."""
    wanted = searches(blind, by_id)
    if not client.capabilities().batch:
        return [
            found
            for rtype, params in wanted.items()
            for found in client.search(rtype, params, request_id=request_id)
        ]
    # _elements only in the batch: a strict search on a server without it would be a 400.
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "request": {
                    "method": "GET",
                    "url": f"{rtype}?"
                    + urlencode([*params, ("_elements", "identifier,subject")], safe=",|:/"),
                }
            }
            for rtype, params in wanted.items()
        ],
    }
    answers = client.batch(bundle, idempotent=True, request_id=request_id)
    return [found for answer in answers for found in _answer(client, answer, request_id)]


def _answer(client: FhirClient, answer: EntryResult, request_id: str | None) -> list[JSON]:
    """The matches of one search of the batch, with the pages a server that capped _count
    left for later."""
    if not answer.ok or not isinstance(answer.resource, dict):
        raise FhirServerError(
            answer.status, method="GET", path="batch search", outcome=answer.outcome
        )
    found = matches(answer.resource)
    more = [
        link.get("url")
        for link in answer.resource.get("link") or []
        if isinstance(link, dict) and link.get("relation") == "next"
    ]
    if more and isinstance(more[0], str):
        for page in client.search_pages_from(more[0], request_id=request_id):
            found.extend(matches(page))
    return found


def matches(bundle: JSON) -> list[JSON]:
    """The matched resources of a searchset page (not included ones)."""
    return [
        e["resource"]
        for e in bundle.get("entry") or []
        if isinstance(e, dict)
        and isinstance(e.get("resource"), dict)
        and (e.get("search") or {}).get("mode", "match") == "match"
    ]
