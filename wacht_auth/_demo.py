"""The end-to-end demo: a local issuer, a small app on uvicorn, real HTTP requests.

``wacht-auth demo`` (and ``make demo``) starts :class:`~wacht_auth.testing.Issuer` on a loopback
port, serves the demo app (:func:`create_app`, shipped in the package, so the demo runs from a
``pip install 'wacht-auth[demo]'``; or any ``module:factory`` given with ``--app``) with uvicorn
on another, sends a request per case and reports each status and error code. Every case passes
only when the answer is the expected one.

Importing this module imports no web framework: Starlette and uvicorn (the ``demo`` extra) are
imported when the demo runs, and :func:`missing_dependency` names what is missing.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import Config
from .testing import Issuer

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

__all__ = [
    "DEFAULT_APP",
    "DEMO_REQUIRES",
    "AppNotFoundError",
    "CaseResult",
    "DemoStartError",
    "create_app",
    "load_factory",
    "missing_dependency",
    "run_cases",
]

#: The app the demo serves unless told otherwise: this module's :func:`create_app`.
DEFAULT_APP = "wacht_auth._demo:create_app"
#: The modules the demo needs, all installed by ``pip install 'wacht-auth[demo]'``.
DEMO_REQUIRES: tuple[str, ...] = ("uvicorn", "starlette")
_STARTUP_SECONDS = 15.0


class AppNotFoundError(Exception):
    """The ``--app`` spec names no importable ``module:factory``."""


class DemoStartError(Exception):
    """The demo app did not start serving in time."""


def missing_dependency(app_spec: str = DEFAULT_APP) -> str | None:
    """The first module of :data:`DEMO_REQUIRES` that is not installed, or ``None``.

    A custom ``app_spec`` needs only uvicorn: its own imports are its business.
    """
    needed = DEMO_REQUIRES if app_spec == DEFAULT_APP else DEMO_REQUIRES[:1]
    for name in needed:
        if importlib.util.find_spec(name) is None:
            return name
    return None


def create_app(config: Config) -> Starlette:
    """The demo app: Starlette with :class:`~wacht_auth.integrations.asgi.WachtMiddleware`.

    Routes: ``/public`` (anyone), ``/protected`` (signed in), ``/admin`` (permission
    ``invoices:write``), ``/org`` (an active organization). Each answers the caller's ids.
    """
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from .integrations import asgi as wacht
    from .verifier import Verifier

    def who(request: Request) -> JSONResponse:
        auth = request.state.wacht
        return JSONResponse({"user_id": auth.user_id, "organization_id": auth.organization_id})

    async def public(request: Request) -> JSONResponse:
        return who(request)  # user_id is None when signed out

    protected = wacht.require_auth(public)
    admin = wacht.require_permission("invoices:write")(public)
    org = wacht.require_organization()(public)
    routes = [
        Route("/public", public),
        Route("/protected", protected),
        Route("/admin", admin),
        Route("/org", org),
    ]
    verifier = Verifier(config)
    middleware = [Middleware(wacht.WachtMiddleware, verifier=verifier, prefetch=True)]
    return Starlette(routes=routes, middleware=middleware)


def load_factory(spec: str) -> Callable[[Config], Any]:
    """Import ``module:factory`` (the current directory is searched too, for a checkout).

    Raises:
        AppNotFoundError: the module, the attribute or a callable is missing.
    """
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # an app of the user's, e.g. examples/ of a checkout
    try:
        module = importlib.import_module(module_name)
        factory = getattr(module, attr or "create_app")
    except (ImportError, AttributeError, ValueError) as error:
        raise AppNotFoundError(f"cannot load {spec!r}: {error}") from error
    if not callable(factory):
        raise AppNotFoundError(f"{spec} is not callable")
    return factory  # type: ignore[no-any-return]


@dataclass(frozen=True)
class CaseResult:
    """One demo request and what it got.

    Attributes:
        name: what the case shows.
        path: the path requested with ``GET``.
        status: the answer's status.
        code: the answer's error ``code``, ``None`` for a success.
        expected_status: the status the case expects.
        expected_code: the code the case expects.
        body: the answer's body.
    """

    name: str
    path: str
    status: int
    code: str | None
    expected_status: int
    expected_code: str | None
    body: str

    @property
    def ok(self) -> bool:
        """Whether the answer is the expected one."""
        return self.status == self.expected_status and self.code == self.expected_code

    def to_dict(self) -> dict[str, Any]:
        """The case as JSON-ready data (the body as sent)."""
        return {
            "name": self.name,
            "path": self.path,
            "status": self.status,
            "code": self.code,
            "expected_status": self.expected_status,
            "expected_code": self.expected_code,
            "ok": self.ok,
            "body": self.body,
        }


def _get(url: str, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def _code(body: str) -> str | None:
    try:
        code = json.loads(body).get("error", {}).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) else None


def _cases(issuer: Issuer) -> list[tuple[str, str, str | None, int, str | None]]:
    rs256 = issuer.key_for("RS256")
    member = issuer.token(user_id="2741", organization_id="77")
    return [
        ("valid ES256 token", "/protected", issuer.token(user_id="2741"), 200, None),
        ("valid RS256 token", "/protected", issuer.token(user_id="2741", key=rs256), 200, None),
        ("no token", "/protected", None, 401, "token_missing"),
        ("expired token", "/protected", issuer.expired_token(), 401, "token_expired"),
        ("forged token", "/protected", issuer.forged_token(), 401, "signature_invalid"),
        ("token lacking a permission", "/admin", issuer.token(), 403, "permission_denied"),
        (
            "token holding the permission",
            "/admin",
            issuer.token(permissions=["invoices:write"]),
            200,
            None,
        ),
        ("no active organization", "/org", issuer.token(), 403, "organization_required"),
        ("active organization", "/org", member, 200, None),
    ]


def run_cases(
    app_spec: str = DEFAULT_APP,
    on_start: Callable[[str, str], None] | None = None,
    on_case: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Serve the app of ``app_spec`` on uvicorn against a local issuer; run every case.

    ``on_start(issuer_url, app_url)`` is called once serving, ``on_case`` after each request.
    Needs uvicorn (see :func:`missing_dependency`).

    Raises:
        AppNotFoundError: ``app_spec`` cannot be loaded.
        DemoStartError: the app did not start in time.
    """
    import uvicorn

    factory = load_factory(app_spec)
    results: list[CaseResult] = []
    with Issuer(algorithms=("ES256", "RS256")) as issuer:
        app = factory(issuer.config())
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True
        )
        thread.start()
        try:
            deadline = time.monotonic() + _STARTUP_SECONDS
            while not server.started and thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not server.started:
                raise DemoStartError(f"the demo app {app_spec} did not start in time")
            base = f"http://127.0.0.1:{port}"
            if on_start is not None:
                on_start(issuer.url, base)
            for name, path, token, want_status, want_code in _cases(issuer):
                status, body = _get(base + path, token)
                result = CaseResult(name, path, status, _code(body), want_status, want_code, body)
                results.append(result)
                if on_case is not None:
                    on_case(result)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
    return results
