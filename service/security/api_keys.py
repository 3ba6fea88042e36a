"""API keys for simple deployments: looked up by sha256, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from service.security.settings import ApiKeyGrant


class ApiKeys:
    """The configured API keys, held only as sha256 digests."""

    def __init__(self, grants: Mapping[str, ApiKeyGrant]) -> None:
        self._entries = [(bytes.fromhex(digest), grant) for digest, grant in grants.items()]

    def __bool__(self) -> bool:
        return bool(self._entries)

    def lookup(self, key: str) -> ApiKeyGrant | None:
        """Return the grant for `key`, or None if it is not configured."""
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        found = None
        # No early exit: the time taken does not depend on which entry matched.
        for stored, grant in self._entries:
            if hmac.compare_digest(stored, digest):
                found = grant
        return found
