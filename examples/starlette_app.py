"""Starlette + wacht_auth: the middleware, decorators on async and sync endpoints, a websocket.

Run it: ``WACHT_FRONTEND_API_URL=https://<your frontend API> python examples/starlette_app.py``
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from wacht_auth import Config
from wacht_auth.integrations import asgi as wacht
from wacht_auth.verifier import Verifier


async def public(request: Request) -> JSONResponse:
    return JSONResponse({"user_id": request.state.wacht.user_id})  # None when signed out


@wacht.require_auth
async def protected(request: Request) -> JSONResponse:
    auth = request.state.wacht
    return JSONResponse({"user_id": auth.user_id, "session_id": auth.session_id})


@wacht.require_permission("invoices:write")
def admin(request: Request) -> JSONResponse:  # sync endpoints work too (run in a thread)
    return JSONResponse({"user_id": request.state.wacht.user_id, "can": "invoices:write"})


@wacht.require_organization()
async def org(request: Request) -> JSONResponse:
    auth = request.state.wacht
    return JSONResponse({"user_id": auth.user_id, "organization_id": auth.organization_id})


@wacht.require_auth  # closes the handshake with 1008 unless the caller is signed in
async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"user_id": websocket.state.wacht.user_id})
    await websocket.close()


def create_app(config_or_verifier: Config | Verifier) -> Starlette:
    """The example app, trusting the deployment of ``config_or_verifier``."""
    verifier = config_or_verifier
    if isinstance(verifier, Config):
        verifier = Verifier(verifier)
    routes = [Route("/public", public), Route("/protected", protected, methods=["GET", "POST"])]
    routes += [Route("/admin", admin), Route("/org", org)]
    middleware = [Middleware(wacht.WachtMiddleware, verifier=verifier, prefetch=True)]
    return Starlette(routes=[*routes, WebSocketRoute("/ws", ws)], middleware=middleware)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        create_app(Config.from_env()), host="127.0.0.1", port=int(os.getenv("PORT", "8000"))
    )
