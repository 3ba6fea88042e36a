"""Typed write interactions, each with its precondition, as values (like fhir-py's save()).

A planner says what to write and on which condition; the client renders it either as a single
request (FhirClient.write) or as a transaction/batch entry (bundle_entry). Nobody builds a
request URL to parse it back.

- Update: PUT Type/id, with If-Match on the version we last saw (a 412 when it moved on).
- ConditionalUpdate: PUT Type?query: update the one match, or create.
- ConditionalCreate: POST Type with If-None-Exist: create unless the query matches.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

JsonObject = dict[str, Any]
Query = tuple[tuple[str, str], ...]


def token(system: str, value: str) -> str:
    """A token search value `system|value`, with what separates values escaped (\\ | , $)."""
    return system + "|" + "".join("\\" + ch if ch in "\\|,$" else ch for ch in value)


def weak_etag(version_id: str) -> str:
    """The If-Match value for a version id (a full ETag is kept as it is)."""
    return version_id if version_id.startswith(('W/"', '"')) else f'W/"{version_id}"'


def bundle_query(query: Query) -> str:
    """A query as a Bundle entry's url carries it (':', '/' and '|' kept readable)."""
    return urlencode(query, safe=":/|", quote_via=quote)


@dataclass(frozen=True)
class _Write:
    resource: JsonObject
    # Conditional writes cost the server a search; some servers cap them per transaction.
    conditional: ClassVar[bool] = False

    @property
    def resource_type(self) -> str:
        """The written resource's type."""
        return str(self.resource["resourceType"])

    def with_resource(self, resource: JsonObject) -> Write:
        """The same interaction writing another body (e.g. with references resolved)."""
        return replace(self, resource=resource)  # type: ignore[return-value]


@dataclass(frozen=True)
class Update(_Write):
    """update: PUT Type/id; with if_match only onto that version."""

    if_match: str | None = None  # the version id we last saw

    def request(self) -> JsonObject:
        """Bundle.entry.request."""
        request = {"method": "PUT", "url": f"{self.resource_type}/{self.resource['id']}"}
        if self.if_match:
            request["ifMatch"] = weak_etag(self.if_match)
        return request


@dataclass(frozen=True)
class ConditionalUpdate(_Write):
    """conditional update: PUT Type?query."""

    query: Query = ()
    conditional: ClassVar[bool] = True

    def request(self) -> JsonObject:
        """Bundle.entry.request."""
        return {"method": "PUT", "url": f"{self.resource_type}?{bundle_query(self.query)}"}


@dataclass(frozen=True)
class ConditionalCreate(_Write):
    """conditional create: POST Type with If-None-Exist: query."""

    if_none_exist: Query = ()
    conditional: ClassVar[bool] = True

    def request(self) -> JsonObject:
        """Bundle.entry.request."""
        return {
            "method": "POST",
            "url": self.resource_type,
            "ifNoneExist": bundle_query(self.if_none_exist),
        }


Write = Update | ConditionalUpdate | ConditionalCreate


def bundle_entry(write: Write, full_url: str | None = None) -> JsonObject:
    """The interaction as a transaction/batch entry."""
    entry: JsonObject = {"resource": write.resource, "request": write.request()}
    return {"fullUrl": full_url, **entry} if full_url else entry
