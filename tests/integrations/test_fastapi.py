"""The FastAPI adapter: contract table with and without the middleware, dependencies that
return the session, once-per-request verification, the bearer scheme in OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request, WebSocket
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from examples import fastapi_app
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
from wacht_auth import Session, WachtAuthError
from wacht_auth.auth import AuthState
from wacht_auth.integrations import asgi
from wacht_auth.integrations.fastapi import (
    WachtMiddleware,
    get_auth_state,
    install,
    require_auth,
    require_organization,
    require_permission,
    require_scope,
    require_workspace,
    wacht_exception_handler,
)
from wacht_auth.testing import FakeGateway, FrontendAPI, Issuer, OAuthServer
from wacht_auth.verifier import Verifier


class CountingVerifier(Verifier):
    """A real verifier that counts verifications (a cache hit answered by ``cached()`` too)."""

    calls = 0

    def cached(self, token: object) -> Session | None:
        session = super().cached(token)
        self.calls += session is not None
        return session

    async def averify(self, token: str) -> Session:
        self.calls += 1
        return await super().averify(token)


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer() as issuer:
        yield issuer


def add_routes(app: FastAPI) -> FastAPI:
    @app.get("/public")
    async def public(state: Annotated[AuthState, Depends(get_auth_state)]) -> Any:
        return {"user_id": state.user_id}

    @app.get("/protected")
    @app.post("/protected")
    async def protected(session: Annotated[Session, Depends(require_auth)]) -> Any:
        return {"user_id": session.user_id, "session_id": session.session_id}

    @app.get("/admin")
    def admin(session: Annotated[Session, Depends(require_permission("invoices:write"))]) -> Any:
        return {"user_id": session.user_id}

    @app.get("/granted")
    async def granted(caller: Annotated[Session, Depends(require_scope("invoices:read"))]) -> Any:
        return {"user_id": caller.user_id}

    @app.get("/org", dependencies=[Depends(require_auth)])  # two deps, verified once
    async def org(session: Annotated[Session, Depends(require_organization())]) -> Any:
        return {"user_id": session.user_id}

    @app.get("/page")
    @asgi.require_auth(redirect=True)  # a page: the Starlette decorator redirects
    async def page(request: Request) -> Any:
        return {"user_id": request.state.wacht.user_id}

    @app.get("/tamper")
    async def tamper_view(
        session: Annotated[Session, Depends(require_auth)],
        state: Annotated[AuthState, Depends(get_auth_state)],
    ) -> Any:
        return tamper(state)

    @app.get("/workspace")
    async def workspace(session: Annotated[Session, Depends(require_workspace("9"))]) -> Any:
        return {"user_id": session.user_id, "workspace_id": session.workspace_id}

    @app.get("/both")
    async def both(
        session: Annotated[
            Session, Depends(require_permission("a", "b", scope="workspace", require_all=True))
        ],
    ) -> Any:
        return {"user_id": session.user_id}

    @app.websocket("/ws")
    @asgi.require_auth  # the Starlette decorator works on FastAPI websocket routes
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"user_id": websocket.state.wacht.user_id})
        await websocket.close()

    return app


def make_app(verifier: Verifier, **options: Any) -> FastAPI:
    app = FastAPI()
    install(app, verifier, **options)
    return add_routes(app)


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


@pytest.fixture(scope="module", params=["middleware", "dependencies-only", "example"])
def contract_client(request: pytest.FixtureRequest, issuer: Issuer) -> Iterator[TestClient]:
    config = issuer.config()
    if request.param == "example":
        app = fastapi_app.create_app(config)
    else:
        app = make_app(Verifier(config), middleware=request.param == "middleware")
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


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("middleware", [True, False])
def test_verified_once_per_request(issuer: Issuer, middleware: bool) -> None:
    verifier = CountingVerifier(issuer.config())
    client = TestClient(make_app(verifier, middleware=middleware), base_url=APP_ORIGIN)
    token = issuer.token(user_id=USER, organization_id="77")
    assert client.get("/org", headers=bearer(token)).json() == {"user_id": USER}
    assert verifier.calls == 1
    client.get("/public", headers=bearer(token))
    assert verifier.calls == 2


def test_dependencies_only_verify_where_needed(issuer: Issuer) -> None:
    verifier = CountingVerifier(issuer.config())
    app = make_app(verifier, middleware=False)

    @app.get("/plain")
    async def plain() -> Any:
        return {}

    client = TestClient(app)
    assert client.get("/plain", headers=bearer(issuer.token(user_id=USER))).status_code == 200
    assert verifier.calls == 0


def test_dependencies_return_the_session(issuer: Issuer) -> None:
    client = TestClient(make_app(Verifier(issuer.config())))
    token = issuer.token(user_id=USER, workspace_id="9", permissions={"workspace": ["a", "b"]})
    assert client.get("/workspace", headers=bearer(token)).json() == {
        "user_id": USER,
        "workspace_id": "9",
    }
    assert client.get("/both", headers=bearer(token)).status_code == 200
    other = issuer.token(user_id=USER, workspace_id="8", permissions={"workspace": ["a"]})
    answer = client.get("/workspace", headers=bearer(other))
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "workspace_required")
    assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]
    answer = client.get("/both", headers=bearer(other))
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "permission_denied")


def test_openapi_shows_the_bearer_scheme(issuer: Issuer) -> None:
    schema = TestClient(make_app(Verifier(issuer.config()))).get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["WachtBearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert scheme["bearerFormat"] == "JWT"
    assert schema["paths"]["/protected"]["get"]["security"] == [{"WachtBearer": []}]
    assert schema["paths"]["/admin"]["get"]["security"] == [{"WachtBearer": []}]
    assert schema["paths"]["/public"]["get"]["security"] == [{"WachtBearer": []}]


def test_websocket_with_the_starlette_decorator(issuer: Issuer) -> None:
    client = TestClient(make_app(Verifier(issuer.config())))
    with client.websocket_connect("/ws", headers=bearer(issuer.token(user_id=USER))) as socket:
        assert socket.receive_json() == {"user_id": USER}
    with pytest.raises(WebSocketDisconnect) as caught:
        with client.websocket_connect("/ws"):
            pass  # pragma: no cover
    assert (caught.value.code, caught.value.reason) == (1008, "token_missing")


def test_protect_all_and_prefetch(issuer: Issuer) -> None:
    issuer.reset_count()
    app = make_app(
        Verifier(issuer.config()),
        protect_all=True,
        prefetch=True,
        public_paths=["/public", "/openapi.json", "/docs*"],
    )
    with TestClient(app, base_url=APP_ORIGIN) as client:
        assert issuer.fetch_count == 1
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/docs").status_code == 200
        answer = client.get("/nowhere")
        assert (answer.status_code, answer.json()["error"]["code"]) == (401, "token_missing")
        assert client.get("/nowhere", headers=bearer(issuer.token(user_id=USER))).status_code == 404
    with pytest.raises(ValueError, match="middleware"):
        install(FastAPI(), Verifier(issuer.config()), middleware=False, protect_all=True)


def test_manual_wiring_middleware_and_handler(issuer: Issuer) -> None:
    """The documented alternative to install(): add the middleware and the handler yourself."""
    app = FastAPI()
    app.add_middleware(WachtMiddleware, verifier=Verifier(issuer.config()))
    app.add_exception_handler(WachtAuthError, wacht_exception_handler)
    client = TestClient(add_routes(app), base_url=APP_ORIGIN)
    answer = client.get("/protected", headers=bearer(issuer.expired_token(user_id=USER)))
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "token_expired")
    assert client.get("/protected", headers=bearer(issuer.token(user_id=USER))).status_code == 200


def test_middleware_alone_answers_dependency_errors(issuer: Issuer) -> None:
    """Without the handler, the middleware still answers a dependency's error as JSON."""
    app = FastAPI()
    app.add_middleware(WachtMiddleware, verifier=Verifier(issuer.config()))
    answer = TestClient(add_routes(app)).get("/admin", headers=bearer(issuer.token(user_id=USER)))
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "permission_denied")


def test_install_builds_verifier_from_config(issuer: Issuer) -> None:
    app = FastAPI()
    verifier = install(app, config=issuer.config())
    assert app.state.wacht_verifier is verifier
    client = TestClient(add_routes(app))
    assert client.get("/protected", headers=bearer(issuer.token(user_id=USER))).status_code == 200


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


@pytest.mark.parametrize(
    "factory",
    [require_organization, require_workspace, require_permission, require_scope],
    ids=lambda f: f.__name__,
)
def test_a_guard_factory_given_to_depends_fails_closed(issuer: Issuer, factory: Any) -> None:
    """``Depends(require_organization)`` (no parentheses) must never let a caller through."""
    ran: list[bool] = []
    app = FastAPI()
    install(app, Verifier(issuer.config()))

    @app.get("/misused", dependencies=[Depends(factory)])
    async def misused() -> Any:
        ran.append(True)
        return {"ok": True}

    with TestClient(app, raise_server_exceptions=False) as client:
        for query in ("", "?organization_id=1&workspace_id=1&accept=api_key"):
            assert client.get("/misused" + query).status_code >= 400
        token = {"Authorization": f"Bearer {issuer.token(user_id=USER)}"}
        assert client.get("/misused", headers=token).status_code >= 400
    assert ran == []
    if factory in (require_organization, require_workspace):  # the others: FastAPI's 422
        # The misuse is reported as such (a TypeError naming the fix), not as a 401/403.
        with TestClient(app) as client, pytest.raises(TypeError):
            client.get("/misused")


def test_install_reads_the_settings_the_middleware_reads(
    issuer: Issuer, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "WACHT_FRONTEND_API_URL": issuer.url,
        "WACHT_PROTECT_ALL": "true",
        "WACHT_ACCEPT": "session_token,api_key",
        "WACHT_DEPLOYMENT_ID": "1",
        "WACHT_GATEWAY_URL": gateway.url,
        "WACHT_PUBLIC_PATHS": "/health",
    }.items():
        monkeypatch.setenv(name, value)
    key = gateway.add_key(owner_user_id="9")
    app = FastAPI()
    install(app)

    @app.get("/open")
    async def open_route() -> Any:
        return {"open": True}

    @app.get("/health")
    async def health() -> Any:
        return {"ok": True}

    with TestClient(app) as client:
        refused = client.get("/open")  # WACHT_PROTECT_ALL
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_missing"
        assert client.get("/health").status_code == 200  # WACHT_PUBLIC_PATHS
        keyed = client.get("/open", headers={"Authorization": f"Bearer {key}"})
        assert keyed.status_code == 200  # WACHT_ACCEPT
