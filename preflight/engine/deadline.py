"""One deadline object that flows down every network call of a check."""

from __future__ import annotations

import time
from dataclasses import dataclass


class DeadlineExceeded(TimeoutError):
    """The check's time is up."""


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock; every network step takes its timeout from it."""

    expires_at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.expires_at - time.monotonic())

    def timeout(self, cap: float | None = None) -> float:
        """The timeout for the next blocking call; raises DeadlineExceeded when none is left."""
        left = self.remaining()
        if left <= 0.0:
            raise DeadlineExceeded("the check's deadline has passed")
        return left if cap is None else min(left, cap)
