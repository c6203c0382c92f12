"""Test doubles shared by the core tests: a settable clock, an event recorder, a request view
with a bearer, and a plain reference model of key selection (rule 5) that ``KeyIndex.select``
is checked against."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wacht_auth.errors import AlgorithmNotAllowedError, KeyNotFoundError
from wacht_auth.keys import Key


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


def select_keys(keys: Sequence[Key], alg: str, kid: str | None, limit: int = 4) -> list[Key]:
    """Rule 5 over a plain sequence (see :meth:`KeyIndex.select`, the fast path).

    Raises:
        KeyNotFoundError: two keys in ``keys`` share ``kid``.
        AlgorithmNotAllowedError: the kid's key declares another ``alg``.
    """
    if kid is None:
        return [k for k in keys if alg in k.algorithms][:limit]
    same = [k for k in keys if k.kid == kid]
    if len(same) > 1:
        raise KeyNotFoundError(f"the token kid {kid[:64]!r} is ambiguous: several keys use it")
    if same and alg not in same[0].algorithms and same[0].alg not in (None, alg):
        raise AlgorithmNotAllowedError(
            f"the token algorithm {alg} does not match its key's alg {same[0].alg}"
        )
    return [k for k in same if alg in k.algorithms]


@dataclass
class BearerRequest:
    """A :class:`~wacht_auth.auth.RequestView` for the core tests: a bearer (or none) on
    ``https://app.example``."""

    token: str | None
    method: str = "GET"
    path: str = "/invoices"
    headers: dict[str, str] = field(default_factory=dict)
    peer: str = "203.0.113.9"
    scheme: str = "https"

    def header(self, name: str) -> str | None:
        if name == "authorization" and self.token is not None:
            return f"Bearer {self.token}"
        return self.headers.get(name)

    def cookie(self, name: str) -> str | None:
        return None

    def host(self) -> str | None:
        return "app.example"

    def client_ip(self) -> str | None:
        return self.peer

    def query(self) -> str:
        return ""
