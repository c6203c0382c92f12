"""Starlette behind our pure ASGI middleware, no middleware, and a PyJWT middleware (issue 3).

Five apps with the same trivial endpoint, called in-process at the ASGI level:

- no auth: the endpoint answers ``ok``;
- ours: ``WachtMiddleware`` and ``@require_auth``, the endpoint answers the user id; once with
  the default verified-token cache and a repeated token, once with the cache off and a pool of
  distinct fresh RS256-2048 tokens;
- ours, protect_all: ``WachtMiddleware(..., protect_all=True)`` and an undecorated endpoint
  answering ``request.state.wacht.user_id``, with the default cache and the repeated token;
- state read, no middleware: a pure ASGI wrapper that only puts a ready state in the scope,
  and the endpoint reading ``request.state.wacht.user_id``: what Starlette itself costs for
  the read, against which our middleware's share is measured (with and without protect_all,
  the same endpoint);
- PyJWT: a hand-written pure ASGI middleware that reads the bearer header, runs
  ``jwt.decode`` with a preloaded key, answers 401 on failure and puts the user id in the
  scope, the endpoint answers it.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from wacht_auth.auth import AuthState
from wacht_auth.integrations.asgi import WachtMiddleware, require_auth
from wacht_auth.verifier import Verifier

from ._harness import Plan, Report, Target, measure
from ._web import USER_ID, AsgiDriver, Fixture, PyJWTCheck, expect, framework_report
from .core import tamper

__all__ = ["bench"]

#: The guards: repeated token ≥ 0.65x no auth; the middleware's share over a bare request
#: whose endpoint reads the same state at most 2 µs on a cache hit, with and without
#: protect_all (a ratio would measure Starlette's own request.state more than us).
REPEATED_TARGET = 0.65
SHARE_TARGET_US = 2.0


class StatePlanter:
    """The bare baseline: a pure ASGI wrapper that puts a ready state where ours does."""

    def __init__(self, app: Any, state: Any) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope["wacht"] = self.state
        states = scope.get("state")  # as ours does: no dict made when the server gave one
        if states is None:
            states = scope["state"] = {}
        states["wacht"] = self.state
        await self.app(scope, receive, send)


class PyJWTMiddleware:
    """What a developer writes by hand with PyJWT: a pure ASGI bearer-token check."""

    def __init__(self, app: Any, check: PyJWTCheck) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            authorization = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    authorization = value.decode("latin-1")
                    break
            user_id = self.check.user_id(authorization)
            if user_id is None:
                response = JSONResponse(
                    {"error": {"code": "unauthorized", "status": 401}},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="api"'},
                )
                await response(scope, receive, send)
                return
            scope["user_id"] = user_id
        await self.app(scope, receive, send)


async def plain(request: Request) -> Response:
    return PlainTextResponse("ok")


@require_auth
async def protected(request: Request) -> Response:
    return PlainTextResponse(request.state.wacht.user_id)


async def unguarded(request: Request) -> Response:
    return PlainTextResponse(request.state.wacht.user_id)


async def pyjwt_endpoint(request: Request) -> Response:
    return PlainTextResponse(request.scope["user_id"])


def _app(endpoint: Any) -> Starlette:
    return Starlette(routes=[Route("/", endpoint)])


def bench(fixture: Fixture, plan: Plan) -> Report:
    """Measure the Starlette table."""
    issuer = fixture.issuer
    plain_app = _app(plain)
    repeated_app = WachtMiddleware(_app(protected), verifier=Verifier(issuer.config()))
    protect_all_app = WachtMiddleware(
        _app(unguarded), verifier=Verifier(issuer.config()), protect_all=True
    )
    fresh_app = WachtMiddleware(
        _app(protected), verifier=Verifier(issuer.config(token_cache_size=0))
    )
    pyjwt_app = PyJWTMiddleware(_app(pyjwt_endpoint), PyJWTCheck(issuer))
    unguarded_app = WachtMiddleware(_app(unguarded), verifier=Verifier(issuer.config()))
    ready = AuthState(Verifier(issuer.config()).verify(fixture.token))
    bare_app = StatePlanter(_app(unguarded), ready)

    driver = AsgiDriver()
    try:
        expect("no auth", driver.call(plain_app, fixture.token), 200, b"ok")
        for name, app in (
            ("ours", repeated_app),
            ("ours, protect_all", protect_all_app),
            ("ours", fresh_app),
            ("PyJWT", pyjwt_app),
        ):
            expect(name, driver.call(app, fixture.token), 200, USER_ID.encode())
            expect(name, driver.call(app, None), 401)
            expect(name, driver.call(app, tamper(fixture.token)), 401)
        for name, app in (("ours, no guard", unguarded_app), ("bare", bare_app)):
            expect(name, driver.call(app, fixture.token), 200, USER_ID.encode())
        repeated = [fixture.token] * len(fixture.pool)
        measured = measure(
            [
                ("plain", driver.rounds(plain_app, repeated)),
                ("repeated", driver.rounds(repeated_app, repeated)),
                ("protect_all", driver.rounds(protect_all_app, repeated)),
                ("fresh", driver.rounds(fresh_app, fixture.pool)),
                ("pyjwt", driver.rounds(pyjwt_app, fixture.pool)),
                ("bare", driver.rounds(bare_app, repeated)),
                ("unguarded", driver.rounds(unguarded_app, repeated)),
            ],
            plan.rounds,
        )
    finally:
        driver.close()
    report = framework_report("Starlette (pure ASGI)", plan, measured[:5], REPEATED_TARGET)
    # The middleware's share: µs over a bare request whose endpoint reads the same state.
    bare, protect_all, unguarded_run = measured[5], measured[2], measured[6]
    for position, (label, case) in enumerate(
        (("no guard", unguarded_run), ("protect_all", protect_all)), start=2
    ):
        share = case.us - bare.us
        report.rows.insert(
            position,
            (
                f"our middleware, {label}, repeated token",
                f"{case.per_second:8.0f} req/s",
                f"{case.us:8.1f} µs/req   IQR {case.spread:4.1f}%  {share:+.2f} µs over bare",
            ),
        )
        target = Target(
            f"middleware share, {label}, cache hit", share, SHARE_TARGET_US, False, " µs"
        )
        report.targets.insert(position - 1, target)
    report.rows.insert(
        2,
        (
            "bare: state planted, endpoint reads it",
            f"{bare.per_second:8.0f} req/s",
            f"{bare.us:8.1f} µs/req   IQR {bare.spread:4.1f}%",
        ),
    )
    return report
