"""FhirClient: FHIR REST interactions over one pooled requests.Session per server."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from .auth import RefreshableAuth
from .breaker import CircuitBreaker
from .capabilities import ServerCapabilities, parse_capability_statement
from .errors import (
    BudgetExhausted,
    CircuitOpen,
    FhirTransportError,
    InvalidServerResponse,
    NotSent,
    error_for_status,
)
from .interactions import ConditionalCreate, ConditionalUpdate, Update, Write, weak_etag
from .limits import NO_LIMITS, Limits, ServerLimits, limits_for
from .outcome import parse_operation_outcome
from .profile import ReferenceStyle, ServerProfile
from .references import Json
from .results import EntryResult, WriteResult, parse_bundle_response, write_result
from .retry import RetryPolicy
from .search import (
    Params,
    iter_pages,
    iter_resources,
    match_resources,
    next_link,
    param_items,
)

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
FHIR_JSON = "application/fhir+json"
DEFAULT_USER_AGENT = "diarybridge-fhir-client/0.1"
SEARCH_PREFER = "handling=strict"
_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# Transport failures worth another attempt; InvalidURL and the like are not.
_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
# When the calls of the current context (thread) must be done by, on time.monotonic().
_BUDGET_ENDS: ContextVar[float | None] = ContextVar("fhir_budget_ends", default=None)


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Calls made in this context must end within `seconds`: timeouts are cut to what is left,
    retries that would overrun it are not made, and a call with nothing left raises
    BudgetExhausted without being sent. Nested budgets keep the earlier end."""
    ends = time.monotonic() + seconds
    outer = _BUDGET_ENDS.get()
    token = _BUDGET_ENDS.set(ends if outer is None else min(outer, ends))
    try:
        yield
    finally:
        _BUDGET_ENDS.reset(token)


def _budget_left() -> float | None:
    ends = _BUDGET_ENDS.get()
    return None if ends is None else ends - time.monotonic()


def _check_type(resource_type: str) -> str:
    if not _TYPE.match(resource_type):
        raise ValueError(f"not a FHIR resource type: {resource_type!r}")
    return resource_type


def _check_id(resource_id: str) -> str:
    if not _ID.match(resource_id):
        raise ValueError("not a FHIR logical id (1-64 of A-Z a-z 0-9 - .)")
    return resource_id


def _resource_type_of(resource: Mapping[str, Any]) -> str:
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise ValueError("resource has no resourceType")
    return _check_type(resource_type)


def _query(params: Params) -> str:
    return urlencode(param_items(params))


def bundle_is_idempotent(bundle: Mapping[str, Any]) -> bool:
    """True when replaying the Bundle cannot duplicate data: every entry PUT/DELETE/GET or
    a conditional POST (ifNoneExist)."""
    for entry in bundle.get("entry") or []:
        request = entry.get("request") if isinstance(entry, Mapping) else None
        if not isinstance(request, Mapping):
            return False
        method = str(request.get("method", "")).upper()
        if method in _IDEMPOTENT_METHODS:
            continue
        if method == "POST" and request.get("ifNoneExist"):
            continue
        return False
    return True


def _within_budget(delay: float | None) -> float | None:
    """The retry delay, or None when waiting it would overrun the time budget."""
    left = _budget_left()
    if delay is None or left is None:
        return delay
    return delay if delay < left else None


@dataclass
class _Call:
    """One request as it goes through its attempts."""

    method: str
    url: str
    path: str  # loggable: no query values
    params: Params | None
    data: bytes | None
    headers: dict[str, str]
    idempotent: bool
    stream: bool
    authenticate: bool
    started: float
    attempt: int = 0
    refreshed: bool = False


class FhirClient:
    """A FHIR REST client for one server: interactions named as in the spec, JSON in and out."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: AuthBase | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        pool_size: int = 10,
        user_agent: str = DEFAULT_USER_AGENT,
        request_id_header: str = "X-Request-ID",
        breaker: CircuitBreaker | None = None,
        limits: Limits = NO_LIMITS,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("FHIR base URL must be an absolute http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.references = ReferenceStyle(self.base_url)
        self.configured_limits = limits  # what our configuration allows per request
        self._auth = auth
        self._timeout = timeout
        self._verify = verify
        self._cert = cert
        self._retry = retry or RetryPolicy()
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            # Retries are ours (with Retry-After and idempotency rules), so urllib3's are off.
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self._session = session
        self._user_agent = user_agent
        self._request_id_header = request_id_header
        self._capabilities: ServerCapabilities | None = None
        self._capabilities_lock = threading.Lock()
        self.breaker = breaker  # None: every call goes through
        # The _count a caller's configuration prefers for its searches (None: none configured).
        self.default_page_size: int | None = None

    def __repr__(self) -> str:
        return f"FhirClient({self.base_url!r})"

    @property
    def limits(self) -> ServerLimits:
        """What this server's limits turned out to be, shared by every client of its base URL."""
        return limits_for(self.base_url)

    def profile(self) -> ServerProfile:
        """What we know of this server: capabilities (read once), limits, reference style."""
        return ServerProfile(
            self.capabilities(), self.references, self.configured_limits, self.limits
        )

    def close(self) -> None:
        """Close the session if this client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- capabilities -------------------------------------------------------------------

    def capabilities(self, *, refresh: bool = False) -> ServerCapabilities:
        """The server's CapabilityStatement, read once from /metadata and cached."""
        with self._capabilities_lock:
            if self._capabilities is not None and not refresh:
                return self._capabilities
        # Fetched outside the lock: behind a hung server, every caller would queue on it for
        # a whole timeout each, time budgets notwithstanding. Two fetches at once are harmless.
        data = self._json("GET", f"{self.base_url}/metadata", expected_type="CapabilityStatement")
        caps = parse_capability_statement(data)
        with self._capabilities_lock:
            self._capabilities = caps
        log.info(
            "fhir server %s: fhirVersion %s (%s), transaction=%s batch=%s",
            caps.software_name or "unknown",
            caps.fhir_version,
            caps.release,
            caps.transaction,
            caps.batch,
        )
        return caps

    # ---- instance and type interactions -------------------------------------------------

    def read(
        self,
        resource_type: str,
        resource_id: str,
        *,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> JsonObject:
        """read: GET [base]/Type/id."""
        url = f"{self.base_url}/{_check_type(resource_type)}/{quote(_check_id(resource_id))}"
        data = self._json(
            "GET", url, expected_type=resource_type, headers=headers, request_id=request_id
        )
        assert data is not None  # expected_type guarantees a body
        return self._local(data)

    def create(
        self,
        resource: Mapping[str, Any],
        *,
        if_none_exist: Params | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> WriteResult:
        """create: POST [base]/Type; with if_none_exist a conditional create (safe to retry)."""
        resource_type = _resource_type_of(resource)
        extra = dict(headers or {})
        if if_none_exist is not None:
            extra["If-None-Exist"] = _query(if_none_exist)
        return self._write(
            "POST",
            f"{self.base_url}/{resource_type}",
            resource,
            headers=extra,
            request_id=request_id,
            idempotent=if_none_exist is not None,
        )

    def update(
        self,
        resource: Mapping[str, Any],
        *,
        if_match: str | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> WriteResult:
        """update: PUT [base]/Type/id (creates it when the server allows updateCreate)."""
        resource_type = _resource_type_of(resource)
        resource_id = resource.get("id")
        if not isinstance(resource_id, str):
            raise ValueError("update needs a resource with an id")
        extra = dict(headers or {})
        if if_match is not None:
            extra["If-Match"] = weak_etag(if_match)  # servers compare weak ETags
        return self._write(
            "PUT",
            f"{self.base_url}/{resource_type}/{quote(_check_id(resource_id))}",
            resource,
            headers=extra,
            request_id=request_id,
            idempotent=True,
        )

    def conditional_update(
        self,
        resource: Mapping[str, Any],
        query: Params,
        *,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> WriteResult:
        """conditional update: PUT [base]/Type?query (update the one match, or create)."""
        resource_type = _resource_type_of(resource)
        return self._write(
            "PUT",
            f"{self.base_url}/{resource_type}?{_query(query)}",
            resource,
            headers=headers,
            request_id=request_id,
            idempotent=True,
        )

    def write(self, interaction: Write, *, request_id: str | None = None) -> WriteResult:
        """A typed write interaction as a single request."""
        resource = interaction.resource
        if isinstance(interaction, ConditionalCreate):
            return self.create(
                resource, if_none_exist=interaction.if_none_exist, request_id=request_id
            )
        if isinstance(interaction, ConditionalUpdate):
            return self.conditional_update(resource, interaction.query, request_id=request_id)
        assert isinstance(interaction, Update)
        return self.update(resource, if_match=interaction.if_match, request_id=request_id)

    def delete(
        self,
        resource_type: str,
        resource_id: str,
        *,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> None:
        """delete: DELETE [base]/Type/id."""
        url = f"{self.base_url}/{_check_type(resource_type)}/{quote(_check_id(resource_id))}"
        self._request("DELETE", url, headers=headers, request_id=request_id, idempotent=True)

    # ---- whole-system interactions ------------------------------------------------------

    def transaction(
        self,
        bundle: Mapping[str, Any],
        *,
        idempotent: bool | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> list[EntryResult]:
        """transaction: POST a transaction Bundle; all entries succeed or the call raises."""
        return self._bundle("transaction", bundle, idempotent, headers, request_id)

    def batch(
        self,
        bundle: Mapping[str, Any],
        *,
        idempotent: bool | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> list[EntryResult]:
        """batch: POST a batch Bundle; each entry has its own result, failures included."""
        return self._bundle("batch", bundle, idempotent, headers, request_id)

    def search_pages(
        self,
        resource_type: str,
        params: Params | None = None,
        *,
        page_size: int | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> Iterator[JsonObject]:
        """search-type: searchset Bundles, fetched lazily page by page via link[next]."""
        items = param_items(params)
        if page_size is not None:
            items.append(("_count", str(page_size)))

        url = f"{self.base_url}/{_check_type(resource_type)}"
        pages = iter_pages(self._page_fetcher(headers, request_id), url, items)
        return pages if page_size is None else self._learn_page_size(pages, page_size)

    def _learn_page_size(self, pages: Iterator[JsonObject], asked: int) -> Iterator[JsonObject]:
        """Pass pages on; a first page shorter than asked with a next link is the server's cap."""
        first = True
        for page in pages:
            if first and next_link(page) is not None:
                got = sum(1 for _ in match_resources(page))
                if 0 < got < asked:  # trimmed silently (SEKMET, HAPI): ask for no more later
                    self.limits.cap_page_size(got)
            first = False
            yield page

    def search_pages_from(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> Iterator[JsonObject]:
        """Continue a search from a next link of this server's (another host is refused)."""
        absolute = urljoin(self.base_url + "/", url)
        if not absolute.startswith(self.base_url + "/"):
            raise InvalidServerResponse("a search page must be on this client's FHIR server")

        return iter_pages(self._page_fetcher(headers, request_id), absolute)

    def _page_fetcher(
        self, headers: Mapping[str, str] | None, request_id: str | None
    ) -> Callable[[str, Params | None], JsonObject]:
        """GET one searchset page (the paging iterator decides which)."""
        # A server may ignore a parameter it does not support (SEKMET does, unless asked):
        # an unfiltered answer taken for a filtered one is worse than a 400.
        strict = {"Prefer": SEARCH_PREFER, **(headers or {})}

        def fetch(url: str, page_params: Params | None) -> JsonObject:
            data = self._json(
                "GET",
                url,
                params=page_params,
                expected_type="Bundle",
                headers=strict,
                request_id=request_id,
            )
            assert data is not None
            return self._local(data)

        return fetch

    def search(
        self,
        resource_type: str,
        params: Params | None = None,
        *,
        limit: int | None = None,
        page_size: int | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> Iterator[JsonObject]:
        """search-type: matching resources across all pages (or the first `limit`), streamed."""
        pages = self.search_pages(
            resource_type, params, page_size=page_size, headers=headers, request_id=request_id
        )
        return iter_resources(pages, limit)

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        stream: bool = False,
        authenticate: bool = True,
    ) -> requests.Response:
        """One raw request (retries, typed errors) for protocols beyond REST, e.g. Bulk Data.

        `url` must lie under the base URL when credentials are sent; with `stream` the caller
        reads (and closes) the body itself.
        """
        if authenticate and not self.owns_url(url):
            raise InvalidServerResponse("refusing to send credentials to a URL off the server")
        return self._request(
            method,
            url,
            params=params,
            body=body,
            headers=headers,
            idempotent=idempotent,
            stream=stream,
            authenticate=authenticate,
        )

    def owns_url(self, url: str) -> bool:
        """True when `url` has the base URL's scheme and host (credentials may go there)."""
        mine, theirs = urlsplit(self.base_url), urlsplit(url)
        return (mine.scheme.lower(), mine.netloc.lower()) == (
            theirs.scheme.lower(),
            theirs.netloc.lower(),
        )

    # ---- plumbing -----------------------------------------------------------------------

    def _bundle(
        self,
        kind: str,
        bundle: Mapping[str, Any],
        idempotent: bool | None,
        headers: Mapping[str, str] | None,
        request_id: str | None,
    ) -> list[EntryResult]:
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != kind:
            raise ValueError(f"{kind} needs a Bundle of type {kind!r}")
        entries = bundle.get("entry") or []
        safe = bundle_is_idempotent(bundle) if idempotent is None else idempotent
        response = self._json(
            "POST",
            self.base_url,
            body=bundle,
            expected_type="Bundle",
            headers=headers,
            request_id=request_id,
            idempotent=safe,
        )
        results = parse_bundle_response(
            self._local(response),
            expected_type=f"{kind}-response",
            expected_entries=len(entries),
            base_url=self.base_url,
        )
        self._warn_foreign_locations(kind, [r.location for r in results])
        failed = sum(1 for r in results if not r.ok)
        log.info("fhir %s: %d entries, %d failed", kind, len(results), failed)
        return results

    def _write(
        self,
        method: str,
        url: str,
        resource: Mapping[str, Any],
        *,
        headers: Mapping[str, str] | None,
        request_id: str | None,
        idempotent: bool,
    ) -> WriteResult:
        response = self._request(
            method,
            url,
            body=resource,
            headers=headers,
            request_id=request_id,
            idempotent=idempotent,
        )
        body = self._parse_body(method, url, response) if response.content else None
        if body is not None and not isinstance(body, dict):
            raise InvalidServerResponse(
                f"{method} {self._path(url)} returned JSON that is no object"
            )
        if body is not None and "resourceType" in body:
            expected = _resource_type_of(resource)
            if body["resourceType"] not in (expected, "OperationOutcome"):
                got = body["resourceType"]
                raise InvalidServerResponse(
                    f"{method} {self._path(url)} returned {got!r}, expected {expected!r}"
                )
        location = response.headers.get("Location") or response.headers.get("Content-Location")
        self._warn_foreign_locations(method, [location])
        return write_result(
            response.status_code,
            location=location,
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
            body=self._local(body),
            base_url=self.base_url,
        )

    def _local(self, data: Json) -> Json:
        """References under this server's base made relative, as every caller compares them."""
        return self.references.normalise(data)

    def _warn_foreign_locations(self, what: str, locations: list[str | None]) -> None:
        foreign = sum(1 for loc in locations if loc and self.references.local(loc) is None)
        if foreign:
            # Not followed: the id then comes from the returned resource, if any.
            log.warning("fhir %s: %d location(s) under another base URL ignored", what, foreign)

    def _json(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        expected_type: str,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        idempotent: bool | None = None,
    ) -> JsonObject:
        response = self._request(
            method,
            url,
            params=params,
            body=body,
            headers=headers,
            request_id=request_id,
            idempotent=idempotent,
        )
        data = self._parse_body(method, url, response)
        if not isinstance(data, dict) or data.get("resourceType") != expected_type:
            got = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
            raise InvalidServerResponse(
                f"{method} {self._path(url)} returned {got!r}, expected {expected_type!r}"
            )
        return data

    def _parse_body(self, method: str, url: str, response: requests.Response) -> Any:
        try:
            return json.loads(response.content)
        except ValueError:
            content_type = response.headers.get("Content-Type", "none")
            raise InvalidServerResponse(
                f"{method} {self._path(url)} -> {response.status_code}: body is not JSON "
                f"(Content-Type {content_type})"
            ) from None

    def _path(self, url: str, params: Params | None = None) -> str:
        """Loggable form of a URL: path below the base, query parameter names only."""
        parts = urlsplit(url)
        base_path = urlsplit(self.base_url).path
        path = parts.path[len(base_path) :] if parts.path.startswith(base_path) else parts.path
        names = [kv.split("=", 1)[0] for kv in parts.query.split("&") if kv]
        names += [name for name, _ in param_items(params)]
        return (path or "/") + (f"?{','.join(dict.fromkeys(names))}" if names else "")

    def _headers(
        self, headers: Mapping[str, str] | None, request_id: str | None, has_body: bool
    ) -> dict[str, str]:
        result = {"Accept": FHIR_JSON, "User-Agent": self._user_agent}
        if has_body:
            result["Content-Type"] = f"{FHIR_JSON}; charset=utf-8"
        if request_id is not None:
            result[self._request_id_header] = request_id
        result.update(headers or {})
        return result

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        idempotent: bool | None = None,
        stream: bool = False,
        authenticate: bool = True,
    ) -> requests.Response:
        """Send with retries (idempotent only), one token refresh on 401; raise typed errors."""
        # Serialised once, so every retry sends the same bytes.
        data = (
            json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            if body is not None
            else None
        )
        call = _Call(
            method=method,
            url=url,
            path=self._path(url, params),
            params=params,
            data=data,
            headers=self._headers(headers, request_id, data is not None),
            idempotent=method in _IDEMPOTENT_METHODS if idempotent is None else idempotent,
            stream=stream,
            authenticate=authenticate,
            started=self._retry.clock(),
        )
        while True:
            call.attempt += 1
            self._raise_refusal(call)
            response = self._send_once(call)
            if response is not None and not self._resend(call, response):
                return self._checked(call, response)

    def _raise_refusal(self, call: _Call) -> None:
        """Raise when the next attempt must not be sent (budget spent, circuit open)."""
        refusal = self._refusal(call.method, call.path)
        if refusal is None:
            return
        if call.attempt == 1:
            raise refusal
        raise FhirTransportError(
            f"{call.method} {call.path}: gave up after {call.attempt - 1} attempt(s): {refusal}"
        )

    def _send_once(self, call: _Call) -> requests.Response | None:
        """One attempt; None when it failed in transport and the wait for a retry is over."""
        sent_at = self._retry.clock()
        try:
            response = self._session.request(
                call.method,
                call.url,
                params=call.params,
                data=call.data,
                headers=call.headers,
                auth=self._auth if call.authenticate else None,
                timeout=self._timeout_now(),
                verify=self._verify,
                cert=self._cert,
                # A redirected POST/PUT would silently become a GET; only reads may follow.
                allow_redirects=call.method == "GET",
                stream=call.stream,
            )
        except _TRANSIENT as exc:
            self._transport_failed(call, exc)
            return None
        except requests.RequestException as exc:
            raise FhirTransportError(f"{call.method} {call.path}: {type(exc).__name__}") from exc
        self._answered(call, response, sent_at)
        return response

    def _transport_failed(self, call: _Call, exc: Exception) -> None:
        """Wait for the next attempt, or raise when there is none."""
        if self.breaker is not None:
            self.breaker.failed()
        policy = self._retry
        elapsed = policy.clock() - call.started
        delay = _within_budget(
            policy.next_delay(call.attempt, elapsed) if call.idempotent else None
        )
        log.warning(
            "fhir %s %s failed: %s (attempt %d%s)",
            call.method,
            call.path,
            type(exc).__name__,
            call.attempt,
            f", retry in {delay:.2f} s" if delay is not None else ", giving up",
        )
        if delay is None:
            raise FhirTransportError(
                f"{call.method} {call.path}: {type(exc).__name__} after {call.attempt} attempt(s)"
            ) from exc
        policy.sleep(delay)

    def _answered(self, call: _Call, response: requests.Response, sent_at: float) -> None:
        """Tell the breaker and the log that the server answered."""
        status = response.status_code
        if self.breaker is not None:
            # An answer, even an error, shows the server alive; a 5xx counts as failing.
            if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                self.breaker.failed()
            else:
                self.breaker.succeeded()
        duration_ms = (self._retry.clock() - sent_at) * 1000
        level = logging.DEBUG if status < HTTPStatus.BAD_REQUEST else logging.INFO
        log.log(level, "fhir %s %s -> %d in %.0f ms", call.method, call.path, status, duration_ms)

    def _resend(self, call: _Call, response: requests.Response) -> bool:
        """Whether to send again: once with a fresh token, or after a status worth a retry."""
        return self._refreshed_token(call, response) or self._waited_for_retry(call, response)

    def _refreshed_token(self, call: _Call, response: requests.Response) -> bool:
        if (
            response.status_code != HTTPStatus.UNAUTHORIZED
            or not call.authenticate
            or call.refreshed
            or not isinstance(self._auth, RefreshableAuth)
        ):
            return False
        # A 401 means the request was not processed, so one resend is safe for any method.
        call.refreshed = True
        call.attempt -= 1
        self._auth.invalidate()
        response.close()
        return True

    def _waited_for_retry(self, call: _Call, response: requests.Response) -> bool:
        status = response.status_code
        policy = self._retry
        if not call.idempotent or status not in policy.retry_statuses:
            return False
        retry_after = policy.parse_retry_after(response.headers.get("Retry-After"))
        delay = _within_budget(
            policy.next_delay(call.attempt, policy.clock() - call.started, retry_after)
        )
        if delay is None:
            return False
        log.warning(
            "fhir %s %s -> %d, retry %d in %.2f s",
            call.method,
            call.path,
            status,
            call.attempt,
            delay,
        )
        response.close()
        policy.sleep(delay)
        return True

    def _checked(self, call: _Call, response: requests.Response) -> requests.Response:
        """The response, or the typed error its status stands for."""
        status = response.status_code
        if status >= HTTPStatus.BAD_REQUEST:
            raise self._error(call.method, call.path, response)
        if status >= HTTPStatus.MULTIPLE_CHOICES:
            raise InvalidServerResponse(f"{call.method} {call.path} -> unexpected {status}")
        return response

    def _refusal(self, method: str, path: str) -> NotSent | None:
        """Why the next attempt must not be sent (budget spent, circuit open), or None."""
        left = _budget_left()
        if left is not None and left <= 0:
            return BudgetExhausted(f"{method} {path}: time budget spent")
        if self.breaker is not None and not self.breaker.allow():
            return CircuitOpen(
                f"{method} {path}: circuit open, the server kept failing",
                self.breaker.retry_after(),
            )
        return None

    def _timeout_now(self) -> tuple[float, float]:
        """The configured timeouts, cut to what is left of the time budget."""
        left = _budget_left()
        if left is None:
            return self._timeout
        connect, read = self._timeout
        return (min(connect, max(left, 0.01)), min(read, max(left, 0.01)))

    def _error(self, method: str, path: str, response: requests.Response) -> Exception:
        try:
            outcome = parse_operation_outcome(json.loads(response.content))
        except ValueError:
            outcome = None
        retry_after = self._retry.parse_retry_after(response.headers.get("Retry-After"))
        return error_for_status(
            response.status_code, method=method, path=path, outcome=outcome, retry_after=retry_after
        )
