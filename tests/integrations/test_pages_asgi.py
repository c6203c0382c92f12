"""ASGI pages in production (docs/pages.md): forwarded headers read as the whole field and
trusted from the right, private answers merged with the app's headers, page refusals through
the app's exception handlers (Starlette and FastAPI), the sign-out endpoint."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("starlette")

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from wacht_auth import Verifier
from wacht_auth.integrations.asgi import (
    SignOut,
    WachtMiddleware,
    require_permission,
    sign_out,
)
from wacht_auth.testing import FrontendAPI

ORIGIN = {"Origin": "http://testserver"}


async def page(request: Request) -> Response:
    state = request.state.wacht
    headers = {"Vary": "Accept-Encoding", "Cache-Control": "public, max-age=600"}
    return HTMLResponse(f"<p>{state.user_id}</p>", headers=headers)


@require_permission("reports:read", redirect=True)
async def report(request: Request) -> Response:
    return HTMLResponse("<p>report</p>")


@require_permission("reports:read")
async def api_report(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def forbidden(request: Request, exc: Exception) -> Response:
    return HTMLResponse('<h1 id="forbidden">No entry</h1>', status_code=403)


def make_app(frontend: FrontendAPI, **options: Any) -> Starlette:
    app = Starlette(
        routes=[
            Route("/page", page, methods=["GET", "POST"]),
            Route("/report", report),
            Route("/api/report", api_report),
            Route("/sign-out", sign_out, methods=["POST"]),
            Route("/sign-out-bye", SignOut(next="/bye"), methods=["POST"]),
        ],
        exception_handlers={403: forbidden},
    )
    app.add_middleware(WachtMiddleware, verifier=Verifier(frontend.config()), **options)
    return app


def test_repeated_forwarded_lines_are_one_field_trusted_from_the_right(
    frontend: FrontendAPI,
) -> None:
    # HAProxy's "option forwardfor" appends its own line after the one the client wrote.
    with TestClient(make_app(frontend, trusted_proxies=1), base_url="http://testserver") as c:
        headers = [
            ("cookie", f"__session={frontend.sign_in()}"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.9"),
        ]
        assert c.get("/page", headers=headers).status_code == 200
        assert frontend.exchange_requests[-1].headers["x-wacht-forwarded-for"] == "198.51.100.9"
        link = f"/page?__dev_session__={frontend.dev_session()}"
        clean = c.get(
            link,
            headers=[
                ("x-forwarded-host", "evil.example"),
                ("x-forwarded-host", "app.example.com"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-for", "198.51.100.9"),
            ],
            follow_redirects=False,
        )
        assert clean.headers["location"] == "https://app.example.com/page"


def test_private_headers_merge_with_the_apps(frontend: FrontendAPI) -> None:
    with TestClient(make_app(frontend), base_url="http://testserver") as client:
        page = client.get("/page", headers={"Cookie": f"__session={frontend.sign_in()}"})
        assert page.headers["vary"] == "Accept-Encoding, Cookie"
        assert page.headers["cache-control"] == "private, no-store"
        assert page.headers.get_list("vary") == ["Accept-Encoding, Cookie"]
        anonymous = client.get("/page")
        assert anonymous.headers["cache-control"] == "public, max-age=600"


def test_a_page_refusal_goes_to_the_apps_exception_handler(frontend: FrontendAPI) -> None:
    with TestClient(make_app(frontend), base_url="http://testserver") as client:
        cookie = {"Cookie": f"__session={frontend.sign_in()}"}
        page = client.get("/report", headers=cookie)
        assert page.status_code == 403 and 'id="forbidden"' in page.text
        assert any(c.startswith("__auth_") for c in page.headers.get_list("set-cookie"))
        api = client.get("/api/report", headers=cookie)
        assert api.status_code == 403 and api.json()["error"]["code"] == "permission_denied"


def test_a_protect_all_page_refusal_goes_to_the_apps_exception_handler(
    frontend: FrontendAPI,
) -> None:
    app = make_app(frontend, protect_all=True, page_paths=["/page"])
    with TestClient(app, base_url="http://testserver") as client:
        cookie = f"{frontend.config().cookie_name}={frontend.token('user_1')}"
        headers = {"Cookie": cookie, "Origin": "https://evil.example"}
        page = client.post("/page", headers=headers)
        assert page.status_code == 403 and 'id="forbidden"' in page.text
    bare = Starlette(routes=[Route("/page", page, methods=["POST"])])
    bare.add_middleware(
        WachtMiddleware,
        verifier=Verifier(frontend.config()),
        protect_all=True,
        page_paths=["/page"],
    )
    with TestClient(bare, base_url="http://testserver") as client:
        plain = client.post("/page", headers=headers)  # no handler: Starlette's plain text
        assert (plain.status_code, plain.text) == (403, "Forbidden")


def test_fastapi_pages_use_fastapis_handler(frontend: FrontendAPI) -> None:
    fastapi = pytest.importorskip("fastapi")
    app = fastapi.FastAPI()
    app.add_middleware(WachtMiddleware, verifier=Verifier(frontend.config()))

    @app.exception_handler(HTTPException)
    async def html(request: Request, exc: HTTPException) -> Response:
        return HTMLResponse(f'<h1 id="error">{exc.status_code}</h1>', exc.status_code)

    @app.get("/report")
    @require_permission("reports:read", redirect=True)
    async def fastapi_report(request: Request) -> str:
        return "report"

    app.add_route("/sign-out", SignOut(next="/bye"), methods=["POST"])
    with TestClient(app, base_url="http://testserver") as client:
        page = client.get("/report", headers={"Cookie": f"__session={frontend.sign_in()}"})
        assert page.status_code == 403 and '<h1 id="error">403</h1>' in page.text
        done = client.post("/sign-out", headers=ORIGIN, follow_redirects=False)
        assert (done.status_code, done.headers["location"]) == (303, "/bye")


def test_sign_out(frontend: FrontendAPI) -> None:
    before = frontend.sign_out_count
    with TestClient(make_app(frontend), base_url="http://testserver") as client:
        cookie = {"Cookie": f"__session={frontend.sign_in()}", **ORIGIN}
        done = client.post("/sign-out", headers=cookie, follow_redirects=False)
        assert (done.status_code, done.headers["location"]) == (303, "/")
        cookies = done.headers.get_list("set-cookie")
        assert any(c.startswith("__auth_") and "Max-Age=0" in c for c in cookies)
        assert any(c.startswith("__session=;") for c in cookies)
        assert "no-store" in done.headers["cache-control"]
        assert frontend.sign_out_count == before + 1
        bye = client.post("/sign-out-bye", headers=ORIGIN, follow_redirects=False)
        assert bye.headers["location"] == "/bye"
        foreign = client.post("/sign-out", headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "csrf_failed"
