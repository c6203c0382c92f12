"""OAuth JWT access tokens through Starlette: our middleware against PyJWT with PyJWKClient.

Four apps with the same trivial endpoint, called in-process at the ASGI level, the tokens
minted by the test kit's :class:`~wacht_auth.testing.OAuthServer` (RS256-2048 with a ``kid``,
as Wacht's OAuth server signs them) and its JWK Set served on loopback:

- no auth: the endpoint answers ``ok``;
- ours: ``WachtMiddleware(accept=("oauth_token",), oauth_issuers=[...])`` and
  ``@require_auth``, the endpoint answers the consenting user's id; once with the default
  verified-token cache and a repeated token, once with the cache off and distinct tokens;
- PyJWT: a hand-written pure ASGI middleware doing what Wacht's docs show for resource
  servers: ``PyJWKClient`` picks the key by ``kid`` (its JWK Set fetched and cached before
  timing), ``jwt.decode`` checks it, ``token_use`` must be ``access_token``.
"""

from __future__ import annotations

from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from wacht_auth.integrations.asgi import WachtMiddleware, require_auth
from wacht_auth.testing import OAuthServer
from wacht_auth.verifier import Verifier

from ._harness import Plan, Report, measure
from ._web import AsgiDriver, Fixture, expect, framework_report
from .asgi import REPEATED_TARGET, PyJWTMiddleware, plain, pyjwt_endpoint
from .core import mint_oauth_pool, tamper

__all__ = ["bench"]

USER = "100000"  # mint_oauth_pool's first user


class PyJWKCheck:
    """Bearer header → the consenting user, with PyJWT's ``PyJWKClient`` and ``jwt.decode``."""

    def __init__(self, server: OAuthServer) -> None:
        self.client = jwt.PyJWKClient(server.jwks_url, cache_keys=True)
        self.issuer = server.url
        self.options: Any = {"require": ["exp", "iat", "sub"], "verify_aud": False}

    def user_id(self, authorization: str | None) -> str | None:
        """Verify the bearer token; ``None`` on any failure (answered 401)."""
        if not authorization or authorization[:7].lower() != "bearer ":
            return None
        token = authorization[7:].strip()
        try:
            key = self.client.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token, key.key, algorithms=["RS256"], issuer=self.issuer, options=self.options
            )
        except jwt.PyJWTError:
            return None
        sub = claims.get("sub")
        if claims.get("token_use") != "access_token" or not isinstance(sub, str) or not sub:
            return None
        return sub


@require_auth
async def protected(request: Request) -> Response:
    return PlainTextResponse(request.state.wacht.user_id)


def _app(endpoint: Any) -> Starlette:
    return Starlette(routes=[Route("/", endpoint)])


def bench(fixture: Fixture, plan: Plan) -> Report:
    """Measure the Starlette table for OAuth JWT access tokens."""
    server = OAuthServer().start()
    try:
        return _bench(fixture, server, plan)
    finally:
        server.stop()


def _bench(fixture: Fixture, server: OAuthServer, plan: Plan) -> Report:
    pool = mint_oauth_pool(server, len(fixture.pool))
    options: Any = {"accept": ("oauth_token",), "oauth_issuers": [server.url]}
    issuer = fixture.issuer
    plain_app = _app(plain)
    repeated_app = WachtMiddleware(_app(protected), verifier=Verifier(issuer.config()), **options)
    fresh_app = WachtMiddleware(
        _app(protected), verifier=Verifier(issuer.config(token_cache_size=0)), **options
    )
    pyjwt_app = PyJWTMiddleware(_app(pyjwt_endpoint), PyJWKCheck(server))  # type: ignore[arg-type]
    driver = AsgiDriver()
    try:
        expect("no auth", driver.call(plain_app, pool[0]), 200, b"ok")
        for name, app in (("ours", repeated_app), ("ours", fresh_app), ("PyJWT", pyjwt_app)):
            expect(name, driver.call(app, pool[0]), 200, USER.encode())
            expect(name, driver.call(app, None), 401)
            expect(name, driver.call(app, tamper(pool[0])), 401)
            expect(name, driver.call(app, server.id_token(USER)), 401)
        repeated = [pool[0]] * len(pool)
        measured = measure(
            [
                ("plain", driver.rounds(plain_app, repeated)),
                ("repeated", driver.rounds(repeated_app, repeated)),
                ("fresh", driver.rounds(fresh_app, pool)),
                ("pyjwt", driver.rounds(pyjwt_app, pool)),
            ],
            plan.rounds,
        )
    finally:
        driver.close()
    report = framework_report(
        "Starlette, OAuth JWT access tokens (RS256-2048, kid)", plan, measured, REPEATED_TARGET
    )
    report.rows = [
        (label.replace("PyJWT middleware", "PyJWT PyJWKClient middleware"), *rest)
        for label, *rest in report.rows
    ]
    return report
