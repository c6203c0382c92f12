"""Test doubles shared by the core tests: a settable clock and an event recorder."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any


class FakeClock:
    """A settable POSIX clock, passed as ``Config.clock`` so tests move time."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Events:
    """Collects ``on_event`` calls (thread-safe)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, name: str, fields: Mapping[str, Any]) -> None:
        with self._lock:
            self.items.append((name, dict(fields)))

    def named(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [fields for n, fields in self.items if n == name]
