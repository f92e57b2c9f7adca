"""A consecutive-failure circuit breaker, one per target host.

States::

    CLOSED --(threshold consecutive failures)--> OPEN --(reset timeout)--> HALF_OPEN
    HALF_OPEN --(probe succeeds)--> CLOSED
    HALF_OPEN --(probe fails)-----> OPEN (for another reset timeout)

*Failures* are transient ones only (timeouts, connection errors, 5xx, 408, 429); any other
answer from the server — a 404 or a 400 included — proves it is up and counts as a success. While
OPEN every call is refused at once; in HALF_OPEN exactly one call (the probe) goes through and the
others are refused until it ends. A probe that ends with neither outcome (cancelled, a local pool
timeout) hands its slot back so the next call probes instead.

The breaker is plain state, not a lock: the client runs on one event loop, so no two callers touch
it at the same time. The clock is injectable for tests.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class CircuitState(enum.Enum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Admission(enum.Enum):
    """The answer of :meth:`CircuitBreaker.acquire`; pass it back when recording the outcome."""

    ADMITTED = "admitted"
    PROBE = "probe"
    REFUSED = "refused"


class CircuitBreaker:
    """Counts consecutive transient failures of one target and fails fast while it is down."""

    __slots__ = (
        "_clock",
        "_failures",
        "_opened_at",
        "_probing",
        "_state",
        "failure_threshold",
        "name",
        "reset_timeout",
    )

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        reset_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> CircuitState:
        """The current state (OPEN turns HALF_OPEN once the reset timeout has passed)."""
        if (
            self._state is CircuitState.OPEN
            and self._clock() - self._opened_at >= self.reset_timeout
        ):
            self._state = CircuitState.HALF_OPEN
            self._probing = False
            logger.info("circuit half-open for %s: next call probes", self.name)
        return self._state

    @property
    def retry_after(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        if self.state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self.reset_timeout - (self._clock() - self._opened_at))

    def acquire(self) -> Admission:
        """Whether a call may go out now; in HALF_OPEN the first caller becomes the probe."""
        state = self.state
        if state is CircuitState.CLOSED:
            return Admission.ADMITTED
        if state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            return Admission.PROBE
        return Admission.REFUSED

    def record_success(self, admission: Admission) -> None:
        """The target answered (anything but a transient failure)."""
        self._failures = 0
        if admission is Admission.PROBE:
            self._probing = False
        if self._state is not CircuitState.CLOSED:
            self._state = CircuitState.CLOSED
            self._probing = False
            logger.info("circuit closed for %s", self.name)

    def record_failure(self, admission: Admission) -> None:
        """The target failed transiently."""
        if admission is Admission.PROBE:
            self._probing = False
            if self._state is CircuitState.HALF_OPEN:
                self._open()
            return
        if self._state is not CircuitState.CLOSED:
            return  # admitted before the breaker opened: the probe decides, the clock keeps running
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._open()

    def release(self, admission: Admission) -> None:
        """The call ended with no verdict on the target; a probe hands its slot back."""
        if admission is Admission.PROBE:
            self._probing = False

    def _open(self) -> None:
        self._state = CircuitState.OPEN
        self._opened_at = self._clock()
        self._failures = 0
        logger.warning(
            "circuit opened for %s: failing fast for %.3gs", self.name, self.reset_timeout
        )
