"""FastAPI dependencies on websocket routes (issue 12): ``Depends(require_auth)`` works there,
and HTTP routes still show the bearer scheme in OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any

import pytest

pytest.importorskip("fastapi")

from fastapi import Depends, FastAPI, WebSocket
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from wacht_auth import Session
from wacht_auth.auth import AuthState
from wacht_auth.integrations import fastapi as wacht
from wacht_auth.testing import Issuer
from wacht_auth.verifier import Verifier


def _app(issuer: Issuer, *, middleware: bool) -> FastAPI:
    app = FastAPI()
    wacht.install(app, Verifier(issuer.config()), middleware=middleware)

    @app.get("/me")
    async def me(session: Annotated[Session, Depends(wacht.require_auth)]) -> Any:
        return {"user_id": session.user_id}

    @app.websocket("/ws")
    async def ws(
        websocket: WebSocket, session: Annotated[Session, Depends(wacht.require_auth)]
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"user_id": session.user_id})
        await websocket.close()

    @app.websocket("/ws/admin")
    async def ws_admin(
        websocket: WebSocket,
        session: Annotated[Session, Depends(wacht.require_permission("invoices:write"))],
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"user_id": session.user_id})
        await websocket.close()

    @app.websocket("/ws/open")
    async def ws_open(
        websocket: WebSocket, auth: Annotated[AuthState, Depends(wacht.get_auth_state)]
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"user_id": auth.user_id})
        await websocket.close()

    return app


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("middleware", [True, False])
def test_require_auth_on_a_websocket_route(wacht_issuer: Issuer, middleware: bool) -> None:
    client = TestClient(_app(wacht_issuer, middleware=middleware))
    with client.websocket_connect("/ws", headers=_bearer(wacht_issuer.token("42"))) as socket:
        assert socket.receive_json() == {"user_id": "42"}
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws"):
        pass
    assert (closed.value.code, closed.value.reason) == (1008, "token_missing")
    expired = _bearer(wacht_issuer.expired_token())
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/ws", headers=expired),
    ):
        pass
    assert (closed.value.code, closed.value.reason) == (1008, "token_expired")


@pytest.mark.parametrize("middleware", [True, False])
def test_permission_and_optional_state_on_websockets(
    wacht_issuer: Issuer, middleware: bool
) -> None:
    client = TestClient(_app(wacht_issuer, middleware=middleware))
    admin = _bearer(wacht_issuer.token("7", permissions=["invoices:write"]))
    with client.websocket_connect("/ws/admin", headers=admin) as socket:
        assert socket.receive_json() == {"user_id": "7"}
    plain = _bearer(wacht_issuer.token("8"))
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/ws/admin", headers=plain),
    ):
        pass
    assert (closed.value.code, closed.value.reason) == (1008, "permission_denied")
    with client.websocket_connect("/ws/open") as socket:
        assert socket.receive_json() == {"user_id": None}


def test_http_route_and_openapi_unchanged(wacht_issuer: Issuer) -> None:
    client = TestClient(_app(wacht_issuer, middleware=True))
    answer = client.get("/me", headers=_bearer(wacht_issuer.token("42")))
    assert (answer.status_code, answer.json()) == (200, {"user_id": "42"})
    refused = client.get("/me")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_missing"
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["WachtBearer"]["scheme"] == "bearer"
    assert schema["paths"]["/me"]["get"]["security"] == [{"WachtBearer": []}]
