"""The one error body every endpoint answers with, and marshmallow messages flattened into it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, fields


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where (a dotted path, [i] for list items) and what."""

    field: str
    message: str


class ProblemSchema(Schema):
    field = fields.String(required=True)
    message = fields.String(required=True)


class ErrorSchema(Schema):
    """{"error": code, "message": text, "problems": [{"field", "message"}]}."""

    error = fields.String(required=True)
    message = fields.String(required=True)
    problems = fields.List(fields.Nested(ProblemSchema))


def _join(prefix: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if key == "_schema":
        return prefix or "$"
    return f"{prefix}.{key}" if prefix else str(key)


def flatten_messages(messages: Any, prefix: str = "") -> list[Problem]:
    """Turn marshmallow's nested {field: [msg]} into a flat list of (path, message)."""
    if isinstance(messages, dict):
        problems: list[Problem] = []
        for key, value in messages.items():
            problems.extend(flatten_messages(value, _join(prefix, key)))
        return problems
    if isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            return [Problem(prefix or "$", m) for m in messages]
        problems = []
        for item in messages:
            problems.extend(flatten_messages(item, prefix))
        return problems
    return [Problem(prefix or "$", str(messages))]
