"""Search a patient's Observations on the clinic's server, passed through, one page at a time.

The server's next link travels to the caller inside a signed `_page` token, so a caller can
neither forge another search nor page through another patient's. Whatever the server sends,
only entries whose subject is the patient go out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.fhir_client import BadRequest, FhirClient, OutcomeIssue, clean_diagnostics

log = logging.getLogger(__name__)

Json = dict[str, Any]

# Marks a token whose search already left out another patient's entries: the server's `total`
# then counts them too, so no page of that search claims it. Signed with the URL.
_DROPPED = b"!"


class BadPageToken(ValueError):
    """A `_page` value this service did not issue (or issued with another key)."""

    def __init__(self) -> None:
        super().__init__("_page is not a token this service issued")


class SearchRefused(Exception):
    """The server refused the caller's own search: where and why, as (field, text) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("the FHIR server refused the search")
        self.problems = problems


@dataclass(frozen=True)
class SearchPage:
    """One page of the patient's matches; `next_token` signs the server's next link."""

    entries: list[Json]
    total: int | None  # the server's count, when it is the count a client will see
    next_token: str | None


def page_token(key: bytes, url: str, dropped: bool = False) -> str:
    """An opaque, signed token for a server's next link: callers cannot forge another search."""
    raw = (_DROPPED if dropped else b"") + url.encode()
    mac = hmac.new(key, raw, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")


def page_url(key: bytes, token: str) -> tuple[str, bool]:
    """The server URL inside a token we signed, and whether its search dropped entries."""
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        blob = b""
    mac, raw = blob[:16], blob[16:]
    expected = hmac.new(key, raw, hashlib.sha256).digest()[:16]
    if len(blob) <= 16 or not hmac.compare_digest(mac, expected):
        raise BadPageToken
    dropped = raw.startswith(_DROPPED)
    return raw.removeprefix(_DROPPED).decode(), dropped


def _refusal(issue: OutcomeIssue, operator: bool) -> tuple[str, str]:
    said = f"{issue.severity}: {issue.code}"
    # Its diagnostics may quote stored values: for operators only, cleaned.
    diagnostics = clean_diagnostics(issue.diagnostics) if operator else None
    field = ", ".join(issue.expression) or "query"
    return field, f"{said} ({diagnostics})" if diagnostics else said


def _first_page(
    client: FhirClient,
    key: bytes,
    patient_reference: str,
    params: Sequence[tuple[str, str]],
    token: str | None,
    trace_id: str | None,
) -> tuple[Json, bool]:
    if token is not None:
        url, dropped = page_url(key, token)
        return next(client.search_pages_from(url, request_id=trace_id)), dropped
    query = [("subject", patient_reference), *params]
    return next(client.search_pages("Observation", query, request_id=trace_id)), False


def search_observations(
    client: FhirClient,
    key: bytes,
    patient_reference: str,
    params: Sequence[tuple[str, str]],
    *,
    token: str | None = None,
    operator: bool = False,
    trace_id: str | None = None,
) -> SearchPage:
    """One page of the patient's Observations: the first for `params`, or the one `token` names.

    The subject is always ours to set. A search the server refuses raises SearchRefused (its
    diagnostics for operators only); a token we did not sign raises BadPageToken.
    """
    try:
        bundle, dropped = _first_page(client, key, patient_reference, params, token, trace_id)
    except BadRequest as exc:
        issues = exc.outcome.issues if exc.outcome else ()
        raise SearchRefused([_refusal(i, operator) for i in issues]) from None
    entries = _patients_entries(bundle, patient_reference)
    dropped = dropped or len(entries) < len(bundle.get("entry", []))
    next_url = _next_link(bundle)
    # Once we left out entries the server counted, its total is not what a client will see.
    total = bundle.get("total")
    return SearchPage(
        entries=entries,
        total=total if isinstance(total, int) and not dropped else None,
        next_token=page_token(key, next_url, dropped) if next_url else None,
    )


def _patients_entries(bundle: Json, patient_reference: str) -> list[Json]:
    """Defence in depth: whatever the server sends, only this patient's resources go out.

    The client made references relative to its base: one under another base is not this patient.
    """
    given = bundle.get("entry", [])
    entries = [e for e in given if _subject(e) == patient_reference]
    if len(entries) < len(given):
        log.warning("left out %d search entries not about the patient", len(given) - len(entries))
    return entries


def _subject(entry: Json) -> Any:
    return (entry.get("resource") or {}).get("subject", {}).get("reference")


def _next_link(bundle: Json) -> str | None:
    for link in bundle.get("link", []):
        if link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def searchset(page: SearchPage, self_url: str, next_url: str | None) -> Json:
    """The page as a FHIR searchset Bundle with our own (absolute) self and next links."""
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    answer: Json = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if page.total is not None:
        answer["total"] = page.total
    answer["entry"] = page.entries
    return answer
