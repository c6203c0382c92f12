"""Flask with our extension, with nothing, and with a PyJWT ``before_request`` (issue 3).

Four Flask apps with the same trivial view, called in-process as WSGI callables:

- no auth: the view answers ``ok``;
- ours: ``Wacht(app)`` and ``@require_auth``, the view answers ``request.wacht.user_id``; once
  with the default verified-token cache and a repeated token, once with the cache off and a
  pool of distinct fresh RS256-2048 tokens;
- PyJWT: a ``before_request`` hook doing ``jwt.decode`` with a preloaded key, answering 401
  on failure and keeping the user id on ``g``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, jsonify, request

from wacht_auth.integrations.flask import Wacht, require_auth
from wacht_auth.verifier import Verifier

from ._harness import Plan, Report, measure
from ._web import USER_ID, Fixture, PyJWTCheck, expect, framework_report, wsgi_call, wsgi_driver
from .core import tamper

__all__ = ["bench"]

#: The guard (issue 8): repeated token ≥ 0.88x no auth.
REPEATED_TARGET = 0.88


def plain_app() -> Flask:
    app = Flask("bench_plain")

    @app.get("/")
    def index() -> str:
        return "ok"

    return app


def wacht_app(verifier: Verifier) -> Flask:
    app = Flask("bench_wacht")
    Wacht(app, verifier=verifier)

    @app.get("/")
    @require_auth
    def index() -> Any:
        return request.wacht.user_id  # type: ignore[attr-defined]

    return app


def pyjwt_app(check: PyJWTCheck) -> Flask:
    app = Flask("bench_pyjwt")

    @app.before_request
    def authenticate() -> Any:
        user_id = check.user_id(request.headers.get("Authorization"))
        if user_id is None:
            response = jsonify({"error": {"code": "unauthorized", "status": 401}})
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
            return response
        g.user_id = user_id
        return None

    @app.get("/")
    def index() -> Any:
        return g.user_id

    return app


def bench(fixture: Fixture, plan: Plan) -> Report:
    """Measure the Flask table."""
    issuer = fixture.issuer
    plain = plain_app()
    repeated_app = wacht_app(Verifier(issuer.config()))
    fresh_app = wacht_app(Verifier(issuer.config(token_cache_size=0)))
    pyjwt = pyjwt_app(PyJWTCheck(issuer))

    expect("no auth", wsgi_call(plain, fixture.token), 200, b"ok")
    for name, app in (("ours", repeated_app), ("ours", fresh_app), ("PyJWT", pyjwt)):
        expect(name, wsgi_call(app, fixture.token), 200, USER_ID.encode())
        expect(name, wsgi_call(app, None), 401)
        expect(name, wsgi_call(app, tamper(fixture.token)), 401)
    repeated = [fixture.token] * len(fixture.pool)
    measured = measure(
        [
            ("plain", wsgi_driver(plain, repeated)),
            ("repeated", wsgi_driver(repeated_app, repeated)),
            ("fresh", wsgi_driver(fresh_app, fixture.pool)),
            ("pyjwt", wsgi_driver(pyjwt, fixture.pool)),
        ],
        plan.rounds,
    )
    return framework_report("Flask (WSGI)", plan, measured, REPEATED_TARGET)
