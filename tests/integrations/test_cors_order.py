"""CORS order (issue 12): our own 401s must reach the browser with CORS headers.

``install()`` puts WachtMiddleware inside any CORSMiddleware, whichever was added first; a
hand-built stack with CORSMiddleware inside ours is warned about when the stack is built.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import pytest

pytest.importorskip("fastapi")

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import JSONResponse
from starlette.routing import Route

from wacht_auth.integrations.asgi import WachtMiddleware
from wacht_auth.integrations.fastapi import install
from wacht_auth.testing import Issuer
from wacht_auth.verifier import Verifier

FRONT_END = "https://app.example"
CORS: dict[str, Any] = {"allow_origins": [FRONT_END], "allow_methods": ["*"]}
ORIGIN = {"Origin": FRONT_END}


def _fastapi(issuer: Issuer, *, cors_first: bool) -> FastAPI:
    app = FastAPI()
    if cors_first:
        app.add_middleware(CORSMiddleware, **CORS)
    install(app, Verifier(issuer.config()), protect_all=True, public_paths=["/health"])
    if not cors_first:
        app.add_middleware(CORSMiddleware, **CORS)

    @app.get("/me")
    async def me() -> dict[str, str]:
        return {"ok": "yes"}

    return app


def _assert_readable_refusals(client: TestClient) -> None:
    expired = client.get("/me", headers=ORIGIN)
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "token_missing"
    assert expired.headers["access-control-allow-origin"] == FRONT_END
    preflight = {**ORIGIN, "Access-Control-Request-Method": "GET"}
    assert client.options("/me", headers=preflight).status_code == 200


@pytest.mark.parametrize(
    "cors_first", [True, False], ids=["cors-then-install", "install-then-cors"]
)
def test_install_puts_wacht_inside_cors_either_way(wacht_issuer: Issuer, cors_first: bool) -> None:
    app = _fastapi(wacht_issuer, cors_first=cors_first)
    assert [entry.cls for entry in app.user_middleware] == [CORSMiddleware, WachtMiddleware]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the right order warns about nothing
        client = TestClient(app)
        _assert_readable_refusals(client)
    expired = client.get(
        "/me", headers={**ORIGIN, "Authorization": f"Bearer {wacht_issuer.expired_token()}"}
    )
    assert expired.json()["error"]["code"] == "token_expired"
    assert expired.headers["access-control-allow-origin"] == FRONT_END


def test_install_moves_only_past_cors(wacht_issuer: Issuer) -> None:
    app = FastAPI()
    app.add_middleware(GZipMiddleware)
    app.add_middleware(CORSMiddleware, **CORS)
    install(app, Verifier(wacht_issuer.config()), protect_all=True)
    order = [entry.cls for entry in app.user_middleware]
    assert order == [CORSMiddleware, WachtMiddleware, GZipMiddleware]


async def _me(request: Any) -> JSONResponse:
    return JSONResponse({"ok": True})


def _starlette(issuer: Issuer, *, wacht_outside: bool) -> Starlette:
    wacht = Middleware(WachtMiddleware, verifier=Verifier(issuer.config()), protect_all=True)
    cors = Middleware(CORSMiddleware, **CORS)
    # Starlette(middleware=[...]): the first entry is the outermost.
    stack = [wacht, cors] if wacht_outside else [cors, wacht]
    return Starlette(routes=[Route("/me", _me)], middleware=stack)


def test_hand_built_stack_with_cors_inside_warns(
    wacht_issuer: Issuer, caplog: pytest.LogCaptureFixture
) -> None:
    client = TestClient(_starlette(wacht_issuer, wacht_outside=True))
    with pytest.warns(RuntimeWarning, match="CORSMiddleware runs inside WachtMiddleware"):
        with caplog.at_level(logging.WARNING, logger="wacht_auth"):
            answer = client.get("/me", headers=ORIGIN)  # the stack is built on first use
    assert answer.status_code == 401
    assert "access-control-allow-origin" not in answer.headers  # what the warning is about
    assert any("Add CORSMiddleware after WachtMiddleware" in r.getMessage() for r in caplog.records)


def test_hand_built_stack_in_the_right_order_is_quiet(wacht_issuer: Issuer) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client = TestClient(_starlette(wacht_issuer, wacht_outside=False))
        _assert_readable_refusals(client)


def test_add_middleware_in_the_wrong_order_warns(wacht_issuer: Issuer) -> None:
    app = FastAPI()
    app.add_middleware(CORSMiddleware, **CORS)
    app.add_middleware(WachtMiddleware, verifier=Verifier(wacht_issuer.config()))
    with pytest.warns(RuntimeWarning, match="CORSMiddleware runs inside"):
        TestClient(app).get("/me", headers=ORIGIN)
