"""Typed results of writes: single interactions and transaction/batch response entries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from .errors import InvalidServerResponse
from .outcome import OperationOutcome, parse_operation_outcome
from .references import local_reference

JsonObject = dict[str, Any]

_WEAK_ETAG = re.compile(r'^(?:W/)?"?([^"]*)"?$')


@dataclass(frozen=True)
class ResourceLocation:
    """Type, id and version taken from a Location header or entry.response.location."""

    resource_type: str | None
    id: str | None
    version_id: str | None


def parse_location(location: str | None) -> ResourceLocation:
    """Split '[base/]Type/id[/_history/vid]' (absolute or relative) into its parts."""
    if not location:
        return ResourceLocation(None, None, None)
    segments = [s for s in urlsplit(location).path.split("/") if s]
    version_id = None
    if len(segments) >= 2 and segments[-2] == "_history":
        version_id = segments[-1]
        segments = segments[:-2]
    if len(segments) < 2:
        return ResourceLocation(None, None, version_id)
    return ResourceLocation(segments[-2], segments[-1], version_id)


def version_from_etag(etag: str | None) -> str | None:
    """The version id inside an ETag such as W/"3"."""
    if not etag:
        return None
    match = _WEAK_ETAG.match(etag.strip())
    if match is None or not match.group(1):
        return None
    return match.group(1)


@dataclass(frozen=True)
class WriteResult:
    """Outcome of a create/update: where the resource now lives and at which version."""

    status: int
    resource_type: str | None
    id: str | None
    version_id: str | None
    etag: str | None
    last_modified: str | None
    location: str | None
    resource: JsonObject | None
    outcome: OperationOutcome | None

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return HTTPStatus.OK <= self.status < HTTPStatus.MULTIPLE_CHOICES

    @property
    def created(self) -> bool:
        """True when the server created a new resource (201)."""
        return self.status == HTTPStatus.CREATED


@dataclass(frozen=True)
class EntryResult(WriteResult):
    """Result of one transaction/batch entry, at the same index as the request entry."""

    index: int = 0


def _status_code(value: Any, index: int) -> int:
    # entry.response.status is a string such as "201 Created" or just "201".
    if isinstance(value, str):
        head = value.strip().split(" ", 1)[0]
        if head.isdigit():
            return int(head)
    raise InvalidServerResponse(f"entry {index}: response.status {value!r} is not an HTTP status")


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _returned(body: Any) -> tuple[JsonObject | None, OperationOutcome | None]:
    """The resource a write returned, or the OperationOutcome it returned instead."""
    resource = body if isinstance(body, Mapping) and "resourceType" in body else None
    outcome = parse_operation_outcome(resource)
    if outcome is not None or resource is None:
        return None, outcome
    return dict(resource), None


def _meta_version(resource: JsonObject | None) -> str | None:
    meta = resource.get("meta") if resource is not None else None
    return _str_or_none(meta.get("versionId")) if isinstance(meta, Mapping) else None


def write_result(
    status: int,
    *,
    location: str | None,
    etag: str | None,
    last_modified: str | None,
    body: Any,
    base_url: str | None = None,
) -> WriteResult:
    """Build a WriteResult from response headers and (optional) returned resource; with
    `base_url`, a location under another base is not taken for the resource's id."""
    local = location if base_url is None or not location else local_reference(location, base_url)
    loc = parse_location(local)
    resource, outcome = _returned(body)
    returned = resource or {}
    return WriteResult(
        status=status,
        resource_type=loc.resource_type or returned.get("resourceType"),
        id=loc.id or _str_or_none(returned.get("id")),
        version_id=loc.version_id or version_from_etag(etag) or _meta_version(resource),
        etag=etag,
        last_modified=last_modified,
        location=location,
        resource=resource,
        outcome=outcome,
    )


def _entries(bundle: Any, expected_type: str, expected_entries: int | None) -> list[Any]:
    """The entries of a transaction-/batch-response Bundle, checked against the request."""
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        got = bundle.get("resourceType") if isinstance(bundle, Mapping) else type(bundle).__name__
        raise InvalidServerResponse(f"expected a Bundle {expected_type}, got {got!r}")
    if bundle.get("type") != expected_type:
        raise InvalidServerResponse(
            f"expected Bundle.type {expected_type!r}, got {bundle.get('type')!r}"
        )
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise InvalidServerResponse("Bundle.entry is not a list")
    # The spec keeps response entries in request order; a count mismatch breaks that mapping.
    if expected_entries is not None and len(entries) != expected_entries:
        raise InvalidServerResponse(
            f"{expected_type} has {len(entries)} entries for {expected_entries} requested"
        )
    return entries


def _entry_result(entry: Any, index: int, base_url: str | None) -> EntryResult:
    response = entry.get("response") if isinstance(entry, Mapping) else None
    if not isinstance(response, Mapping):
        raise InvalidServerResponse(f"entry {index} has no response")
    base = write_result(
        _status_code(response.get("status"), index),
        location=_str_or_none(response.get("location")),
        etag=_str_or_none(response.get("etag")),
        last_modified=_str_or_none(response.get("lastModified")),
        body=entry.get("resource"),
        base_url=base_url,
    )
    outcome = parse_operation_outcome(response.get("outcome")) or base.outcome
    return EntryResult(
        status=base.status,
        resource_type=base.resource_type,
        id=base.id,
        version_id=base.version_id,
        etag=base.etag,
        last_modified=base.last_modified,
        location=base.location,
        resource=base.resource,
        outcome=outcome,
        index=index,
    )


def parse_bundle_response(
    bundle: Any,
    *,
    expected_type: str,
    expected_entries: int | None = None,
    base_url: str | None = None,
) -> list[EntryResult]:
    """Parse a transaction-/batch-response Bundle into one EntryResult per entry."""
    entries = _entries(bundle, expected_type, expected_entries)
    return [_entry_result(entry, index, base_url) for index, entry in enumerate(entries)]
