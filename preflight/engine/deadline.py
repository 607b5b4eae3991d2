"""One deadline object that flows down every network call of a check."""

from __future__ import annotations

import time
from dataclasses import dataclass

#: What a client library's own timeout is given less than the time left, so that its precise
#: error ("connection refused", "no answer to X") arrives before the check's deadline.
CLIENT_MARGIN_S = 0.2
#: The timeout of every cleanup client (drop the scratch table, delete the object…): cleanups
#: run after the check's deadline too, so they have a bound of their own.
CLEANUP_TIMEOUT_S = 5.0


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

    def client_timeout(self, cap: float | None = None, reserve: float = 0.0) -> float:
        """The timeout to hand a client library: what is left less CLIENT_MARGIN_S (and
        `reserve` seconds kept for a later step), at least 0.05 s; raises DeadlineExceeded
        when no time is left."""
        return max(0.05, self.timeout(cap) - CLIENT_MARGIN_S - reserve)

    def inner(self) -> Deadline:
        """A deadline CLIENT_MARGIN_S earlier, for work whose own failure should arrive first."""
        return Deadline(self.expires_at - CLIENT_MARGIN_S)


def timeout_message(during: str, timeout_s: float) -> str:
    """The one wording of a check that ran out of time."""
    return f"timed out {during} (--timeout {timeout_s:g}s)"
