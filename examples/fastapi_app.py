"""FastAPI + wacht_auth: dependencies returning the session, the bearer scheme in OpenAPI.

Run it: ``WACHT_FRONTEND_API_URL=https://<your frontend API> python examples/fastapi_app.py``
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from wacht_auth import Config, Session
from wacht_auth.auth import AuthState
from wacht_auth.integrations import fastapi as wacht
from wacht_auth.verifier import Verifier

User = Annotated[Session, Depends(wacht.require_auth)]
Admin = Annotated[Session, Depends(wacht.require_permission("invoices:write"))]
Member = Annotated[Session, Depends(wacht.require_organization())]


def create_app(config_or_verifier: Config | Verifier) -> FastAPI:
    """The example app, trusting the deployment of ``config_or_verifier``."""
    app = FastAPI(title="wacht_auth example")
    verifier = config_or_verifier
    wacht.install(app, verifier if isinstance(verifier, Verifier) else Verifier(verifier))

    @app.get("/public")
    async def public(auth: Annotated[AuthState, Depends(wacht.get_auth_state)]) -> Any:
        return {"user_id": auth.user_id}  # None when signed out

    @app.get("/protected")
    @app.post("/protected")
    async def protected(session: User) -> Any:
        return {"user_id": session.user_id, "session_id": session.session_id}

    @app.get("/admin")
    def admin(session: Admin) -> Any:  # sync path operations work too
        return {"user_id": session.user_id, "can": "invoices:write"}

    @app.get("/org")
    async def org(session: Member) -> Any:
        return {"user_id": session.user_id, "organization_id": session.organization_id}

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        create_app(Config.from_env()), host="127.0.0.1", port=int(os.getenv("PORT", "8000"))
    )
