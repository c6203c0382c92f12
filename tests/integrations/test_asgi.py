"""The ASGI adapter: contract table through Starlette's TestClient, websockets, protect-all,
lifespan prefetch, Starlette's requires(), plain ASGI apps, once-per-request verification."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from examples import starlette_app
from tests.integrations.contract import (
    APP_ORIGIN,
    CASES,
    KEY_CASES,
    PAGE_CASES,
    PROTECT_ALL_CASES,
    USER,
    Case,
    check,
    credential_options,
    request_for,
    tamper,
)
from wacht_auth import Session, TokenExpiredError
from wacht_auth.auth import Paths
from wacht_auth.integrations import asgi
from wacht_auth.integrations.asgi import (
    WachtMiddleware,
    WachtUser,
    require_auth,
    require_organization,
    require_permission,
    require_scope,
    require_workspace,
)
from wacht_auth.testing import FakeGateway, FrontendAPI, Issuer, OAuthServer
from wacht_auth.verifier import Verifier


class CountingVerifier(Verifier):
    """A real verifier that counts verifications, to prove they happen once per request.

    A repeated token is answered by ``cached()`` alone (no ``verify`` call): a hit counts too.
    """

    calls = 0

    def cached(self, token: object) -> Session | None:
        session = super().cached(token)
        self.calls += session is not None
        return session

    def verify(self, token: str) -> Session:
        self.calls += 1
        return super().verify(token)

    async def averify(self, token: str) -> Session:
        self.calls += 1
        return await super().averify(token)


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer() as issuer:
        yield issuer


def body(request: Request) -> dict[str, Any]:
    auth = request.state.wacht
    return {"user_id": auth.user_id, "session_id": auth.session_id}


async def public(request: Request) -> JSONResponse:
    assert request.scope["wacht"] is request.state.wacht
    return JSONResponse({"user_id": request.state.wacht.user_id})


@require_auth
async def protected(request: Request) -> JSONResponse:
    return JSONResponse(body(request))


@require_auth(redirect=True)
async def page(request: Request) -> JSONResponse:
    return JSONResponse({"user_id": request.state.wacht.user_id})


@require_auth
async def tamper_view(request: Request) -> JSONResponse:
    return JSONResponse(tamper(request.state.wacht))


@require_permission("invoices:write")
async def admin(request: Request) -> JSONResponse:
    return JSONResponse(body(request))


@require_scope("invoices:read")
async def granted(request: Request) -> JSONResponse:
    return JSONResponse(body(request))


@require_organization()
def org(request: Request) -> JSONResponse:  # sync: Starlette runs it in a thread
    return JSONResponse(body(request))


@require_workspace("9")
def workspace(request: Request) -> JSONResponse:
    return JSONResponse(body(request))


@require_permission("a", "b", scope="workspace", require_all=True)
async def both(request: Request) -> JSONResponse:
    return JSONResponse(body(request))


@requires("authenticated")
async def starlette_requires(request: Request) -> JSONResponse:
    assert isinstance(request.user, WachtUser)
    return JSONResponse({"user_id": request.user.identity, "name": request.user.display_name})


@requires(["authenticated", "invoices:write"])
async def starlette_scoped(request: Request) -> JSONResponse:
    return JSONResponse({"scopes": request.auth.scopes})


@require_auth
async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"user_id": websocket.state.wacht.user_id})
    await websocket.close()


async def ws_open(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"user_id": websocket.scope["wacht"].user_id})
    await websocket.close()


class Invoices(HTTPEndpoint):
    @require_permission("invoices:write")
    async def post(self, request: Request) -> JSONResponse:
        return JSONResponse(body(request))


ROUTES = [
    Route("/invoices", Invoices),
    Route("/public", public),
    Route("/protected", protected, methods=["GET", "POST"]),
    Route("/admin", admin),
    Route("/org", org),
    Route("/granted", granted),
    Route("/tamper", tamper_view),
    Route("/page", page),
    Route("/workspace", workspace),
    Route("/both", both),
    Route("/requires", starlette_requires),
    Route("/scoped", starlette_scoped),
    WebSocketRoute("/ws", ws),
    WebSocketRoute("/ws-open", ws_open),
]


def make_app(verifier: Verifier, **options: Any) -> Starlette:
    app = Starlette(routes=ROUTES)
    app.add_middleware(WachtMiddleware, verifier=verifier, **options)
    return app


def call(
    client: TestClient,
    case: Case,
    issuer: Issuer,
    cookie_name: str,
    keys: dict[str, str] | None = None,
    follow_redirects: bool = True,
) -> Any:
    request = request_for(case, issuer, cookie_name, keys)
    headers = dict(request.headers)
    if request.cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in request.cookies.items())
    return client.request(
        request.method, request.path, headers=headers, follow_redirects=follow_redirects
    )


@pytest.fixture(scope="module", params=["decorators", "example"])
def contract_client(request: pytest.FixtureRequest, issuer: Issuer) -> Iterator[TestClient]:
    config = issuer.config()
    if request.param == "example":
        app = starlette_app.create_app(config)
    else:
        app = make_app(Verifier(config))
    with TestClient(app, base_url=APP_ORIGIN) as client:
        client.example = request.param == "example"  # type: ignore[attr-defined]
        yield client


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_contract(case: Case, contract_client: TestClient, issuer: Issuer) -> None:
    if case.needs and contract_client.example:  # type: ignore[attr-defined]
        pytest.skip("the example app has no such route")
    response = call(contract_client, case, issuer, issuer.config().cookie_name or "")
    check(case, response.status_code, response.headers, response.content)


@pytest.mark.parametrize("case", KEY_CASES, ids=[c.name for c in KEY_CASES])
def test_contract_keys(
    case: Case, issuer: Issuer, gateway: FakeGateway, oauth: OAuthServer, keys: dict[str, str]
) -> None:
    config = issuer.config(gateway_url=gateway.url, deployment_id="1")
    app = make_app(Verifier(config), **credential_options(case, oauth))
    with TestClient(app, base_url=APP_ORIGIN) as client:
        response = call(client, case, issuer, issuer.config().cookie_name or "", keys)
    check(case, response.status_code, response.headers, response.content)


@pytest.mark.parametrize("case", PROTECT_ALL_CASES, ids=[c.name for c in PROTECT_ALL_CASES])
def test_contract_protect_all(case: Case, issuer: Issuer) -> None:
    app = make_app(Verifier(issuer.config()), protect_all=True)
    with TestClient(app, base_url=APP_ORIGIN) as client:
        response = call(client, case, issuer, issuer.config().cookie_name or "")
    check(case, response.status_code, response.headers, response.content)


def test_nested_middleware_with_another_verifier_verifies_again(issuer: Issuer) -> None:
    """Security review finding 1: an outer WachtMiddleware of deployment A must not vouch
    for a caller on routes that an inner middleware of deployment B protects."""
    with Issuer() as other:
        inner = make_app(Verifier(other.config()), protect_all=True)
        outer = Starlette(routes=[Route("/public", public), Mount("/admin", inner)])
        outer.add_middleware(WachtMiddleware, verifier=Verifier(issuer.config()))
        token_a = bearer(issuer.token(user_id=USER))
        token_b = bearer(other.token(user_id="b-user"))
        with TestClient(outer, base_url=APP_ORIGIN) as client:
            assert client.get("/public", headers=token_a).json() == {"user_id": USER}
            denied = client.get("/admin/protected", headers=token_a)
            assert denied.status_code == 401 and denied.json()["error"]["code"] in (
                "signature_invalid",
                "issuer_invalid",
                "key_not_found",
            )
            assert client.get("/admin/protected", headers=token_b).json()["user_id"] == "b-user"


def test_a_mounted_app_decides_with_its_own_accept(
    issuer: Issuer, gateway: FakeGateway, keys: dict[str, str]
) -> None:
    """Review finding: an admin sub-app taking session tokens only, mounted under an app that
    takes API keys on the same verifier, must not let an API key through."""
    verifier = Verifier(issuer.config(gateway_url=gateway.url, deployment_id="1"))
    inner = make_app(verifier)  # session tokens only
    outer = Starlette(routes=[Route("/public", public), Mount("/admin", inner)])
    outer.add_middleware(WachtMiddleware, verifier=verifier, accept=("session_token", "api_key"))
    key = bearer(keys["key"])
    calls = len(gateway.checks)
    with TestClient(outer, base_url=APP_ORIGIN) as client:
        assert client.get("/public", headers=key).status_code == 200
        refused = client.get("/admin/protected", headers=key)
        assert refused.status_code == 401, refused.text
        assert (
            client.get("/admin/protected", headers=bearer(issuer.token(user_id=USER))).json()[
                "user_id"
            ]
            == USER
        )
    assert len(gateway.checks) == calls + 2  # one check per request, none by the inner layer


@pytest.fixture
def verifier(issuer: Issuer) -> CountingVerifier:
    return CountingVerifier(issuer.config())


@pytest.fixture
def client(verifier: CountingVerifier) -> TestClient:
    return TestClient(make_app(verifier), base_url=APP_ORIGIN)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_verification_happens_once_per_request(
    client: TestClient, verifier: CountingVerifier, issuer: Issuer
) -> None:
    assert client.get("/protected", headers=bearer(issuer.token(user_id=USER))).status_code == 200
    assert verifier.calls == 1
    assert client.get("/public").json() == {"user_id": None}
    assert verifier.calls == 1  # no token: nothing to verify


def test_starlette_requires_sees_auth_and_user(client: TestClient, issuer: Issuer) -> None:
    token = issuer.token(
        user_id=USER, organization_id="77", permissions={"organization": ["invoices:write"]}
    )
    answer = client.get("/requires", headers=bearer(token))
    assert answer.status_code == 200
    assert answer.json() == {"user_id": USER, "name": USER}
    assert client.get("/scoped", headers=bearer(token)).json() == {
        "scopes": ["authenticated", "invoices:write"]
    }
    assert client.get("/requires").status_code == 403  # Starlette's own answer
    assert client.get("/scoped", headers=bearer(issuer.token(user_id=USER))).status_code == 403


async def scoped_and_tampered(request: Request) -> JSONResponse:
    answer = {"user_id": request.user.identity, "scopes": list(request.auth.scopes)}
    request.auth.scopes.append("admin")  # changes nothing the next request sees
    return JSONResponse(answer)


def test_repeated_tokens_keep_their_own_state(verifier: CountingVerifier, issuer: Issuer) -> None:
    """A repeated token is answered from the cache (one verified Session, deeply read-only)
    with Starlette objects of its own request: nothing one request does reaches the next."""
    seen: list[Any] = []

    async def endpoint(request: Request) -> JSONResponse:
        seen.append((request.state.wacht, request.user, request.auth))
        return await scoped_and_tampered(request)

    app = Starlette(routes=[Route("/", require_auth(endpoint)), Route("/plain", endpoint)])
    client = TestClient(WachtMiddleware(app, verifier=verifier), base_url=APP_ORIGIN)
    alice = bearer(issuer.token(user_id="alice", permissions={"organization": ["a:read"]}))
    bob = bearer(issuer.token(user_id="bob", permissions={"workspace": ["b:write"]}))
    for _ in range(3):
        for path in ("/", "/plain"):
            assert client.get(path, headers=alice).json() == {
                "user_id": "alice",
                "scopes": ["authenticated", "a:read"],
            }
            assert client.get(path, headers=bob).json() == {
                "user_id": "bob",
                "scopes": ["authenticated", "b:write"],
            }
    assert verifier.calls == 12  # one verification or cache answer per request
    alices, bobs = seen[0::2], seen[1::2]
    assert all(state.user_id == "alice" for state, _, _ in alices)
    assert all(user.identity == "bob" for _, user, _ in bobs)
    assert {id(x) for x in alices[1]}.isdisjoint(id(x) for y in bobs for x in y)
    assert alices[1][0].session is alices[-1][0].session  # cache hits: one verified Session
    assert alices[1][2] is not alices[-1][2]  # request.auth: one per request


def test_cache_hit_path_still_checks_expiry(issuer: Issuer) -> None:
    now = [float(issuer.clock())]
    verifier = Verifier(issuer.config(clock=lambda: now[0]))
    client = TestClient(make_app(verifier), base_url=APP_ORIGIN)
    token = bearer(issuer.token(user_id=USER, lifetime=60))
    assert client.get("/protected", headers=token).status_code == 200
    assert client.get("/protected", headers=token).status_code == 200  # a cache hit
    now[0] += 3600
    answer = client.get("/protected", headers=token)
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "token_expired")
    now[0] -= 3600
    with_space = {"Authorization": f"Bearer  {token['Authorization'][7:]} "}
    assert client.get("/protected", headers=with_space).status_code == 200  # the full path


def test_decorators_on_sync_and_async_endpoints(client: TestClient, issuer: Issuer) -> None:
    ws_token = issuer.token(user_id=USER, workspace_id="9", permissions={"workspace": ["a", "b"]})
    assert client.get("/workspace", headers=bearer(ws_token)).status_code == 200
    assert client.get("/both", headers=bearer(ws_token)).status_code == 200
    other = issuer.token(user_id=USER, workspace_id="8", permissions={"workspace": ["a"]})
    answer = client.get("/workspace", headers=bearer(other))
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "workspace_required")
    answer = client.get("/both", headers=bearer(other))
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "permission_denied")
    answer = client.get("/org", headers=bearer(issuer.expired_token(user_id=USER)))
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "token_expired")


def test_decorators_on_endpoint_class_methods(client: TestClient, issuer: Issuer) -> None:
    token = issuer.token(user_id=USER, permissions={"organization": ["invoices:write"]})
    assert client.post("/invoices", headers=bearer(token)).json()["user_id"] == USER
    answer = client.post("/invoices", headers=bearer(issuer.token(user_id=USER)))
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "permission_denied")


def test_websocket_accepted_with_valid_token(client: TestClient, issuer: Issuer) -> None:
    with client.websocket_connect("/ws", headers=bearer(issuer.token(user_id=USER))) as socket:
        assert socket.receive_json() == {"user_id": USER}


@pytest.mark.parametrize("token", [None, "expired"])
def test_websocket_closed_1008_without_valid_token(
    client: TestClient, issuer: Issuer, token: str | None
) -> None:
    headers = bearer(issuer.expired_token(user_id=USER)) if token else {}
    with pytest.raises(WebSocketDisconnect) as caught:
        with client.websocket_connect("/ws", headers=headers):
            pass  # pragma: no cover - the handshake is refused
    assert caught.value.code == 1008
    assert caught.value.reason == ("token_expired" if token else "token_missing")


def test_websocket_cookie_token_needs_own_origin(client: TestClient, issuer: Issuer) -> None:
    """Browsers send cookies on cross-site websocket handshakes: the CSRF rule applies."""
    cookie = {"Cookie": f"{issuer.config().cookie_name}={issuer.token(user_id=USER)}"}
    with client.websocket_connect("/ws", headers={**cookie, "Origin": APP_ORIGIN}) as socket:
        assert socket.receive_json() == {"user_id": USER}
    for origin in ({"Origin": "https://evil.example"}, {}):
        with pytest.raises(WebSocketDisconnect) as caught:
            with client.websocket_connect("/ws", headers={**cookie, **origin}):
                pass  # pragma: no cover
        assert (caught.value.code, caught.value.reason) == (1008, "csrf_failed")


def test_protect_all_with_public_paths(verifier: CountingVerifier, issuer: Issuer) -> None:
    app = make_app(verifier, protect_all=True, public_paths=["/public", "/ws-open*"])
    client = TestClient(app, base_url=APP_ORIGIN)
    assert client.get("/public").json() == {"user_id": None}
    answer = client.get("/requires")  # undecorated route, protected by the middleware
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "token_missing"
    assert answer.headers["www-authenticate"] == 'Bearer realm="wacht"'
    assert answer.headers["content-type"] == "application/json"
    assert int(answer.headers["content-length"]) == len(answer.content)
    answer = client.get("/requires", headers=bearer(issuer.expired_token(user_id=USER)))
    assert answer.json()["error"]["code"] == "token_expired"
    assert client.get("/requires", headers=bearer(issuer.token(user_id=USER))).status_code == 200
    with client.websocket_connect("/ws-open") as socket:  # public prefix
        assert socket.receive_json() == {"user_id": None}
    with pytest.raises(WebSocketDisconnect) as caught:
        with client.websocket_connect("/ws"):
            pass  # pragma: no cover
    assert caught.value.code == 1008


def test_protect_all_lets_cors_preflights_through(verifier: CountingVerifier) -> None:
    """Browsers send no credentials on a preflight; CORSMiddleware (if inside) answers it."""
    client = TestClient(make_app(verifier, protect_all=True), base_url=APP_ORIGIN)
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    assert client.options("/protected", headers=preflight).status_code == 405  # the router
    assert client.options("/protected").status_code == 401  # a plain OPTIONS is protected


def test_cors_middleware_outside_adds_headers_to_refusals(verifier: CountingVerifier) -> None:
    from starlette.middleware.cors import CORSMiddleware

    app = make_app(verifier, protect_all=True)
    app.add_middleware(CORSMiddleware, allow_origins=["https://app.example"], allow_methods=["*"])
    client = TestClient(app, base_url=APP_ORIGIN)
    origin = {"Origin": "https://app.example"}
    preflight = client.options(
        "/protected", headers={**origin, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 200
    answer = client.get("/protected", headers=origin)
    assert answer.status_code == 401
    assert answer.headers["access-control-allow-origin"] == "https://app.example"


def test_public_paths_object_accepted(verifier: CountingVerifier) -> None:
    app = make_app(verifier, protect_all=True, public_paths=Paths(["/pub*"]))
    assert TestClient(app).get("/public").status_code == 200


def test_lifespan_prefetch(issuer: Issuer) -> None:
    issuer.reset_count()
    with TestClient(make_app(Verifier(issuer.config()), prefetch=True)):
        assert issuer.fetch_count == 1  # fetched at start-up, before any request
    issuer.reset_count()
    with TestClient(make_app(Verifier(issuer.config()))):
        assert issuer.fetch_count == 0


def test_lifespan_prefetch_failure_does_not_stop_startup(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Issuer() as issuer:
        issuer.fail(500)
        app = make_app(Verifier(issuer.config()), prefetch=True)
        with caplog.at_level(logging.WARNING, "wacht_auth"), TestClient(app) as client:
            answer = client.get("/protected", headers=bearer(issuer.token(user_id=USER)))
            assert answer.status_code == 503
            assert answer.json()["error"]["code"] == "jwks_unavailable"
            assert int(answer.headers["retry-after"]) >= 1
            issuer.restore()
        assert "prefetch" in caplog.text


def test_example_websocket(issuer: Issuer) -> None:
    client = TestClient(starlette_app.create_app(Verifier(issuer.config())))
    with client.websocket_connect("/ws", headers=bearer(issuer.token(user_id=USER))) as socket:
        assert socket.receive_json() == {"user_id": USER}
    with pytest.raises(WebSocketDisconnect) as caught:
        with client.websocket_connect("/ws"):
            pass  # pragma: no cover
    assert caught.value.code == 1008


def test_plain_asgi_app(issuer: Issuer) -> None:
    """Any ASGI callable can be wrapped; the state is in the scope."""
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope)
        if scope["path"] == "/raise":
            raise TokenExpiredError()  # answered by the middleware: nothing was sent yet
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    client = TestClient(WachtMiddleware(app, config=issuer.config()), base_url=APP_ORIGIN)
    assert client.get("/", headers=bearer(issuer.token(user_id=USER))).status_code == 204
    assert seen["wacht"].user_id == USER
    assert seen["state"]["wacht"] is seen["wacht"]
    assert seen["user"].identity == USER and seen["user"].is_authenticated
    assert seen["auth"].scopes == ["authenticated"]
    client.get("/")
    assert seen["wacht"].user_id is None and not seen["user"].is_authenticated
    answer = client.get("/raise")
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "token_expired")


def test_error_after_response_started_is_not_swallowed(issuer: Issuer) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise TokenExpiredError()

    client = TestClient(WachtMiddleware(app, config=issuer.config()))
    with pytest.raises(TokenExpiredError):
        client.get("/")


def test_decorator_without_middleware_uses_app_state_verifier(issuer: Issuer) -> None:
    app = Starlette(routes=ROUTES)
    client = TestClient(app, base_url=APP_ORIGIN)
    with pytest.raises(RuntimeError, match="WachtMiddleware"):
        client.get("/protected")
    app.state.wacht_verifier = verifier = CountingVerifier(issuer.config())
    token = bearer(issuer.token(user_id=USER, organization_id="77"))
    assert client.get("/protected", headers=token).json()["user_id"] == USER  # async path
    assert client.get("/org", headers=token).json()["user_id"] == USER  # sync path
    assert client.get("/org").json()["error"]["code"] == "token_missing"
    assert verifier.calls == 2


def test_decorator_needs_a_request_argument() -> None:
    async def endpoint(value: int) -> Response:  # pragma: no cover - never reached
        return Response()

    with pytest.raises(TypeError):  # at decoration time, not on the first request
        require_auth(endpoint)


def test_middleware_builds_verifier_from_env(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WACHT_FRONTEND_API_URL", issuer.url)
    for name in ("WACHT_JWT_KEY", "WACHT_PUBLIC_SIGNING_KEY", "WACHT_ISSUER", "WACHT_JWKS_URL"):
        monkeypatch.delenv(name, raising=False)
    middleware = WachtMiddleware(Starlette())
    assert middleware.verifier.config.issuer == issuer.url
    assert asgi.__all__ == sorted(asgi.__all__)


NO_STARLETTE = """
import asyncio, sys
sys.modules["starlette"] = None  # the import fails, as on a machine without Starlette
from wacht_auth.config import Config
from wacht_auth.integrations.asgi import WachtMiddleware
from wacht_auth.verifier import Verifier

seen = {}

async def app(scope, receive, send):
    seen.update(scope)

async def main():
    middleware = WachtMiddleware(app, verifier=Verifier(Config(frontend_api_url=sys.argv[1])))
    scope = {"type": "http", "method": "GET", "path": "/", "scheme": "http", "headers": []}
    await middleware(scope, None, None)
    assert seen["wacht"].user_id is None and not seen["user"].is_authenticated
    assert seen["auth"].scopes == [] and seen["state"]["wacht"] is seen["wacht"]
    print("ok")

asyncio.run(main())
"""


def test_plain_asgi_without_starlette_installed(issuer: Issuer) -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", NO_STARLETTE, issuer.url],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize("case", PAGE_CASES, ids=[c.name for c in PAGE_CASES])
def test_contract_pages(case: Case, frontend: FrontendAPI) -> None:
    config = frontend.config()
    if case.frontend_fails:
        frontend.fail_exchange(case.frontend_fails)
    try:
        with TestClient(make_app(Verifier(config)), base_url=APP_ORIGIN) as client:
            cookie_name = config.cookie_name or ""
            response = call(client, case, frontend, cookie_name, follow_redirects=False)
    finally:
        frontend.restore_exchange()
    cookies = response.headers.get_list("set-cookie")
    check(case, response.status_code, response.headers, response.content, cookies, frontend.url)


def test_protect_all_page_paths_redirect_and_apis_keep_the_401(frontend: FrontendAPI) -> None:
    app = make_app(Verifier(frontend.config()), protect_all=True, page_paths=["/public"])
    with TestClient(app, base_url=APP_ORIGIN, follow_redirects=False) as client:
        page = client.get("/public?x=1")
        assert page.status_code == 302
        assert page.headers["location"] == (
            f"{frontend.url}/sign-in?redirect_uri=http%3A%2F%2Ftestserver%2Fpublic%3Fx%3D1"
        )
        api = client.get("/protected")
        assert (api.status_code, api.json()["error"]["code"]) == (401, "token_missing")
        signed_in = client.get("/public", headers={"Cookie": f"__session={frontend.sign_in()}"})
        assert signed_in.json() == {"user_id": "user_1"}
        frontend.fail_exchange(503)
        try:
            down = client.get("/public", headers={"Cookie": f"__session={frontend.sign_in()}"})
        finally:
            frontend.restore_exchange()
        assert down.status_code == 503 and "location" not in down.headers  # never a loop


@pytest.mark.parametrize(
    ("proxies", "peer_trusted", "expected_host"),
    [(None, False, "testserver"), (1, True, "app.example"), (["10.0.0.0/8"], False, "testserver")],
)
def test_the_redirect_uri_reads_forwarded_headers_only_from_trusted_proxies(
    frontend: FrontendAPI, proxies: Any, peer_trusted: bool, expected_host: str
) -> None:
    """No open redirect: X-Forwarded-Host names the host only behind a trusted proxy (the
    TestClient's peer is "testclient", which no CIDR list trusts; a hop count trusts it)."""
    app = make_app(Verifier(frontend.config()), trusted_proxies=proxies)
    forwarded = {
        "X-Forwarded-For": "203.0.113.5",
        "X-Forwarded-Host": "app.example",
        "X-Forwarded-Proto": "https",
    }
    with TestClient(app, base_url=APP_ORIGIN, follow_redirects=False) as client:
        page = client.get("/page", headers=forwarded)
    assert page.status_code == 302
    scheme = "https" if peer_trusted else "http"
    assert f"redirect_uri={scheme}%3A%2F%2F{expected_host}%2Fpage" in page.headers["location"]


async def test_concurrent_page_loads_with_one_session_cookie_make_one_exchange(
    frontend: FrontendAPI,
) -> None:
    import httpx

    app = make_app(Verifier(frontend.config()))
    transport = httpx.ASGITransport(app=app)
    cookie = {"Cookie": f"__session={frontend.sign_in()}"}
    before = frontend.exchange_count
    async with httpx.AsyncClient(transport=transport, base_url=APP_ORIGIN) as client:
        answers = await asyncio.gather(*(client.get("/page", headers=cookie) for _ in range(30)))
        assert all(a.json() == {"user_id": "user_1"} for a in answers)
        again = await client.get("/page", headers=cookie)  # reused until it expires
        assert again.status_code == 200
    assert frontend.exchange_count - before == 1
