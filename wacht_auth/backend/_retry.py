"""When the Backend API clients try a call again, and how long they wait (no I/O).

:class:`RetryPolicy` holds the settings; :func:`parse_retry_after` and
:func:`retry_after_from_message` read the server's own wait. ``Core`` applies them to each
answer.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from ..errors import ConfigurationError

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "RetryPolicy",
    "parse_retry_after",
    "retry_after_from_message",
]

#: RFC 9110 §9.2.2: methods whose repetition has the same effect as one request.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Statuses worth another try: rate limited, or a gateway/upstream that may recover.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Wacht's 429 without a ``Retry-After`` header says "Retry after N seconds" in its message
#: (``docs/backend.md``, "Retries and rate limits").
_RETRY_AFTER_TEXT = re.compile(r"retry\s+after\s+(\d+(?:\.\d+)?)", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """When and how the clients retry a failed call.

    429, 502, 503 and 504 answers and transport failures (connection refused or reset,
    timeouts) are retried for idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE), and for
    POST/PATCH only when an idempotency key is sent. The wait is the server's ``Retry-After``
    (seconds or an HTTP date) or the "Retry after N seconds" of a 429 message; otherwise
    exponential backoff with full jitter: ``uniform(0, min(backoff_max, backoff_base * 2**n))``.

    Attributes:
        max_attempts: total tries per call, the first included (1 turns retries off).
        deadline: seconds from the first try after which no new try starts.
        backoff_base: the first backoff ceiling, seconds.
        backoff_max: the largest backoff ceiling, seconds.
        max_retry_after: the longest server-requested wait honoured; a longer one gives up at
            once (the error carries ``retry_after`` so the caller can schedule a later try).
        random: returns a float in [0, 1); injectable for deterministic tests.
    """

    max_attempts: int = 3
    deadline: float = 30.0
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ConfigurationError("max_attempts must be an integer >= 1")
        if not 1 <= self.max_attempts <= 20:
            raise ConfigurationError("max_attempts must be between 1 and 20")
        for name in ("deadline", "backoff_base", "backoff_max", "max_retry_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ConfigurationError(f"{name} must be a number >= 0, got {value!r}")
            if math.isinf(value) and name != "max_retry_after":
                raise ConfigurationError(f"{name} must be finite")
        if not self.deadline > 0:
            raise ConfigurationError("deadline must be more than 0 seconds")

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff after try number ``attempt`` (1-based)."""
        ceiling = min(self.backoff_max, math.ldexp(self.backoff_base, min(attempt - 1, 30)))
        return float(self.random()) * ceiling


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP date (RFC 9110
    §10.2.3). ``now`` is POSIX seconds; a date in the past means "now" (0)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        return max(0.0, when.timestamp() - now)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def retry_after_from_message(message: str | None) -> float | None:
    """The N of "Retry after N seconds" in a 429 message, when the header is missing."""
    match = _RETRY_AFTER_TEXT.search(message or "")
    return float(match.group(1)) if match else None
