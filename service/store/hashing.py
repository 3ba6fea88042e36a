"""Canonical JSON and its sha256: the content hash that decides whether a record changed."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from service.store.errors import InvalidItemError


def canonical_json(value: Any) -> str:
    """Serialise JSON data with sorted keys and no whitespace, so equal data gives equal text."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise InvalidItemError(f"record is not plain JSON data: {type(exc).__name__}") from exc


def content_hash(value: Any) -> str:
    """Hex sha256 of the canonical JSON of a value."""
    return text_hash(canonical_json(value))


def text_hash(canonical: str) -> str:
    """Hex sha256 of canonical JSON already serialised (content_hash without a second dump)."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
