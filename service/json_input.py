"""JSON from outside, with a bound on nesting: deep nesting is an attack, never a diary entry."""

from __future__ import annotations

import json
from typing import Any

# Our formats nest 4 levels, FHIR Bundles of our resources about 10; 64 leaves room for both.
MAX_DEPTH = 64


class JsonTooDeep(ValueError):
    """The JSON nests more levels than any input of ours needs."""


def _depth(value: Any) -> int:
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                break
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return deepest


def loads(text: str | bytes) -> Any:
    """json.loads, refusing input nested deeper than MAX_DEPTH (ValueError if not JSON)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise JsonTooDeep(f"the JSON nests more than {MAX_DEPTH} levels") from None
    if _depth(value) > MAX_DEPTH:
        raise JsonTooDeep(f"the JSON nests more than {MAX_DEPTH} levels")
    return value
