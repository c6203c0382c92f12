"""A fake Wacht Backend API: a real ``ThreadingHTTPServer`` on 127.0.0.1, scriptable per test.

Script answers with :meth:`FakeBackend.reply` (a sequence per method and path; the last answer
repeats) or :meth:`FakeBackend.handle` (a function of the recorded request). Every request is
recorded with its method, path, query, headers and body, so tests assert on what really went
over the wire rather than on the client's internals.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    """One scripted answer.

    ``json`` is encoded as the body unless ``body`` is given; ``delay`` sleeps before
    answering (for timeouts); ``drop`` closes the connection without any answer.
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


class FakeBackend:
    """The fake server; use as a context manager (or :meth:`start` / :meth:`stop`)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._routes: dict[tuple[str, str], list[Reply] | Handler] = {}
        self._fallback: Handler | None = None
        self._lock = threading.Lock()
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                recorded = Recorded(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                reply = fake._answer(recorded)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    return
                payload = reply.body
                headers = dict(reply.headers)
                if payload is None:
                    payload = b"" if reply.json is None else json.dumps(reply.json).encode()
                    if reply.json is not None:
                        headers.setdefault("Content-Type", "application/json")
                self.send_response(reply.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (a timeout test)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeBackend:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeBackend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
