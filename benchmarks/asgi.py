"""Starlette behind our pure ASGI middleware, no middleware, and a PyJWT middleware (issue 3).

Five apps with the same trivial endpoint, called in-process at the ASGI level:

- no auth: the endpoint answers ``ok``;
- ours: ``WachtMiddleware`` and ``@require_auth``, the endpoint answers the user id; once with
  the default verified-token cache and a repeated token, once with the cache off and a pool of
  distinct fresh RS256-2048 tokens;
- ours, protect_all: ``WachtMiddleware(..., protect_all=True)`` and an undecorated endpoint
  answering ``request.state.wacht.user_id``, with the default cache and the repeated token;
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

from wacht_auth.integrations.asgi import WachtMiddleware, require_auth
from wacht_auth.verifier import Verifier

from ._harness import Plan, Report, Target, measure
from ._web import USER_ID, AsgiDriver, Fixture, PyJWTCheck, expect, framework_report
from .core import tamper

__all__ = ["bench"]

#: The guards (issue 8): repeated token ≥ 0.65x no auth, 0.8x with protect_all.
REPEATED_TARGET = 0.65
PROTECT_ALL_TARGET = 0.8


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
        repeated = [fixture.token] * len(fixture.pool)
        measured = measure(
            [
                ("plain", driver.rounds(plain_app, repeated)),
                ("repeated", driver.rounds(repeated_app, repeated)),
                ("protect_all", driver.rounds(protect_all_app, repeated)),
                ("fresh", driver.rounds(fresh_app, fixture.pool)),
                ("pyjwt", driver.rounds(pyjwt_app, fixture.pool)),
            ],
            plan.rounds,
        )
    finally:
        driver.close()
    report = framework_report("Starlette (pure ASGI)", plan, measured, REPEATED_TARGET)
    # The second style of protection, reported beside @require_auth with its own guard.
    no_auth, protect_all = measured[0], measured[2]
    figures = f"{protect_all.us:8.1f} µs/req   IQR {protect_all.spread:4.1f}%"
    report.rows.insert(
        2,
        (
            "our middleware, protect_all, repeated token",
            f"{protect_all.per_second:8.0f} req/s",
            f"{figures}  {protect_all.us - no_auth.us:+.1f} µs vs no auth",
        ),
    )
    ratio = no_auth.ratio(protect_all)
    target = Target("protect_all, repeated token vs no auth", ratio, PROTECT_ALL_TARGET, True)
    report.targets.insert(1, target)
    return report
