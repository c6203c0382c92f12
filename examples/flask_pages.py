"""Server-rendered Flask pages behind Wacht: Jinja templates signed in from Wacht's cookies.

A browser sends no bearer header. A visitor who is not signed in and opens a page is sent
(302) to Wacht's sign-in page with ``redirect_uri`` back here; the sign-in page sets the
``__session`` cookie, and the next page load exchanges it at the frontend API for a session
token, stored in ``__auth_<scope>`` so later loads need no exchange (``docs/pages.md``).

- ``/``: public; says who is signed in, if anyone.
- ``/app`` and everything under it: the page area (``protect_all`` + ``page_paths``).
- ``/account``: one page outside that area, guarded by ``require_auth(redirect=True)``.
- ``/app/admin``: a page that needs ``reports:admin``: a signed-in visitor without it gets
  the app's own ``errorhandler(403)`` page, not JSON.
- ``/sign-out``: the sign-out view (POST, the form on every page).
- ``/api/me``: an API route: anonymous callers get the 401 JSON, never a redirect.

Run it with ``WACHT_FRONTEND_API_URL=https://<your frontend host> flask --app
examples.flask_pages run`` (or ``WACHT_PUBLISHABLE_KEY``) and open ``http://localhost:5000/app``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, render_template, request
from jinja2 import DictLoader

from wacht_auth import Config
from wacht_auth.integrations.flask import Wacht, public, require_auth, require_permission, sign_out

# Inline so the example is one file; in a project these are files under templates/.
TEMPLATES = {
    "base.html": (
        "<!doctype html><html><head><title>{{ title }}</title></head><body>"
        "<h1>{{ title }}</h1>{% block content %}{% endblock %}</body></html>"
    ),
    "page.html": (
        '{% extends "base.html" %}{% block content %}'
        '<p>Signed in as <span id="user">{{ request.wacht.user_id }}</span></p>'
        '<p>Session <span id="session">{{ request.wacht.session_id }}</span></p>'
        '<form method="post" action="/sign-out"><button id="sign-out">Sign out</button></form>'
        "{% endblock %}"
    ),
    "403.html": '{% extends "base.html" %}{% block content %}'
    '<p id="forbidden">You may not open this page</p>{% endblock %}',
    "home.html": (
        '{% extends "base.html" %}{% block content %}'
        "{% if request.wacht.is_authenticated %}"
        '<p>Signed in as <span id="user">{{ request.wacht.user_id }}</span></p>'
        '{% else %}<p id="user">Not signed in. <a href="/app">Open the app</a></p>{% endif %}'
        "{% endblock %}"
    ),
}

#: The settings of the page area, as ``app.config["WACHT_*"]``; the deployment comes from
#: ``config`` or the environment.
SETTINGS: dict[str, Any] = {
    "WACHT_PROTECT_ALL": True,  # every route needs a signed-in caller ...
    "WACHT_PUBLIC_PATHS": ["/"],  # ... except the home page,
    "WACHT_PAGE_PATHS": ["/app/*"],  # and these are pages: anonymous visitors go to sign in
}


def create_app(config: Config | None = None) -> Flask:
    """The example app; ``config`` (a test's ``FrontendAPI.config()``) names the deployment,
    else ``app.config["WACHT_*"]`` and the environment do."""
    app = Flask(__name__)
    app.jinja_loader = DictLoader(TEMPLATES)
    app.config.update(SETTINGS)
    Wacht(app, config=config)

    @app.get("/")
    def home() -> str:
        return render_template("home.html", title="Home")  # public: signed in or not

    @app.get("/app")
    def dashboard() -> str:
        return render_template("page.html", title="Dashboard")  # protect_all: signed in here

    @app.get("/app/reports")
    def reports() -> str:
        return render_template("page.html", title="Reports")

    # Under protect_all a route outside page_paths answers 401 before its view runs. This page
    # is left to its own guard (public), which sends visitors to sign in instead.
    @app.get("/account")
    @public
    @require_auth(redirect=True)
    def account() -> str:
        return render_template("page.html", title="Account")

    # A page that needs a permission: a visitor without it gets the 403 page below.
    @app.get("/app/admin")
    @require_permission("reports:admin", redirect=True)
    def admin() -> str:
        return render_template("page.html", title="Admin")

    @app.errorhandler(403)
    def forbidden(error: Exception) -> tuple[str, int]:
        return render_template("403.html", title="Forbidden"), 403

    app.add_url_rule("/sign-out", view_func=sign_out, methods=["POST"])

    @app.get("/api/me")
    def api_me() -> dict[str, Any]:
        return {"user_id": request.wacht.user_id}  # type: ignore[attr-defined]

    return app
