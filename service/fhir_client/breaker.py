"""A circuit breaker per FHIR server: stop calling a server that keeps failing, for a while.

A hung server costs a whole timeout per call; once `failures` calls in a row have timed out or
failed (no answer, or a 5xx), calls are refused at once for `cooldown` seconds. Then one trial
call goes through: its success closes the circuit, its failure opens it for another cool-down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    """Whether calls go through."""

    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls are refused until the cool-down ends
    HALF_OPEN = "half_open"  # one trial call is in flight; the others are refused


class CircuitBreaker:
    """Thread-safe; one per server per process (shared by every caller of that server)."""

    def __init__(
        self,
        failures: int = 3,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or cooldown <= 0:
            raise ValueError("a circuit breaker needs failures >= 1 and cooldown > 0")
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failed = 0  # consecutive failures
        self._opened_at: float | None = None
        self._trial_since: float | None = None

    @property
    def state(self) -> BreakerState:
        """The state right now (an ended cool-down reads as half-open: a trial may go)."""
        with self._lock:
            if self._opened_at is None:
                return BreakerState.CLOSED
            if self._clock() - self._opened_at < self.cooldown:
                return BreakerState.OPEN
            return BreakerState.HALF_OPEN

    def allow(self) -> bool:
        """Whether a call may go now; after a cool-down, True for one trial call only."""
        with self._lock:
            if self._opened_at is None:
                return True
            now = self._clock()
            if now - self._opened_at < self.cooldown:
                return False
            # A trial that never reported (its caller died) must not block the server forever.
            if self._trial_since is not None and now - self._trial_since < self.cooldown:
                return False
            self._trial_since = now
            return True

    def retry_after(self) -> float:
        """Seconds until a call may be tried again (0 when closed)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self.cooldown - (self._clock() - self._opened_at))

    def succeeded(self) -> None:
        """The server answered (any status below 500): close the circuit."""
        with self._lock:
            self._failed = 0
            self._opened_at = None
            self._trial_since = None

    def failed(self) -> None:
        """No answer in time, a broken connection, or a 5xx: count it; open at the limit."""
        with self._lock:
            self._failed += 1
            self._trial_since = None
            if self._opened_at is not None or self._failed >= self.failures:
                self._opened_at = self._clock()
