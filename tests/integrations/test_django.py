"""The Django adapter: the shared contract through Django's WSGI and ASGI test clients.

Django is configured in-process by ``conftest.py`` (settings from ``django_settings.py``,
views in ``django_urls.py``); every test sets ``WACHT_AUTH`` with ``override_settings``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("django")

from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import AsyncClient, Client, RequestFactory, override_settings

from tests.integrations.contract import (
    CASES,
    KEY_CASES,
    PAGE_CASES,
    PROTECT_ALL_CASES,
    USER,
    Case,
    check,
    credential_options,
    make_token,
    request_for,
)
from wacht_auth import Config, Session
from wacht_auth.auth import Authenticator, AuthState
from wacht_auth.integrations.django import auth_state, authenticator
from wacht_auth.testing import FakeGateway, FrontendAPI, Issuer, OAuthServer
from wacht_auth.verifier import Verifier


class CountingVerifier:
    """Wraps a real verifier and counts verifications (sync and async)."""

    def __init__(self, verifier: Verifier) -> None:
        self.inner = verifier
        self.config = verifier.config
        self.calls = 0

    def verify(self, token: str) -> Session:
        self.calls += 1
        return self.inner.verify(token)

    async def averify(self, token: str) -> Session:
        self.calls += 1
        return await self.inner.averify(token)

    def cached(self, token: object) -> Session | None:
        return None  # every request verifies: the count is exact


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer() as started:
        yield started


@pytest.fixture(autouse=True)
def _no_wacht_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their configuration; the developer's shell must not leak in."""
    for name in list(os.environ):
        if name.startswith(("WACHT_", "NEXT_PUBLIC_WACHT_")):
            monkeypatch.delenv(name)


@pytest.fixture
def verifier(issuer: Issuer) -> Iterator[CountingVerifier]:
    counting = CountingVerifier(Verifier(issuer.config()))
    with override_settings(WACHT_AUTH={"verifier": counting}):
        yield counting


def _send_sync(
    client: Client, case: Case, issuer: Issuer, prefix: str, keys: dict[str, str] | None = None
) -> Any:
    req = request_for(case, issuer, issuer.config().cookie_name or "", keys)
    for name, value in req.cookies.items():
        client.cookies[name] = value
    return client.generic(req.method, prefix + req.path, headers=req.headers)


async def _send_async(
    client: AsyncClient,
    case: Case,
    issuer: Issuer,
    prefix: str,
    keys: dict[str, str] | None = None,
) -> Any:
    req = request_for(case, issuer, issuer.config().cookie_name or "", keys)
    for name, value in req.cookies.items():
        client.cookies[name] = value
    return await client.generic(req.method, prefix + req.path, headers=req.headers)


def _expected_calls(case: Case) -> int:
    """One verification per request with a token; none when the CSRF rule refuses it first."""
    return 0 if case.token is None or case.code == "csrf_failed" else 1


@pytest.mark.parametrize("prefix", ["/sync", "/cbv", "/async"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_contract_wsgi(case: Case, prefix: str, issuer: Issuer, verifier: CountingVerifier) -> None:
    response = _send_sync(Client(), case, issuer, prefix)
    check(case, response.status_code, dict(response.headers), response.content)
    assert verifier.calls == _expected_calls(case)


@pytest.mark.parametrize("prefix", ["/async", "/acbv", "/sync"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_contract_asgi(
    case: Case, prefix: str, issuer: Issuer, verifier: CountingVerifier
) -> None:
    response = await _send_async(AsyncClient(), case, issuer, prefix)
    check(case, response.status_code, dict(response.headers), response.content)
    assert verifier.calls == _expected_calls(case)


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
@pytest.mark.parametrize("case", KEY_CASES, ids=[c.name for c in KEY_CASES])
def test_contract_keys(
    case: Case,
    kind: str,
    issuer: Issuer,
    gateway: FakeGateway,
    oauth: OAuthServer,
    keys: dict[str, str],
) -> None:
    verifier = Verifier(issuer.config(gateway_url=gateway.url, deployment_id="1"))
    with override_settings(WACHT_AUTH={"verifier": verifier, **credential_options(case, oauth)}):
        if kind == "wsgi":
            response = _send_sync(Client(), case, issuer, "/sync", keys)
        else:
            response = async_to_sync(_send_async)(AsyncClient(), case, issuer, "/async", keys)
    check(case, response.status_code, dict(response.headers), response.content)


@pytest.mark.parametrize("case", PROTECT_ALL_CASES, ids=[c.name for c in PROTECT_ALL_CASES])
def test_contract_protect_all(case: Case, issuer: Issuer, verifier: CountingVerifier) -> None:
    with override_settings(WACHT_AUTH={"verifier": verifier, "protect_all": True}):
        response = _send_sync(Client(), case, issuer, "/sync")
    check(case, response.status_code, dict(response.headers), response.content)


def test_a_view_that_never_looks_costs_no_verification(
    issuer: Issuer, verifier: CountingVerifier
) -> None:
    auth = {"Authorization": f"Bearer {issuer.token(user_id=USER)}"}
    assert Client().get("/untouched", headers=auth).status_code == 200
    assert verifier.calls == 0


async def test_under_asgi_verified_once_before_the_view(
    issuer: Issuer, verifier: CountingVerifier
) -> None:
    """An async stack verifies with averify before the view: request.wacht in an async view
    never verifies (nor fetches keys) synchronously on the event loop."""
    auth = {"Authorization": f"Bearer {issuer.token(user_id=USER)}"}
    client = AsyncClient()
    assert (await client.get("/untouched", headers=auth)).status_code == 200
    assert verifier.calls == 1
    verifier.calls = 0
    response = await client.get("/twice", headers=auth)
    assert response.json() == {"user_id": USER, "same": True}
    assert verifier.calls == 1


@pytest.mark.parametrize(
    ("path", "claims", "status", "code"),
    [
        ("/sync/workspace", {"workspace_id": "5"}, 200, None),
        ("/sync/workspace", {"workspace_id": "6"}, 403, "workspace_required"),
        ("/async/workspace", {"workspace_id": "6"}, 200, None),
        ("/async/workspace", {}, 403, "workspace_required"),
        ("/async/strict", {"workspace_id": "5", "permissions": {"workspace": ["a", "b"]}}, 200,
         None),
        ("/async/strict", {"workspace_id": "5", "permissions": {"workspace": ["a"]}}, 403,
         "permission_denied"),
        ("/async/strict", {"organization_id": "1", "permissions": {"organization": ["a", "b"]}},
         403, "permission_denied"),
    ],
)  # fmt: skip
def test_workspace_and_scoped_permissions(
    path: str,
    claims: dict[str, Any],
    status: int,
    code: str | None,
    issuer: Issuer,
    verifier: CountingVerifier,
) -> None:
    token = issuer.token(user_id=USER, **claims)
    response = Client().get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == status
    if code is not None:
        assert response.json()["error"]["code"] == code
        assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("prefix", ["/sync", "/async", "/cbv", "/acbv"])
def test_key_server_down_is_503_with_retry_after(prefix: str) -> None:
    with Issuer() as down:
        token = down.token(user_id=USER)
        config = down.config(jwks_timeout=1)
        down.down()
        with override_settings(WACHT_AUTH={"config": config}):
            response = Client().get(
                prefix + "/protected", headers={"Authorization": f"Bearer {token}"}
            )
            public = Client().get(prefix + "/public", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "jwks_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert "WWW-Authenticate" not in response.headers
    assert public.status_code == 200 and public.json()["user_id"] is None


class CachingCounter(Verifier):
    """A real verifier, cache included, counting the verifications that miss it."""

    calls = 0

    def verify(self, token: str) -> Session:
        self.calls += 1
        return super().verify(token)

    async def averify(self, token: str) -> Session:
        self.calls += 1
        return await super().averify(token)


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
@pytest.mark.parametrize(
    "path", ["/sync/public", "/sync/protected", "/async/protected", "/acbv/protected", "/twice"]
)
def test_a_repeated_token_is_answered_from_the_cache(kind: str, path: str, issuer: Issuer) -> None:
    verifier = CachingCounter(issuer.config())
    headers = {"Authorization": f"Bearer {issuer.token(user_id=USER)}"}

    async def aget() -> Any:
        return await AsyncClient().get(path, headers=headers)

    with override_settings(WACHT_AUTH={"verifier": verifier}):
        for _ in range(3):
            response = (
                Client().get(path, headers=headers) if kind == "wsgi" else async_to_sync(aget)()
            )
            assert response.status_code == 200 and response.json()["user_id"] == USER
    assert verifier.calls == 1  # the first request verified; the others were cache hits


def test_request_wacht_is_an_auth_state(issuer: Issuer, verifier: CountingVerifier) -> None:
    token = issuer.token(user_id=USER)
    request = RequestFactory().get("/", headers={"Authorization": f"Bearer {token}"})
    state = auth_state(request)  # no middleware ran: attached on demand from WACHT_AUTH
    assert isinstance(request.wacht, AuthState) and request.wacht.user_id == USER  # type: ignore[attr-defined]
    assert state.user_id == USER and verifier.calls == 1
    assert "user_id" in repr(request.wacht)  # type: ignore[attr-defined]


def test_improperly_configured_names_the_missing_setting() -> None:
    with override_settings(WACHT_AUTH={}), pytest.raises(ImproperlyConfigured) as raised:
        Client().get("/untouched")
    message = str(raised.value)
    assert "frontend_api_url" in message and "WACHT_AUTH" in message


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"frontend_url": "https://x.example"}, "frontend_url"),
        ({"frontend_api_url": "ftp://x.example"}, "frontend_api_url"),
        ({"frontend_api_url": "https://x.example", "public_paths": 5}, "public_paths"),
        ({"frontend_api_url": "https://x.example", "protect_all": "maybe"}, "protect_all"),
        ("https://x.example", "dict"),
    ],
)
def test_bad_settings_are_named(value: object, named: str) -> None:
    with override_settings(WACHT_AUTH=value), pytest.raises(ImproperlyConfigured, match=named):
        authenticator()


def test_accepting_api_keys_without_the_deployment_is_improperly_configured() -> None:
    settings = {"frontend_api_url": "https://x.example", "accept": ["session_token", "api_key"]}
    with override_settings(WACHT_AUTH=settings), pytest.raises(ImproperlyConfigured) as raised:
        authenticator()
    assert "settings.WACHT_AUTH['deployment_id']" in str(raised.value)
    with override_settings(WACHT_AUTH={**settings, "deployment_id": "1"}):
        assert authenticator().gateway is not None


def test_settings_from_the_dict_keys_case_insensitive() -> None:
    raw = {"FRONTEND_API_URL": "https://acme.wacht.example", "audience": "api", "PROTECT_ALL": 1}
    with override_settings(WACHT_AUTH=raw):
        conf = authenticator()
        assert conf is authenticator()  # built once
    assert isinstance(conf, Authenticator) and conf.protect_all
    config: Config = conf.verifier.config
    assert config.issuer == "https://acme.wacht.example" and config.audience == ("api",)


def test_prefetch_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    with Issuer() as fresh:
        with override_settings(WACHT_AUTH={"config": fresh.config(), "prefetch": True}):
            Client().get("/untouched")  # loading the middleware prefetches
            assert fresh.fetch_count == 1
        fresh.down()
        with override_settings(WACHT_AUTH={"config": fresh.config(jwks_timeout=1), "PREFETCH": 1}):
            assert Client().get("/untouched").status_code == 200  # a failed prefetch is not fatal
    assert "prefetch at start-up failed" in caplog.text


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WACHT_FRONTEND_API_URL", "https://env.wacht.example")
    authenticator.cache_clear()
    try:
        assert authenticator().verifier.config.issuer == "https://env.wacht.example"
    finally:
        authenticator.cache_clear()


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_protect_all_with_public_paths_and_views(
    kind: str, issuer: Issuer, verifier: CountingVerifier
) -> None:
    settings = {"verifier": verifier, "protect_all": True, "public_paths": ["/health/*"]}
    token = issuer.token(user_id=USER)

    def get(path: str, token: str | None = None, method: str = "GET", **extra: str) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(extra)
        if kind == "wsgi":
            return Client().generic(method, path, headers=headers)

        async def aget() -> Any:
            return await AsyncClient().generic(method, path, headers=headers)

        return async_to_sync(aget)()

    with override_settings(WACHT_AUTH=settings):
        denied = get("/untouched")
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "token_missing"
        assert denied.headers["WWW-Authenticate"] == 'Bearer realm="wacht"'
        expired = get("/untouched", issuer.expired_token(user_id=USER))
        assert expired.json()["error"]["code"] == "token_expired"
        assert get("/untouched", token).status_code == 200
        assert get("/untouched", method="OPTIONS").status_code == 401  # a plain OPTIONS
        preflight = {"Access-Control-Request-Method": "POST", "Origin": "https://app.example"}
        assert get("/untouched", method="OPTIONS", **preflight).status_code == 200
        for open_path in ("/health/live", "/marked-public", "/amarked-public"):
            assert get(open_path).status_code == 200, open_path
        assert get("/sync/admin", token).status_code == 403
        assert get("/acbv/admin", token).status_code == 403


def test_permission_mixin_without_permissions_is_improperly_configured(
    issuer: Issuer, verifier: CountingVerifier
) -> None:
    with pytest.raises(ImproperlyConfigured, match="wacht_permissions"):
        Client().get("/misconfigured", headers={"Authorization": "Bearer x"})


def test_decorators_work_without_the_middleware(issuer: Issuer, verifier: CountingVerifier) -> None:
    with override_settings(MIDDLEWARE=[]):
        client = Client()
        assert client.get("/sync/protected").json()["error"]["code"] == "token_missing"
        token = make_token(issuer, "valid")
        ok = client.get("/sync/protected", headers={"Authorization": f"Bearer {token}"})
        assert ok.json()["user_id"] == USER


def test_example_app(issuer: Issuer) -> None:
    from examples import django_app

    verifier = Verifier(issuer.config())
    with override_settings(
        ROOT_URLCONF=django_app.__name__,
        MIDDLEWARE=django_app.SETTINGS["MIDDLEWARE"],
        WACHT_AUTH={"verifier": verifier, **django_app.SETTINGS["WACHT_AUTH"]},
    ):
        client = Client()
        assert client.get("/health").json() == {"ok": True}
        assert client.get("/me").json()["error"]["code"] == "token_missing"
        me = client.get("/me", headers={"Authorization": f"Bearer {issuer.token(user_id=USER)}"})
        assert me.status_code == 200 and me.json()["user_id"] == USER
        lacking = issuer.token(user_id=USER)
        forbidden = client.post("/invoices", headers={"Authorization": f"Bearer {lacking}"})
        assert forbidden.json()["error"]["code"] == "permission_denied"
        allowed = issuer.token(user_id=USER, permissions={"organization": ["invoices:write"]})
        created = client.post("/invoices", headers={"Authorization": f"Bearer {allowed}"})
        assert created.status_code == 201


def test_a_guard_sends_its_permissions_to_the_gateway(
    issuer: Issuer, gateway: FakeGateway, keys: dict[str, str]
) -> None:
    verifier = Verifier(issuer.config(gateway_url=gateway.url, deployment_id="1"))
    with override_settings(WACHT_AUTH={"verifier": verifier, "accept": "api_key"}):
        response = Client().get("/sync/admin", headers={"Authorization": f"Bearer {keys['key']}"})
    assert response.status_code == 200 and response["X-RateLimit-Remaining"]
    assert gateway.checks[-1]["required_permissions"] == ["invoices:write"]


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
@pytest.mark.parametrize("case", PAGE_CASES, ids=[c.name for c in PAGE_CASES])
def test_contract_pages(case: Case, kind: str, frontend: FrontendAPI) -> None:
    if case.frontend_fails:
        frontend.fail_exchange(case.frontend_fails)
    try:
        with override_settings(WACHT_AUTH={"config": frontend.config()}):
            prefix = "/sync" if kind == "wsgi" else "/async"
            if kind == "wsgi":
                response = _send_sync(Client(), case, frontend, prefix)
            else:
                response = async_to_sync(_send_async)(AsyncClient(), case, frontend, prefix)
    finally:
        frontend.restore_exchange()
    cookies = [morsel.OutputString() for morsel in response.cookies.values()]
    location = case.location
    if location is not None and location.startswith("http://testserver/"):
        location = "http://testserver" + prefix + location[len("http://testserver") :]
    elif location is not None and location.startswith("/"):
        location = prefix + location
    elif location is not None and "%2Fpage" in location:
        location = location.replace("%2Fpage", "%2F" + prefix.strip("/") + "%2Fpage")
    case = dataclasses.replace(case, location=location)
    check(
        case, response.status_code, dict(response.headers), response.content, cookies, frontend.url
    )


def test_protect_all_page_paths_redirect_and_apis_keep_the_401(frontend: FrontendAPI) -> None:
    settings = {"config": frontend.config(), "protect_all": True, "page_paths": ["/sync/public"]}
    with override_settings(WACHT_AUTH=settings):
        page = Client().get("/sync/public")
        assert page.status_code == 302
        assert page["Location"].startswith(f"{frontend.url}/sign-in?redirect_uri=")
        api = Client().get("/sync/protected")
        assert (api.status_code, api.json()["error"]["code"]) == (401, "token_missing")
        client = Client()
        client.cookies["__session"] = frontend.sign_in()
        signed_in = client.get("/sync/public")
    assert signed_in.json()["user_id"] == "user_1"
    assert any(name.startswith("__auth_") for name in signed_in.cookies)


@pytest.mark.parametrize("repeated", [False, True])
def test_a_request_is_freed_without_the_garbage_collector(issuer: Issuer, repeated: bool) -> None:
    """request.wacht holds no reference back to its request: no cycle, so every request is
    freed as soon as it is answered (a cycle per request costs the collector's time)."""
    import gc
    import weakref

    from wacht_auth.integrations.django import WachtMiddleware

    verifier = Verifier(issuer.config())
    token = issuer.token(user_id=USER)
    if repeated:
        verifier.verify(token)  # cached: answered when the request arrives
    with override_settings(WACHT_AUTH={"verifier": verifier}):
        middleware = WachtMiddleware(lambda request: HttpResponse(request.wacht.user_id))
        gc.disable()
        try:
            request = RequestFactory().get("/", headers={"Authorization": f"Bearer {token}"})
            assert middleware(request).content == USER.encode()
            gone = weakref.ref(request)
            del request
            assert gone() is None
        finally:
            gc.enable()
