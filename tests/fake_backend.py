"""A fake Wacht Backend API: a real ``ThreadingHTTPServer`` on 127.0.0.1, scriptable per test.

Script answers with :meth:`FakeBackend.reply` (a sequence per method and path; the last answer
repeats) or :meth:`FakeBackend.handle` (a function of the recorded request). Every request is
recorded with its method, path, query, headers and body, so tests assert on what really went
over the wire rather than on the client's internals.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from wacht_auth.testing._server import _Answer, _Handler, _Loopback, _send


@dataclass
class Reply:
    """One scripted answer.

    ``json`` is encoded as the body unless ``body`` is given; ``delay`` waits before
    answering (for timeouts; at most 30 s, cut short by ``stop()``); ``drop`` closes the
    connection without any answer.
    """

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


@dataclass
class Recorded:
    """A request as the server received it. ``headers`` keys are lowercased."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


Handler = Callable[[Recorded], Reply]


class FakeBackend(_Loopback):
    """The fake server; use as a context manager (or :meth:`start` / :meth:`stop`).

    It is the test kit's loopback server (``wacht_auth.testing._server``) with answers scripted
    per method and literal path, delays and dropped connections: what the Backend API client's
    own tests need and ``wacht_auth.testing.FakeBackendAPI`` (routed by Wacht's operations)
    does not offer.
    """

    _kind = "fake backend"
    _protocol = "HTTP/1.1"
    _methods = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Recorded] = []
        self._routes: dict[tuple[str, str], list[Reply] | Handler] = {}
        self._fallback: Handler | None = None
        self._lock = threading.Lock()

    def _handle(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        recorded = Recorded(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=handler.read_body(),
        )
        reply = self._answer(recorded)
        self._pause(reply.delay)
        if reply.drop:
            handler.close_connection = True
            return
        headers = dict(reply.headers)
        payload = reply.body
        if payload is None and reply.json is not None:
            payload = json.dumps(reply.json).encode()
            headers.setdefault("Content-Type", "application/json")
        content_type = headers.pop("Content-Type", None)
        _send(handler, _Answer(reply.status, payload or b"", content_type, tuple(headers.items())))

    def reset(self) -> None:
        """Forget every route and recorded request (one server serves a whole test module)."""
        with self._lock:
            self._routes.clear()
            self.requests.clear()
            self._fallback = None

    def fallback(self, handler: Handler | None) -> None:
        """Answer every request no route matches with ``handler(request)``."""
        with self._lock:
            self._fallback = handler

    def reply(self, method: str, path: str, *replies: Reply) -> None:
        """Answer ``method path`` with ``replies`` in turn; the last one repeats."""
        with self._lock:
            self._routes[(method.upper(), path)] = list(replies)

    def handle(self, method: str, path: str, handler: Handler) -> None:
        """Answer ``method path`` with ``handler(request)``."""
        with self._lock:
            self._routes[(method.upper(), path)] = handler

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def _answer(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            route = self._routes.get((recorded.method, recorded.path), self._fallback)
            if route is None:
                return Reply(
                    404,
                    {"error": {"code": "not_found", "message": "no such route", "status": 404}},
                )
            if callable(route):
                handler = route
            else:
                return route.pop(0) if len(route) > 1 else route[0]
        return handler(recorded)


@contextmanager
def running() -> Iterator[FakeBackend]:
    """A started fake server, stopped on exit."""
    with FakeBackend() as fake:
        yield fake


def paged_users(total: int) -> Handler:
    """A ``GET /users`` handler that pages ``total`` users by ``limit``/``offset``."""
    users = [{"id": str(1000 + i), "first_name": f"User{i}", "custom": i} for i in range(total)]

    def handler(request: Recorded) -> Reply:
        limit = int(request.param("limit") or 10)
        offset = int(request.param("offset") or 0)
        data = users[offset : offset + limit]
        return Reply(
            200,
            {
                "data": data,
                "has_more": offset + len(data) < total,
                "limit": limit,
                "offset": offset,
                "total": total,
            },
        )

    return handler
