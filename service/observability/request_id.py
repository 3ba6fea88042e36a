"""The id of the request being served, kept in a contextvar so every layer and log line sees it."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar, Token

# Short and plain so it is safe in a log line, a header and the audit table (64 characters).
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

_current: ContextVar[str | None] = ContextVar("diarybridge_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served in this context, or None outside a request."""
    return _current.get()


def choose_request_id(offered: str | None) -> str:
    """The caller's X-Request-ID if it is a sane token, else a fresh uuid4."""
    if offered and _SANE.fullmatch(offered):
        return offered
    return str(uuid.uuid4())


def bind_request_id(request_id: str) -> Token[str | None]:
    """Make `request_id` current; give the token back to `reset_request_id` when done."""
    return _current.set(request_id)


def reset_request_id(token: Token[str | None]) -> None:
    """Restore the id that was current before `bind_request_id`."""
    _current.reset(token)
