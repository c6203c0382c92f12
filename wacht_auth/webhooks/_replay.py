"""Replay guards: refuse a ``webhook-id`` whose delivery was handled already.

Wacht's retries keep the original ``webhook-id``, so an id seen again is either a retry of a
delivery whose answer was lost (the handler ran: running it twice would double its effects)
or a captured delivery sent again by someone else. A guard remembers an id only once its
handler **succeeded**: a handler that failed is retried by Wacht with the same id, and that
retry must run the handler again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["DEFAULT_REPLAY_ENTRIES", "MemoryReplayGuard", "ReplayGuard"]

#: How many ids :class:`MemoryReplayGuard` keeps by default (about 1 MB of memory).
DEFAULT_REPLAY_ENTRIES = 10_000


@runtime_checkable
class ReplayGuard(Protocol):
    """Where handled delivery ids are kept: implement it over a cache or database shared by
    every process of the app (Django's cache framework, Redis ...).

    Both methods are called on the request path, from sync and async views alike: keep them
    quick and non-blocking for the event loop (an in-memory or network cache is fine).
    """

    def seen(self, webhook_id: str) -> bool:
        """Whether a delivery with ``webhook_id`` was handled successfully before."""
        ...

    def remember(self, webhook_id: str, expires_at: float) -> None:
        """Keep ``webhook_id`` as handled until ``expires_at`` (POSIX seconds): after that
        the delivery's timestamp is outside the tolerance and it is refused as too old anyway,
        so the guard may forget it."""
        ...


class MemoryReplayGuard:
    """The in-process default: at most ``max_entries`` ids, the oldest dropped first.

    Each process of the app keeps its own; a second process (a second worker, a second
    server) does not see these ids. Thread-safe.
    """

    def __init__(
        self, max_entries: int = DEFAULT_REPLAY_ENTRIES, *, clock: Callable[[], float] = time.time
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be a positive integer, got {max_entries!r}")
        self.max_entries = max_entries
        self._clock = clock
        self._ids: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"MemoryReplayGuard(max_entries={self.max_entries}, held={len(self._ids)})"

    def seen(self, webhook_id: str) -> bool:
        """Whether ``webhook_id`` is held and not expired."""
        with self._lock:
            expires_at = self._ids.get(webhook_id)
            if expires_at is None:
                return False
            if expires_at <= self._clock():
                del self._ids[webhook_id]
                return False
            return True

    def remember(self, webhook_id: str, expires_at: float) -> None:
        """Hold ``webhook_id`` until ``expires_at``, dropping the oldest ids over the bound."""
        with self._lock:
            self._ids[webhook_id] = expires_at
            self._ids.move_to_end(webhook_id)
            while len(self._ids) > self.max_entries:
                self._ids.popitem(last=False)
