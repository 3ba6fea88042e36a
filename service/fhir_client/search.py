"""Search paging: follow Bundle link[next] lazily, one page in memory at a time."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

from requests.models import PreparedRequest

from .errors import InvalidServerResponse, PagingLoop

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
Params = Mapping[str, str | int | Sequence[str]] | Sequence[tuple[str, str]]
FetchPage = Callable[[str, Params | None], JsonObject]


def param_items(params: Params | None) -> list[tuple[str, str]]:
    """Flatten search parameters to (name, value) pairs; a list value repeats the name."""
    pairs = params.items() if isinstance(params, Mapping) else params or []
    items: list[tuple[str, str]] = []
    for name, value in pairs:
        if isinstance(value, str | int):
            items.append((name, str(value)))
        else:
            items.extend((name, str(v)) for v in value)
    return items


def full_url(url: str, params: Params | None) -> str:
    """The URL exactly as requests would send it (used to recognise a page seen before)."""
    prepared = PreparedRequest()
    prepared.prepare_url(url, params)
    return prepared.url or url


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """The Bundle's link with relation 'next', if any."""
    for link in bundle.get("link") or []:
        if isinstance(link, Mapping) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def iter_pages(fetch: FetchPage, url: str, params: Params | None = None) -> Iterator[JsonObject]:
    """Yield searchset Bundles from `url` on, following link[next] until there is none."""
    # Only a 16-byte digest per page is kept, so memory stays flat however many pages follow.
    seen: set[bytes] = set()
    page_url, page_params = url, params
    origin = _origin(url)
    while True:
        key = hashlib.blake2b(full_url(page_url, page_params).encode(), digest_size=16).digest()
        if key in seen:
            raise PagingLoop(f"search paging returned to a page already read (after {len(seen)})")
        seen.add(key)
        bundle = fetch(page_url, page_params)
        if bundle.get("type") != "searchset":
            raise InvalidServerResponse(f"search returned Bundle.type {bundle.get('type')!r}")
        following = next_link(bundle)
        yield bundle
        if following is None:
            resource_type = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
            log.debug("fhir search %s: %d page(s)", resource_type, len(seen))
            return
        page_url, page_params = urljoin(page_url, following), None
        # Credentials go with every page request: never follow a link to another host.
        if _origin(page_url) != origin:
            raise InvalidServerResponse(
                "search next link points to a different host than the search"
            )


def match_resources(bundle: Mapping[str, Any]) -> Iterator[JsonObject]:
    """Resources of a searchset page that matched (not _include'd ones, not OperationOutcomes)."""
    for entry in bundle.get("entry") or []:
        if not isinstance(entry, Mapping):
            continue
        search = entry.get("search")
        mode = search.get("mode") if isinstance(search, Mapping) else None
        resource = entry.get("resource")
        if mode in (None, "match") and isinstance(resource, dict):
            yield resource


def iter_resources(pages: Iterator[JsonObject], limit: int | None = None) -> Iterator[JsonObject]:
    """Matched resources across pages; stops (and fetches no further page) at `limit`."""
    if limit is not None and limit <= 0:
        return
    count = 0
    for page in pages:
        for resource in match_resources(page):
            yield resource
            count += 1
            if limit is not None and count >= limit:
                return
