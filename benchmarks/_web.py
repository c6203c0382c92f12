"""What the framework benchmarks share: tokens, the PyJWT competitor, raw ASGI/WSGI drivers.

Requests are made in-process at the raw protocol level: the benchmark builds each ASGI
``scope`` or WSGI ``environ`` itself and calls the application, as a server would, so the
figures hold the framework, the middleware and the endpoint and nothing else (a test client
adds more cost than a trivial endpoint has, and would hide the middleware's share).
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jwt

from wacht_auth.keys import KeyIndex
from wacht_auth.testing import Issuer

from ._harness import Measured, Plan, Report, Target
from .core import TOKEN_LIFETIME, mint_pool

__all__ = [
    "USER_ID",
    "AsgiDriver",
    "Fixture",
    "PyJWTCheck",
    "framework_report",
    "wsgi_driver",
]

#: The user of the repeated token; fresh tokens carry other decimal ids.
USER_ID = "42"


@dataclass
class Fixture:
    """One RS256-2048 issuer, its repeated token and a pool of distinct fresh tokens."""

    issuer: Issuer
    token: str
    pool: list[str]

    @classmethod
    def create(cls, plan: Plan) -> Fixture:
        """Start an RS256 issuer (kid-less tokens) and mint ``plan.ops`` fresh tokens."""
        issuer = Issuer(algorithms=("RS256",)).start()
        token = issuer.token(user_id=USER_ID, session_id="7", lifetime=TOKEN_LIFETIME)
        return cls(issuer, token, mint_pool(issuer, plan.ops))

    def stop(self) -> None:
        """Stop the issuer's key server."""
        self.issuer.stop()


class PyJWTCheck:
    """The job a hand-written PyJWT middleware does: bearer header → verified claims.

    The public key is loaded once, at start-up (no JWKS client on the request path), and the
    same claims are checked as ours: ``alg`` allow-list, signature, ``exp``, ``iat``, ``iss``,
    a ``sub``. Returns the user id, or ``None`` when the request must be answered 401.
    """

    def __init__(self, issuer: Issuer) -> None:
        index, _ = KeyIndex.from_jwks(issuer.jwks())
        self.key: Any = index.keys[0].public_key
        self.issuer = issuer.url
        self.options: Any = {"require": ["exp", "iat", "sub"]}

    def user_id(self, authorization: str | None) -> str | None:
        """Verify the ``Authorization`` header's bearer token; ``None`` on any failure."""
        if not authorization or authorization[:7].lower() != "bearer ":
            return None
        try:
            claims = jwt.decode(
                authorization[7:].strip(),
                self.key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options=self.options,
            )
        except jwt.InvalidTokenError:
            return None
        sub = claims.get("sub")
        return sub if isinstance(sub, str) and sub else None


# --- ASGI ----------------------------------------------------------------------------------


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


class _Capture:
    """An ASGI ``send`` keeping the status and body of the last response."""

    def __init__(self) -> None:
        self.status = 0
        self.body = b""

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.body = b""
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


async def _discard(message: dict[str, Any]) -> None:
    return None


def _scope(authorization: bytes | None) -> dict[str, Any]:
    headers = [(b"host", b"testserver"), (b"user-agent", b"bench")]
    if authorization is not None:
        headers.append((b"authorization", authorization))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }


class AsgiDriver:
    """Calls ASGI apps in-process on one event loop; a new ``scope`` for every request."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        """Close the event loop."""
        self.loop.close()

    def call(self, app: Any, token: str | None) -> tuple[int, bytes]:
        """One request; returns the status and body (for the set-up checks)."""
        capture = _Capture()
        auth = None if token is None else b"Bearer " + token.encode("ascii")
        self.loop.run_until_complete(app(_scope(auth), _receive, capture))
        return capture.status, capture.body

    def rounds(self, app: Any, tokens: Iterable[str]) -> Callable[[], int]:
        """A round: one request per token, in order."""
        headers = [b"Bearer " + t.encode("ascii") for t in tokens]

        async def go() -> None:
            for auth in headers:
                await app(_scope(auth), _receive, _discard)

        def run() -> int:
            self.loop.run_until_complete(go())
            return len(headers)

        return run


# --- WSGI ----------------------------------------------------------------------------------


def _environ(authorization: str | None) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "testserver",
        "HTTP_USER_AGENT": "bench",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    return environ


class _Status:
    def __init__(self) -> None:
        self.status = ""

    def __call__(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        self.status = status
        return None


def _start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
    return None


def wsgi_call(app: Any, token: str | None, path: str = "/") -> tuple[int, bytes]:
    """One WSGI request; returns the status and body (for the set-up checks)."""
    environ = _environ(None if token is None else "Bearer " + token)
    environ["PATH_INFO"] = path
    start = _Status()
    result = app(environ, start)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return int(start.status.split(" ", 1)[0]), body


def wsgi_driver(app: Any, tokens: Iterable[str], path: str = "/") -> Callable[[], int]:
    """A round: one WSGI request per token, body consumed and closed as a server would."""
    headers = ["Bearer " + t for t in tokens]

    def run() -> int:
        for auth in headers:
            environ = _environ(auth)
            environ["PATH_INFO"] = path
            result = app(environ, _start_response)
            for _ in result:
                pass
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return len(headers)

    return run


# --- checks and the report -----------------------------------------------------------------


def expect(name: str, got: tuple[int, bytes], status: int, body: bytes | None = None) -> None:
    """Refuse to time a set-up that does not do the job (a benchmark of a no-op)."""
    if got[0] != status or (body is not None and got[1] != body):
        raise RuntimeError(
            f"{name}: expected {status} {body!r}, got {got[0]} {got[1][:200]!r}; "
            "the benchmark set-up is wrong"
        )


def framework_report(
    name: str,
    plan: Plan,
    measured: list[Measured],
    repeated_target: float,
) -> Report:
    """Requests/second per case, ratios, and the repeated-token guard. The
    fresh-token ratio against PyJWT is shown, not judged: the framework's own cost bounds it
    (docs/performance.md)."""
    m = {r.name: r for r in measured}
    plain, repeated, fresh, pyjwt = m["plain"], m["repeated"], m["fresh"], m["pyjwt"]

    def row(label: str, r: Measured, note: str = "") -> tuple[str, str, str]:
        figures = f"{r.us:8.1f} µs/req   IQR {r.spread:4.1f}%"
        return (label, f"{r.per_second:8.0f} req/s", f"{figures}  {note}".rstrip())

    report = Report(
        f"{name}: trivial endpoint, raw in-process calls, {plan.rounds} rounds x "
        f"{plan.ops} requests, median"
        "\n  (ratios: median of the per-round ratios; IQR: spread of the rounds)"
    )
    report.rows = [
        row("no auth", plain),
        row(
            "our middleware, repeated token (cache hit)",
            repeated,
            f"{repeated.us - plain.us:+.1f} µs vs no auth",
        ),
        row("our middleware, fresh RS256-2048 (cache off)", fresh),
        row("PyJWT middleware, fresh RS256-2048", pyjwt),
        ("fresh tokens vs PyJWT middleware", f"{pyjwt.ratio(fresh):8.2f}x", "(informative)"),
    ]
    report.targets = [
        Target("repeated token vs no auth", plain.ratio(repeated), repeated_target, True),
    ]
    return report
