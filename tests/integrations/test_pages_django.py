"""Django pages in production (docs/pages.md): a shared cache never serves one visitor's page
or cookie to another, page refusals render the app's ``403.html``, ``request.user`` is the
Wacht user with the opt-in ``WachtUserMiddleware``, and the sign-out views."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("django")

from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client, override_settings

from wacht_auth import Verifier
from wacht_auth.testing import FrontendAPI

from .test_django import CountingVerifier

WACHT = "wacht_auth.integrations.django.WachtMiddleware"
USER_MIDDLEWARE = "wacht_auth.integrations.django.WachtUserMiddleware"
CACHE = {
    "MIDDLEWARE": [
        "django.middleware.cache.UpdateCacheMiddleware",
        WACHT,
        "django.middleware.cache.FetchFromCacheMiddleware",
    ],
    "CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    "CACHE_MIDDLEWARE_SECONDS": 600,
}
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "OPTIONS": {
            "loaders": [
                (
                    "django.template.loaders.locmem.Loader",
                    {"403.html": '<h1 id="forbidden">No entry</h1>'},
                )
            ]
        },
    }
]
ORIGIN = {"Origin": "http://testserver"}


def _auth_cookies(response: Any) -> dict[str, str]:
    return {n: m.OutputString() for n, m in response.cookies.items() if n.startswith("__auth_")}


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_a_shared_cache_never_serves_alices_page_or_cookie(
    frontend: FrontendAPI, kind: str
) -> None:
    from django.core.cache import cache

    cache.clear()
    alice_cookies = {"__session": frontend.sign_in("alice")}

    def get(cookies: dict[str, str]) -> Any:
        if kind == "wsgi":
            client = Client()
            client.cookies.load(cookies)
            return client.get("/sync/public")
        aclient = AsyncClient()
        aclient.cookies.load(cookies)
        return async_to_sync(aclient.get)("/async/public")

    with override_settings(WACHT_AUTH={"config": frontend.config()}, **CACHE):
        alice = get(alice_cookies)
        assert json.loads(alice.content)["user_id"] == "alice" and _auth_cookies(alice)
        for _ in range(2):  # the second anonymous visit is served from the cache
            visitor = get({})
            assert json.loads(visitor.content)["user_id"] is None
            assert _auth_cookies(visitor) == {}
        assert "max-age=600" in visitor["Cache-Control"]  # the cache is really on
        assert "private" in alice["Cache-Control"] and "Cookie" in alice["Vary"]
    cache.clear()


@pytest.fixture
def pages(frontend: FrontendAPI) -> Iterator[FrontendAPI]:
    with override_settings(
        ROOT_URLCONF="tests.integrations.pages_urls",
        MIDDLEWARE=[WACHT, USER_MIDDLEWARE],
        TEMPLATES=TEMPLATES,
        WACHT_AUTH={"config": frontend.config()},
    ):
        yield frontend


def test_a_page_refusal_renders_the_apps_403_html(pages: FrontendAPI) -> None:
    client = Client()
    client.cookies["__session"] = pages.sign_in()  # signed in, without reports:read
    page = client.get("/report")
    assert page.status_code == 403 and b'id="forbidden"' in page.content
    assert page["Content-Type"].startswith("text/html")
    assert _auth_cookies(page) and "no-store" in page["Cache-Control"]  # cookies still set
    api = client.get("/api/report")
    assert api.status_code == 403 and api.json()["error"]["code"] == "permission_denied"
    allowed = Client(headers={"Authorization": f"Bearer {_reader(pages)}"})
    assert allowed.get("/report").status_code == 200


async def test_an_async_page_refusal_renders_the_apps_403_html(pages: FrontendAPI) -> None:
    client = AsyncClient()
    client.cookies["__session"] = pages.sign_in()
    page = await client.get("/areport")
    assert page.status_code == 403 and b'id="forbidden"' in page.content


def test_a_protect_all_page_refusal_renders_the_apps_403_html(pages: FrontendAPI) -> None:
    config = pages.config()
    settings = {"config": config, "protect_all": True, "page_paths": ["/page"]}
    with override_settings(WACHT_AUTH=settings):
        client = Client(headers={"Origin": "https://evil.example"})
        client.cookies[config.cookie_name or ""] = pages.token("user_1")
        page = client.post("/page")  # a cookie on a foreign POST: csrf_failed, on a page
        assert page.status_code == 403 and b'id="forbidden"' in page.content
        api = client.post("/me")
        assert api.status_code == 403 and api.json()["error"]["code"] == "csrf_failed"


def _reader(frontend: FrontendAPI) -> str:
    return frontend.token("user_7", permissions={"organization": ["reports:read"]})


def test_request_user_is_the_wacht_user(pages: FrontendAPI) -> None:
    signed = Client(headers={"Authorization": f"Bearer {_reader(pages)}"}).get("/me").json()
    assert signed == {
        "str": "user_7",
        "is_authenticated": True,
        "pk": "user_7",
        "id": "user_7",
        "can_read": True,
        "type": "WachtUser",
    }
    anonymous = Client().get("/me").json()
    assert anonymous["type"] == "AnonymousUser" and anonymous["is_authenticated"] is False
    cookie = Client()
    cookie.cookies["__session"] = pages.sign_in("user_8")
    assert cookie.get("/me").json()["str"] == "user_8"


async def test_request_auser(pages: FrontendAPI) -> None:
    auth = {"Authorization": f"Bearer {_reader(pages)}"}
    assert (await AsyncClient().get("/ame", headers=auth)).json() == {
        "str": "user_7",
        "is_authenticated": True,
    }
    assert (await AsyncClient().get("/ame")).json()["is_authenticated"] is False


def test_request_user_is_lazy(pages: FrontendAPI) -> None:
    counting = CountingVerifier(Verifier(pages.config()))
    with override_settings(WACHT_AUTH={"verifier": counting}):
        client = Client(headers={"Authorization": f"Bearer {pages.token('user_9')}"})
        assert client.get("/untouched").status_code == 200
        assert counting.calls == 0
        assert client.get("/me").json()["str"] == "user_9"
        assert counting.calls == 1


def test_djangos_own_decorators_read_the_wacht_user(pages: FrontendAPI) -> None:
    anonymous = Client().get("/login-required")
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    reader = Client(headers={"Authorization": f"Bearer {_reader(pages)}"})
    assert reader.get("/login-required").content == b"hello user_7"
    assert reader.get("/permission-required").status_code == 200
    other = Client(headers={"Authorization": f"Bearer {pages.token('user_1')}"})
    assert other.get("/permission-required").status_code == 403


def test_sign_out(pages: FrontendAPI) -> None:
    before = pages.sign_out_count
    transport = pages.sign_in()
    client = Client(headers=ORIGIN)
    client.cookies["__session"] = transport
    assert client.get("/page").status_code == 200
    done = client.post("/sign-out")
    assert (done.status_code, done["Location"]) == (303, "/")
    deleted = _auth_cookies(done)
    assert deleted and all("Max-Age=0" in c for c in deleted.values())
    assert "Max-Age=0" in done.cookies["__session"].OutputString()  # the frontend API's
    assert pages.sign_out_count == before + 1
    assert client.get("/me").json()["is_authenticated"] is False
    again = Client(headers=ORIGIN)
    again.cookies["__session"] = pages.sign_in()
    assert again.post("/sign-out-bye")["Location"] == "/bye"
    refused = Client().get("/sign-out")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"


async def test_async_sign_out(pages: FrontendAPI) -> None:
    before = pages.sign_out_count
    client = AsyncClient()
    client.cookies["__session"] = pages.sign_in()
    done = await client.post("/asign-out", headers=ORIGIN)
    assert done.status_code == 303 and pages.sign_out_count == before + 1


def test_the_forwarded_field_is_trusted_from_the_right(frontend: FrontendAPI) -> None:
    settings = {"config": frontend.config(), "trusted_proxies": 1}
    with override_settings(WACHT_AUTH=settings):
        client = Client(headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.9"})
        client.cookies["__session"] = frontend.sign_in()
        assert client.get("/sync/public").status_code == 200
    assert frontend.exchange_requests[-1].headers["x-wacht-forwarded-for"] == "198.51.100.9"
