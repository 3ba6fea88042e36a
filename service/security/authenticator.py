"""The one entry point for inbound credentials: Authorization header or API key -> Principal."""

from __future__ import annotations

from service.security.api_keys import ApiKeys
from service.security.errors import Unauthenticated
from service.security.jwks import JwksFile, JwksUrl, SigningKeys
from service.security.principal import Principal
from service.security.settings import SecuritySettings
from service.security.tokens import TokenVerifier

# Far above any real access token; stops oversized headers before any parsing.
MAX_TOKEN_LENGTH = 16_384


def signing_keys_for(settings: SecuritySettings) -> SigningKeys | None:
    """Return the key source the settings name, or None if bearer tokens are not accepted."""
    if settings.jwks_file is not None:
        return JwksFile(settings.jwks_file)
    if settings.jwks_url:
        return JwksUrl(
            settings.jwks_url, settings.jwks_cache_seconds, settings.jwks_timeout_seconds
        )
    return None


class Authenticator:
    """Checks credentials; build one per app and share it between requests (thread-safe)."""

    def __init__(self, settings: SecuritySettings, keys: SigningKeys | None = None) -> None:
        keys = keys if keys is not None else signing_keys_for(settings)
        self._tokens = TokenVerifier(settings, keys) if keys is not None else None
        self._api_keys = ApiKeys(settings.api_keys)

    def authenticate(self, authorization: str | None, api_key: str | None = None) -> Principal:
        """Return the caller for an `Authorization` header value and/or an API key header value.

        Raises Unauthenticated (401) for missing or bad credentials and KeysUnavailable (503)
        when the JWKS cannot be fetched.
        """
        authorization = (authorization or "").strip() or None
        api_key = (api_key or "").strip() or None
        if authorization and api_key:
            raise Unauthenticated("send one credential, not both", error="invalid_request")
        if api_key:
            return self._from_api_key(api_key)
        if authorization:
            return self._from_authorization(authorization)
        raise Unauthenticated("credentials are required", error=None)

    def _from_api_key(self, key: str) -> Principal:
        if not self._api_keys:
            raise Unauthenticated("API keys are not accepted")
        grant = self._api_keys.lookup(key)
        if grant is None:
            raise Unauthenticated("API key is not valid")
        return Principal(grant.client_id, grant.scopes, grant.patient, credential="api_key")

    def _from_authorization(self, authorization: str) -> Principal:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("use the Bearer authorization scheme", error="invalid_request")
        if self._tokens is None:
            raise Unauthenticated("bearer tokens are not accepted")
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated("token is too long")
        return self._tokens.verify(token)
