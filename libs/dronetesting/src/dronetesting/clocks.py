"""Clocks a test moves by hand, for code that takes its clock as an argument.

:class:`FakeClock` stands in for ``time.monotonic``/``time.time`` (seconds as a float);
:class:`FakeUtcClock` for a ``Callable[[], datetime]`` (aware UTC datetimes).
"""

from __future__ import annotations

import datetime as dt


class FakeClock:
    """Seconds, as ``time.monotonic`` gives them; ``advance`` moves them on."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeUtcClock:
    """An aware datetime; ``at`` sets it to a time after ``start``."""

    def __init__(self, start: dt.datetime) -> None:
        self.start = start
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def at(self, seconds: float = 0.0, *, minutes: float = 0.0) -> dt.datetime:
        self.now = self.start + dt.timedelta(seconds=seconds, minutes=minutes)
        return self.now
