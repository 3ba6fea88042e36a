"""SMART on FHIR scopes (v1 and v2 syntax) reduced to read/write per context and resource type."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Context = Literal["patient", "user", "system"]
Action = Literal["read", "write"]

_CLINICAL = re.compile(
    r"(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{0,63})\.(?P<perm>[^?\s]+)"
    r"(?P<query>\?\S*)?"
)
# SMART v2 permissions: a non-empty subset of c r u d s, in that order.
_V2_PERMISSIONS = re.compile(r"c?r?u?d?s?")
_V1_PERMISSIONS = {"read": (True, False), "write": (False, True), "*": (True, True)}


@dataclass(frozen=True)
class Scope:
    """One clinical scope: what `context` may do with `resource_type` ("*" means every type)."""

    context: Context
    resource_type: str
    read: bool
    write: bool

    def allows(self, action: Action, resource_type: str) -> bool:
        """Whether this scope covers `action` on `resource_type`, ignoring patient binding."""
        if self.resource_type not in ("*", resource_type):
            return False
        return self.read if action == "read" else self.write

    def __str__(self) -> str:
        permission = "*" if self.read and self.write else ("read" if self.read else "write")
        return f"{self.context}/{self.resource_type}.{permission}"


def parse_scope(text: str) -> Scope | None:
    """Parse one clinical scope; None if `text` is not one we can enforce.

    v1 `.read`/`.write`/`.*`; v2 `.cruds` letters where r and s mean read and c, u, d mean
    write. v2 scopes with a `?query` restriction return None: we cannot enforce the filter,
    so granting the unfiltered scope would give more than was consented.
    """
    match = _CLINICAL.fullmatch(text)
    if match is None or match.group("query") is not None:
        return None
    permission = match.group("perm")
    if permission in _V1_PERMISSIONS:
        read, write = _V1_PERMISSIONS[permission]
    elif _V2_PERMISSIONS.fullmatch(permission):
        read = "r" in permission or "s" in permission
        write = any(letter in permission for letter in "cud")
    else:
        return None
    context: Context = match.group("context")  # type: ignore[assignment]
    return Scope(context, match.group("type"), read, write)


def parse_scopes(text: str | Iterable[str], *, strict: bool = False) -> frozenset[Scope]:
    """Parse a space-separated scope string (or list) into the clinical scopes it grants.

    Lenient (tokens): anything else, such as `openid`, `launch/patient`, `fhirUser` or a
    malformed scope, is ignored and grants nothing. Strict (configuration): anything that is
    not an enforceable clinical scope raises ValueError, so a typo cannot pass unnoticed.
    """
    words = text.split() if isinstance(text, str) else [w for item in text for w in item.split()]
    scopes: set[Scope] = set()
    for word in words:
        scope = parse_scope(word)
        if scope is not None:
            scopes.add(scope)
        elif strict:
            raise ValueError(f"not an enforceable clinical scope: {word!r}")
    return frozenset(scopes)
