"""Date-times from outside: aware, a representable UTC instant, and within a clinical range.

`9999-12-31T23:59:59-23:59` is valid ISO 8601 yet lies past datetime.max in UTC: every later
`astimezone` or comparison with another offset would crash (a 500, or a record stored that can
never be mapped). Diary and infusion times, and the windows we search, all fall within
EARLIEST..LATEST; anything outside is a typo or an attack, so it is refused and named.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # included: a natural exclusive end of a window
RANGE_MESSAGE = f"must lie from {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} (UTC, both included)"


def range_problem(value: datetime) -> str | None:
    """Why an aware date-time is no instant we accept (out of range, unrepresentable), or None."""
    try:
        instant = value.astimezone(UTC)
    except OverflowError:
        return RANGE_MESSAGE  # the offset pushes it past year 1 or 9999 in UTC
    return None if EARLIEST <= instant <= LATEST else RANGE_MESSAGE


class ClinicalDateTime(fields.AwareDateTime):
    """An ISO 8601 date-time with an offset, within EARLIEST..LATEST (else a problem naming it)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        parsed: datetime = super()._deserialize(value, attr, data, **kwargs)
        problem = range_problem(parsed)
        if problem:
            raise ValidationError(problem)
        return parsed
