"""The end-to-end demo: a local issuer, a small app on uvicorn, real HTTP requests.

``wacht-auth demo`` (and ``make demo``) starts :class:`~wacht_auth.testing.FrontendAPI` (an
issuer that also plays the frontend API: session exchange and sign-in page) on a loopback port,
serves the demo app (:func:`create_app`, shipped in the package, so the demo runs from a
``pip install 'wacht-auth[demo]'``; or any ``module:factory`` given with ``--app``) with uvicorn
on another, sends a request per case and reports each status and error code. Every case passes
only when the answer is the expected one. The built-in app also shows a server-rendered page:
an anonymous visit redirected to the sign-in page, and a visit with a ``__session`` cookie
signed in by the exchange, which sets ``__auth_<scope>``.

Importing this module imports no web framework: Starlette and uvicorn (the ``demo`` extra) are
imported when the demo runs, and :func:`missing_dependency` names what is missing.
"""

from __future__ import annotations

import asyncio
import html
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .config import Config
from .testing import FrontendAPI

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse

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
    ``/page`` is a server-rendered page (``require_auth(redirect=True)``): visitors who are not
    signed in are sent to the sign-in page; it names the cookies its answer sets.
    """
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    from .integrations import asgi as wacht
    from .verifier import Verifier

    def who(request: Request) -> JSONResponse:
        auth = request.state.wacht
        return JSONResponse({"user_id": auth.user_id, "organization_id": auth.organization_id})

    async def public(request: Request) -> JSONResponse:
        return who(request)  # user_id is None when signed out

    @wacht.require_auth(redirect=True)
    async def page(request: Request) -> HTMLResponse:
        auth = request.state.wacht
        cookies = [v.split("=", 1)[0] for k, v in auth.response_headers if k == "Set-Cookie"]
        sets = f"<p>this answer sets {', '.join(cookies)}</p>" if cookies else ""
        return HTMLResponse(f"<p>signed in as {html.escape(auth.user_id)}</p>{sets}")

    protected = wacht.require_auth(public)
    admin = wacht.require_permission("invoices:write")(public)
    org = wacht.require_organization()(public)
    routes = [
        Route("/public", public),
        Route("/protected", protected),
        Route("/admin", admin),
        Route("/org", org),
        Route("/page", page),
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
        body: the answer's body; for a redirect, which has none, ``Location: <url>``.
        location: the answer's ``Location`` header, if any.
        cookies_set: the names of the cookies the answer sets (``Set-Cookie``).
        expected_location: what ``location`` must be (a page's sign-in redirect), if anything.
        expected_cookie: a cookie the answer must set (a page signed in from ``__session``
            sets ``__auth_<scope>``), by name prefix, if any.
    """

    name: str
    path: str
    status: int
    code: str | None
    expected_status: int
    expected_code: str | None
    body: str
    location: str | None = None
    cookies_set: tuple[str, ...] = ()
    expected_location: str | None = None
    expected_cookie: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the answer is the expected one."""
        return (
            self.status == self.expected_status
            and self.code == self.expected_code
            and (self.expected_location is None or self.location == self.expected_location)
            and (
                self.expected_cookie is None
                or any(name.startswith(self.expected_cookie) for name in self.cookies_set)
            )
        )

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
            "location": self.location,
            "cookies_set": list(self.cookies_set),
        }


@dataclass(frozen=True)
class _Case:
    """A request to send and the answer it must get."""

    name: str
    path: str
    status: int
    code: str | None = None
    token: str | None = None
    cookies: Mapping[str, str] | None = None
    location: str | None = None
    cookie: str | None = None


class _Answer:
    """Status, body and the headers a case looks at."""

    def __init__(self, status: int, body: str, headers: Any) -> None:
        self.status, self.body = status, body
        self.location: str | None = headers.get("Location")
        self.cookies = tuple(
            value.split("=", 1)[0].strip() for value in headers.get_all("Set-Cookie") or ()
        )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a page's 302 is the answer to show, not a hop to follow


_OPENER = urllib.request.build_opener(_NoRedirects)


def _get(url: str, token: str | None, cookies: Mapping[str, str] | None = None) -> _Answer:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if cookies:
        request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))
    try:
        with _OPENER.open(request, timeout=5) as response:
            return _Answer(response.status, response.read().decode(), response.headers)
    except urllib.error.HTTPError as error:
        with error:
            return _Answer(error.code, error.read().decode(), error.headers)


def _code(body: str) -> str | None:
    try:
        code = json.loads(body).get("error", {}).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) else None


def _cases(issuer: FrontendAPI, base: str, *, pages: bool) -> list[_Case]:
    rs256 = issuer.key_for("RS256")
    member = issuer.token(user_id="2741", organization_id="77")
    cases = [
        _Case("valid ES256 token", "/protected", 200, token=issuer.token(user_id="2741")),
        _Case(
            "valid RS256 token", "/protected", 200, token=issuer.token(user_id="2741", key=rs256)
        ),
        _Case("no token", "/protected", 401, "token_missing"),
        _Case("expired token", "/protected", 401, "token_expired", token=issuer.expired_token()),
        _Case("forged token", "/protected", 401, "signature_invalid", token=issuer.forged_token()),
        _Case(
            "token lacking a permission", "/admin", 403, "permission_denied", token=issuer.token()
        ),
        _Case(
            "token holding the permission",
            "/admin",
            200,
            token=issuer.token(permissions=["invoices:write"]),
        ),
        _Case("no active organization", "/org", 403, "organization_required", token=issuer.token()),
        _Case("active organization", "/org", 200, token=member),
    ]
    if pages:  # the built-in app's server-rendered page (docs/pages.md)
        back = quote(base + "/page", safe="")
        cases += [
            _Case(
                "page, not signed in",
                "/page",
                302,
                location=f"{issuer.sign_in_url}?redirect_uri={back}",
            ),
            _Case(
                "page, __session cookie",
                "/page",
                200,
                cookies={"__session": issuer.sign_in("2741")},
                cookie="__auth_",
            ),
        ]
    return cases


def run_cases(
    app_spec: str = DEFAULT_APP,
    on_start: Callable[[str, str], None] | None = None,
    on_case: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Serve the app of ``app_spec`` on uvicorn against a local frontend API; run every case
    (the page cases only for the built-in app, which has the page).

    ``on_start(issuer_url, app_url)`` is called once serving, ``on_case`` after each request.
    Needs uvicorn (see :func:`missing_dependency`).

    Raises:
        AppNotFoundError: ``app_spec`` cannot be loaded.
        DemoStartError: the app did not start in time.
    """
    import uvicorn

    factory = load_factory(app_spec)
    results: list[CaseResult] = []
    issuer = FrontendAPI(algorithms=("ES256", "RS256"), sign_in_user="2741")
    with issuer:  # started on entry, stopped on exit
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
            for case in _cases(issuer, base, pages=app_spec == DEFAULT_APP):
                answer = _get(base + case.path, case.token, case.cookies)
                body = answer.body
                if not body and answer.location:
                    body = f"Location: {answer.location}"
                result = CaseResult(
                    case.name,
                    case.path,
                    answer.status,
                    _code(answer.body),
                    case.status,
                    case.code,
                    body,
                    location=answer.location,
                    cookies_set=answer.cookies,
                    expected_location=case.location,
                    expected_cookie=case.cookie,
                )
                results.append(result)
                if on_case is not None:
                    on_case(result)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
    return results
