"""Flask pages in production (docs/pages.md): private answers merged with the app's own
headers, page refusals through the app's ``errorhandler(403)``, development links made clean
on any route, the sign-out view."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("flask")

from flask import Flask, Response

from wacht_auth.integrations.flask import Wacht, require_permission, sign_out
from wacht_auth.testing import FrontendAPI

ORIGIN = {"Origin": "http://localhost"}


def make_app(frontend: FrontendAPI, **options: Any) -> Flask:
    app = Flask(__name__)
    Wacht(app, config=frontend.config(), **options)

    @app.route("/page", methods=["GET", "POST"])
    def page() -> Response:
        from flask import request

        response = Response(f"<p>{request.wacht.user_id}</p>")  # type: ignore[attr-defined]
        response.headers["Vary"] = "Accept-Encoding"
        response.headers["Cache-Control"] = "public, max-age=600"
        return response

    @app.get("/report")
    @require_permission("reports:read", redirect=True)
    def report() -> str:
        return "<p>report</p>"

    @app.get("/api/report")
    @require_permission("reports:read")
    def api_report() -> dict[str, bool]:
        return {"ok": True}

    @app.errorhandler(403)
    def forbidden(error: Exception) -> tuple[str, int]:
        return '<h1 id="forbidden">No entry</h1>', 403

    app.add_url_rule("/sign-out", view_func=sign_out, methods=["POST"])
    return app


def test_private_headers_merge_with_the_apps(frontend: FrontendAPI) -> None:
    client = make_app(frontend).test_client()
    client.set_cookie("__session", frontend.sign_in())
    page = client.get("/page")
    assert page.headers["Vary"] == "Accept-Encoding, Cookie"
    assert page.headers["Cache-Control"] == "private, no-store"
    assert len(page.headers.getlist("Set-Cookie")) >= 1
    anonymous = make_app(frontend).test_client().get("/page")
    assert anonymous.headers["Cache-Control"] == "public, max-age=600"  # not ours to change


def test_a_page_refusal_goes_to_the_apps_errorhandler(frontend: FrontendAPI) -> None:
    client = make_app(frontend).test_client()
    client.set_cookie("__session", frontend.sign_in())
    page = client.get("/report")
    assert page.status_code == 403 and b'id="forbidden"' in page.data
    assert any(c.startswith("__auth_") for c in page.headers.getlist("Set-Cookie"))
    api = client.get("/api/report")
    assert api.status_code == 403 and api.get_json()["error"]["code"] == "permission_denied"


def test_a_protect_all_page_refusal_goes_to_the_apps_errorhandler(frontend: FrontendAPI) -> None:
    app = make_app(frontend, protect_all=True, page_paths=["/page"])
    client = app.test_client()
    client.set_cookie(frontend.config().cookie_name or "", frontend.token("user_1"))
    page = client.post("/page", headers={"Origin": "https://evil.example"})
    assert page.status_code == 403 and b'id="forbidden"' in page.data


def test_a_development_link_is_made_clean_without_protect_all(frontend: FrontendAPI) -> None:
    client = make_app(frontend).test_client()
    clean = client.get(f"/page?a=1&__dev_session__={frontend.dev_session()}")
    assert (clean.status_code, clean.headers["Location"]) == (302, "http://localhost/page?a=1")


def test_sign_out(frontend: FrontendAPI) -> None:
    before = frontend.sign_out_count
    client = make_app(frontend).test_client()
    client.set_cookie("__session", frontend.sign_in())
    assert client.get("/page").status_code == 200
    done = client.post("/sign-out", headers=ORIGIN)
    assert (done.status_code, done.headers["Location"]) == (303, "/")
    cookies = done.headers.getlist("Set-Cookie")
    assert any(c.startswith("__auth_") and "Max-Age=0" in c for c in cookies)
    assert any(c.startswith("__session=;") for c in cookies)
    assert frontend.sign_out_count == before + 1
    foreign = client.post("/sign-out", headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and foreign.get_json()["error"]["code"] == "csrf_failed"


def test_sign_out_is_open_under_protect_all(frontend: FrontendAPI) -> None:
    client = make_app(frontend, protect_all=True).test_client()
    assert client.post("/sign-out", headers=ORIGIN).status_code == 303


def test_the_forwarded_field_is_trusted_from_the_right(frontend: FrontendAPI) -> None:
    client = make_app(frontend, trusted_proxies=1).test_client()
    client.set_cookie("__session", frontend.sign_in())
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.9"}
    assert client.get("/page", headers=headers).status_code == 200
    assert frontend.exchange_requests[-1].headers["x-wacht-forwarded-for"] == "198.51.100.9"
