"""Outbound authentication to a FHIR server: none, bearer, basic, SMART Backend Services."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from requests.auth import AuthBase, HTTPBasicAuth

from .errors import AuthenticationError, FhirTransportError

log = logging.getLogger(__name__)

SigningAlg = Literal["RS384", "ES384"]
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# SMART: the assertion's exp SHALL be no more than five minutes ahead; stay under for skew.
ASSERTION_LIFETIME = 240


@runtime_checkable
class RefreshableAuth(Protocol):
    """Auth whose credentials can be dropped so the next request fetches fresh ones."""

    def invalidate(self) -> None:
        """Forget the cached credential."""


class BearerTokenAuth(AuthBase):
    """A static bearer token (e.g. issued out of band)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return "BearerTokenAuth(token=***)"


class BasicAuth(HTTPBasicAuth):
    """HTTP Basic credentials, with a repr that hides the password."""

    def __repr__(self) -> str:
        return "BasicAuth(username=***, password=***)"


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float


def _load_key(
    private_key_pem: str | bytes, alg: SigningAlg
) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        # `from None`: the underlying error text could quote key material.
        raise AuthenticationError("SMART private key is not an unencrypted PEM key") from None
    if alg == "RS384" and isinstance(key, rsa.RSAPrivateKey):
        return key
    if (
        alg == "ES384"
        and isinstance(key, ec.EllipticCurvePrivateKey)
        and isinstance(key.curve, ec.SECP384R1)
    ):
        return key
    raise AuthenticationError(f"SMART private key does not fit {alg} (RS384: RSA, ES384: P-384)")


class SmartBackendAuth(AuthBase):
    """SMART Backend Services: client_credentials with a private_key_jwt assertion; token cached."""

    def __init__(
        self,
        *,
        client_id: str,
        private_key_pem: str | bytes,
        key_id: str,
        alg: SigningAlg = "RS384",
        scope: str = "system/*.rs",
        token_url: str | None = None,
        fhir_base_url: str | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        verify: bool | str = True,
        clock: Callable[[], float] = time.time,
        refresh_margin: float = 60.0,
    ) -> None:
        if token_url is None and fhir_base_url is None:
            raise ValueError("SmartBackendAuth needs token_url or fhir_base_url (for discovery)")
        self.client_id = client_id
        self._key = _load_key(private_key_pem, alg)
        self._key_id = key_id
        self._alg: SigningAlg = alg
        self._scope = scope
        self._token_url = token_url
        self._fhir_base_url = fhir_base_url.rstrip("/") if fhir_base_url else None
        self._session = session or requests.Session()
        self._timeout = timeout
        self._verify = verify
        self._clock = clock
        self._refresh_margin = refresh_margin
        self._token: _Token | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SmartBackendAuth(client_id={self.client_id!r}, alg={self._alg!r}, key=***)"

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.access_token()}"
        return r

    def invalidate(self) -> None:
        """Drop the cached token (after a 401) so the next request fetches a new one."""
        with self._lock:
            self._token = None

    def access_token(self) -> str:
        """A valid access token: cached until shortly before expiry, else fetched anew."""
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._token.refresh_at:
                self._token = self._fetch_token(now)
            return self._token.value

    def token_url(self) -> str:
        """The token endpoint: configured, or read once from .well-known/smart-configuration."""
        if self._token_url is None:
            self._token_url = self._discover_token_url()
        return self._token_url

    def client_assertion(self, token_url: str, now: float) -> str:
        """The signed private_key_jwt assertion for one token request."""
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_url,
            "jti": uuid.uuid4().hex,
            "iat": int(now),
            "exp": int(now) + ASSERTION_LIFETIME,
        }
        headers = {"kid": self._key_id, "typ": "JWT"}
        return jwt.encode(claims, self._key, algorithm=self._alg, headers=headers)

    def _get_json(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            response = self._session.request(
                method, url, timeout=self._timeout, verify=self._verify, **kwargs
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise FhirTransportError(f"{method} {url}: {type(exc).__name__}") from exc
        if not response.ok:
            error = None
            try:
                data = response.json()
                error = data.get("error") if isinstance(data, dict) else None
            except ValueError:
                pass
            # OAuth `error` codes (invalid_client, ...) are safe to show; descriptions may not be.
            raise AuthenticationError(
                f"{method} {url} -> {response.status_code} ({error or 'no error code'})"
            )
        try:
            return response.json()
        except ValueError:
            raise AuthenticationError(f"{method} {url} did not return JSON") from None

    def _discover_token_url(self) -> str:
        url = f"{self._fhir_base_url}/.well-known/smart-configuration"
        config = self._get_json("GET", url, headers={"Accept": "application/json"})
        token_url = config.get("token_endpoint") if isinstance(config, dict) else None
        if not isinstance(token_url, str):
            raise AuthenticationError(f"{url} has no token_endpoint")
        return token_url

    def _fetch_token(self, now: float) -> _Token:
        token_url = self.token_url()
        form = {
            "grant_type": "client_credentials",
            "scope": self._scope,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": self.client_assertion(token_url, now),
        }
        data = self._get_json("POST", token_url, data=form, headers={"Accept": "application/json"})
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthenticationError(f"{token_url} returned no access_token")
        expires_in = data.get("expires_in")
        # SMART requires expires_in; if a server omits it, assume the usual five minutes.
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 300.0
        margin = min(self._refresh_margin, lifetime / 2)
        log.info(
            "fhir auth: token obtained for client %s, expires in %.0f s", self.client_id, lifetime
        )
        return _Token(value=token, refresh_at=now + lifetime - margin)
