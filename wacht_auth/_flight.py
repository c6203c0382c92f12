"""Single flight: one piece of I/O in progress, awaited by every thread and task that needs it.

The key set (one fetch of the signing keys) and the session exchange (one request per
transport cookie) both let the first caller run the I/O and everyone else wait for its result:
threads on an event, asyncio tasks on a future of their own loop (any loop, any thread).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Generic, TypeVar

__all__ = ["Flight"]

T = TypeVar("T")


class Flight(Generic[T]):
    """One operation in progress and, once :meth:`finish` ran, its ``result``.

    Nobody waits past ``until`` (monotonic): the operation's own deadline plus a grace that the
    owner chooses. A waiter that gives up goes on without the result (``done`` says whether
    there is one).
    """

    __slots__ = ("_done", "_lock", "_waiters", "result", "started", "until")

    def __init__(self, wait_for: float, pending: T) -> None:
        self.started = time.monotonic()
        self.until = self.started + wait_for
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.result: T = pending

    @property
    def done(self) -> bool:
        """Whether :meth:`finish` has run."""
        return self._done.is_set()

    def finish(self, result: T) -> None:
        """Publish ``result`` and wake every waiting thread and task."""
        with self._lock:
            self.result = result
            self._done.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop is closed; nobody is waiting there any more
                pass

    def wait(self) -> None:
        """Block this thread until the result is in, or ``until`` passed."""
        self._done.wait(max(0.0, self.until - time.monotonic()))

    async def await_(self) -> None:
        """Wait without blocking the event loop, until the result is in or ``until`` passed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._done.is_set():
                return
            self._waiters.append((loop, future))
        try:
            await asyncio.wait_for(future, max(0.0, self.until - time.monotonic()))
        except asyncio.TimeoutError:
            pass


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
