"""A fake of Wacht's gateway on a loopback port (``wacht_auth.testing.FakeGateway``)."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeGateway"]

_PRINCIPALS = {"api_key": "api_key", "oauth_token": "oauth_access_token"}


@dataclass
class _Known:
    kind: str
    identity: dict[str, Any]
    permissions: tuple[str, ...]
    metadata: dict[str, Any]
    limit: int = 100
    status: int | None = None  # answer checks of this credential with this HTTP status
    used: int = 0
    retry_after: int | None = None  # set: the next checks answer rate_limited


@dataclass
class _Faults:
    status: int | None = None  # answer every check with this status
    delay: float = 0.0  # seconds to wait before answering
    body: bytes | None = None  # answer this raw body (with status 200 unless status is set)
    connections: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: tests count the connections clients open

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
        # holds the body until the client's delayed ACK (~40 ms per keep-alive request).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.gateway._lock:
            self.server.gateway._faults.connections += 1

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        status, body, headers = self.server.gateway._answer(self.path, raw)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the gateway's counters, not its log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-answer (a test's timeout) is not an error here."""


class FakeGateway:
    """Wacht's gateway on ``127.0.0.1``: ``POST /v1/authz/check`` for the API keys and OAuth
    access tokens added to it, with the answers Wacht's gateway gives (identity, permissions,
    scopes, rate-limit state and headers; see ``docs/credentials.md``). For tests of routes that
    accept keys::

        with FakeGateway() as gateway:
            key = gateway.add_key(permissions=["invoices:read"], owner_user_id="42")
            config = issuer.config(gateway_url=gateway.url)

    ``rate_limit(key)``, ``fail(503)``, ``delay(seconds)`` and ``answer_raw(body)`` change
    what it answers; ``checks`` and ``connections`` tell what clients sent and how many
    connections they opened.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, _Known] = {}
        self._faults = _Faults()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeGateway:
        """Start serving (a fresh loopback port)."""
        if self._server is None:
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="wacht-auth-fake-gateway",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> FakeGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The gateway's origin, for ``Config(gateway_url=...)``."""
        if self._server is None:
            raise RuntimeError("the fake gateway is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_key(
        self,
        value: str | None = None,
        *,
        kind: str = "api_key",
        key_id: str | None = None,
        owner_user_id: str | None = None,
        organization_id: str | None = None,
        workspace_id: str | None = None,
        permissions: Iterable[str] = (),
        scopes: Iterable[str] = (),
        app_slug: str = "test-app",
        key_name: str = "test key",
        deployment_id: str = "1",
        limit: int = 100,
        status: int | None = None,
        client_id: str | None = None,
        resource: str | None = None,
        session_id: str | None = None,
    ) -> str:
        """Register a credential (``kind`` ``"api_key"`` or ``"oauth_token"``); returns its
        value (a fresh random one in Wacht's format unless given: ``wk_test_`` or ``oat_``
        plus 43 base64url characters). ``deployment_id`` is the deployment the gateway says
        it belongs to: give another one to test that an app refuses foreign keys. With
        ``status``, checks of this one answer that HTTP status (a gateway failing for it).
        ``client_id``, ``resource`` and ``session_id`` describe an OAuth grant (metadata)."""
        if kind not in _PRINCIPALS:
            raise ValueError(f"kind must be 'api_key' or 'oauth_token', got {kind!r}")
        prefix = "oat_" if kind == "oauth_token" else "wk_test_"
        value = value or f"{prefix}{secrets.token_urlsafe(32)}"
        identity: dict[str, Any] = {
            "key_id": key_id or f"key_{len(self._known) + 1}",
            # Wacht sends the deployment id as a number.
            "deployment_id": int(deployment_id) if deployment_id.isdigit() else deployment_id,
            "app_slug": app_slug,
            "key_name": key_name,
        }
        for name, item in (
            ("owner_user_id", owner_user_id),
            ("organization_id", organization_id),
            ("workspace_id", workspace_id),
        ):
            if item is not None:
                identity[name] = item
        metadata: dict[str, Any] = {"principal_type": _PRINCIPALS[kind], "scopes": list(scopes)}
        for name, item in (
            ("client_id", client_id),
            ("resource", resource),
            ("session_id", session_id),
        ):
            if item is not None:
                metadata[name] = item
        with self._lock:
            known = _Known(kind, identity, tuple(permissions), metadata, limit, status)
            self._known[value] = known
        return value

    def add_oauth_token(
        self,
        value: str | None = None,
        *,
        user_id: str = "1",
        client_id: str = "oc_test",
        scopes: Iterable[str] = (),
        resource: str | None = None,
        **options: Any,
    ) -> str:
        """:meth:`add_key` for an opaque OAuth access token (``oat_…``) that ``user_id``
        granted to ``client_id``; ``resource`` is the granted resource
        (``urn:wacht:organization:<id>`` …)."""
        owner = options.pop("owner_user_id", None) or user_id  # add_key's name works too
        return self.add_key(
            value,
            kind="oauth_token",
            owner_user_id=owner,
            client_id=client_id,
            scopes=scopes,
            resource=resource,
            **options,
        )

    def rate_limit(self, value: str, retry_after: int = 7) -> None:
        """From now on, checks of ``value`` answer ``allowed: false``, ``rate_limited``."""
        with self._lock:
            self._known[value].retry_after = retry_after

    def fail(self, status: int | None = 503) -> None:
        """Answer every check with HTTP ``status`` (None: answer normally again)."""
        with self._lock:
            self._faults.status = status

    def delay(self, seconds: float) -> None:
        """Wait ``seconds`` before each answer (a gateway that hangs)."""
        with self._lock:
            self._faults.delay = seconds

    def answer_raw(self, body: bytes | None) -> None:
        """Answer every check with this raw body (None: answer normally again)."""
        with self._lock:
            self._faults.body = body

    @property
    def checks(self) -> tuple[dict[str, Any], ...]:
        """The JSON bodies of the checks received, oldest first."""
        with self._lock:
            return tuple(self._faults.checks)

    @property
    def connections(self) -> int:
        """How many TCP connections clients opened."""
        with self._lock:
            return self._faults.connections

    def _answer(self, path: str, raw: bytes) -> tuple[int, bytes, Mapping[str, str]]:
        with self._lock:
            faults = self._faults
            delay, status, body = faults.delay, faults.status, faults.body
        if delay:
            time.sleep(delay)
        if path != "/v1/authz/check":
            return 404, b'{"errors":[{"message":"not found","code":"not_found"}]}', {}
        try:
            request = json.loads(raw)
            principal = request["principal"]
        except (ValueError, KeyError, TypeError):
            return 400, b'{"errors":[{"message":"bad request","code":"bad_request"}]}', {}
        with self._lock:
            faults.checks.append(request)
        with self._lock:
            own = self._known.get(str(principal.get("value")))
        status = status or (own.status if own is not None else None)
        if status is not None:
            return status, body or b'{"errors":[{"message":"failed","code":"internal"}]}', {}
        if body is not None:
            return 200, body, {}
        return 200, json.dumps(self._judge(principal, request)).encode(), {}

    def _judge(self, principal: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = {"request_id": secrets.token_hex(8), "permissions": []}
        with self._lock:
            known = self._known.get(str(principal.get("value")))
            if known is None or _PRINCIPALS[known.kind] != principal.get("type"):
                return {**answer, "allowed": False, "rate_limits": [], "headers": {}}
            known.used += 1
            remaining = max(0, known.limit - known.used)
            retry_after = known.retry_after
        headers = {"X-RateLimit-Limit": str(known.limit), "X-RateLimit-Remaining": str(remaining)}
        answer.update(
            identity=known.identity,
            permissions=list(known.permissions),
            metadata=known.metadata,
            rate_limits=[{"rule": "default", "remaining": remaining, "limit": known.limit}],
            headers=headers,
        )
        if retry_after is not None:
            return {
                **answer,
                "allowed": False,
                "reason": "rate_limited",
                "retry_after": retry_after,
            }
        needed = request.get("required_permissions") or []
        if any(p not in known.permissions for p in needed):
            return {**answer, "allowed": False, "reason": "permission_denied"}
        return {**answer, "allowed": True}
