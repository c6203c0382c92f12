"""A Flask API behind Wacht: every route needs a signed-in caller unless marked public.

Run it with ``WACHT_FRONTEND_API_URL=https://<your frontend host> flask --app
examples.flask_app run`` (or ``WACHT_PUBLISHABLE_KEY``), then call it with
``Authorization: Bearer <session token>``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, request

from wacht_auth import Config
from wacht_auth.integrations.flask import (
    Wacht,
    public,
    require_organization,
    require_permission,
)


def create_app(config: Config | None = None) -> Flask:
    """The example app; ``config`` defaults to ``app.config["WACHT_*"]`` and the environment."""
    app = Flask(__name__)
    Wacht(app, config=config, protect_all=True, public_paths=["/health"])

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/")
    @public
    def home() -> dict[str, Any]:
        return {"user_id": g.wacht.user_id}  # None for anonymous callers

    @app.get("/me")
    def me() -> dict[str, Any]:
        auth = request.wacht  # type: ignore[attr-defined]
        return {
            "user_id": auth.user_id,
            "session_id": auth.session_id,
            "organization_id": auth.organization_id,
            "permissions": list(auth.permissions),
        }

    @app.get("/invoices")
    @require_permission("invoices:read", "invoices:write")
    def invoices() -> dict[str, Any]:
        return {"user_id": g.wacht.user_id, "invoices": []}

    @app.post("/org/settings")
    @require_organization()
    @require_permission("organization:admin", scope="organization")
    def org_settings() -> dict[str, Any]:
        return {"organization_id": g.wacht.organization_id, "saved": True}

    return app
