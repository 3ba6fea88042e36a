"""When and how long to wait before trying a request again."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus

# Statuses that say "not now" rather than "never": rate limiting and gateway/availability trouble.
RETRYABLE_STATUSES: frozenset[int] = frozenset(
    {
        HTTPStatus.TOO_MANY_REQUESTS,
        HTTPStatus.BAD_GATEWAY,
        HTTPStatus.SERVICE_UNAVAILABLE,
        HTTPStatus.GATEWAY_TIMEOUT,
    }
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter; clocks and sleep injectable."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    # Total time budget from the first attempt; a wait that would overrun it is not taken.
    deadline: float = 60.0
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    wall_clock: Callable[[], datetime] = field(default=_utc_now, compare=False)
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def backoff(self, attempt: int) -> float:
        """Full-jitter delay after the given failed attempt (1-based): uniform in [0, cap]."""
        cap = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return self.jitter() * cap

    def next_delay(
        self, attempt: int, elapsed: float, retry_after: float | None = None
    ) -> float | None:
        """Seconds to wait before the next attempt, or None when retrying is over."""
        if attempt >= self.max_attempts:
            return None
        # The server's Retry-After wins over our own backoff: it knows its load.
        delay = retry_after if retry_after is not None else self.backoff(attempt)
        if elapsed + delay > self.deadline:
            return None
        return delay

    def parse_retry_after(self, value: str | None) -> float | None:
        """Seconds from a Retry-After header (delta-seconds or HTTP date); None if absent/bad."""
        return parse_retry_after(value, self.wall_clock())


NO_RETRY = RetryPolicy(max_attempts=1)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP date, never negative."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
