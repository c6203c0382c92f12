"""Django REST framework: the contract through ``APIClient``, ``request.user``/``request.auth``,
the permission classes and the exception handler."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("rest_framework")

from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from rest_framework.exceptions import (  # type: ignore[import-untyped]
    NotAuthenticated,
    PermissionDenied,
    Throttled,
)
from rest_framework.test import APIClient  # type: ignore[import-untyped]

from tests.integrations.contract import (
    CASES,
    KEY_CASES,
    USER,
    Case,
    check,
    credential_options,
    make_token,
    request_for,
)
from tests.integrations.test_django import CountingVerifier
from wacht_auth import Session
from wacht_auth.integrations.drf import (
    HasWachtPermission,
    WachtAuthentication,
    WachtUser,
    exception_handler,
)
from wacht_auth.testing import FakeGateway, Issuer, OAuthServer
from wacht_auth.verifier import Verifier

# DRF refuses a token that fails even on open views (as its TokenAuthentication does), so the
# contract row "public with expired token stays open" becomes a 401 token_expired here.
DRF_CASES = [
    Case("public with expired token is refused", "/public", "expired", 401, "token_expired",
         challenge='error="invalid_token"'),
    *[c for c in CASES if c.name != "public with expired token stays open"],
]  # fmt: skip


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer() as started:
        yield started


@pytest.fixture(autouse=True)
def _no_wacht_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("WACHT_", "NEXT_PUBLIC_WACHT_")):
            monkeypatch.delenv(name)


@pytest.fixture
def verifier(issuer: Issuer) -> Iterator[CountingVerifier]:
    counting = CountingVerifier(Verifier(issuer.config()))
    with override_settings(WACHT_AUTH={"verifier": counting}):
        yield counting


def _send(case: Case, issuer: Issuer, keys: dict[str, str] | None = None) -> Any:
    req = request_for(case, issuer, issuer.config().cookie_name or "", keys)
    client = APIClient()
    for name, value in req.cookies.items():
        client.cookies[name] = value
    return client.generic(req.method, "/drf" + req.path, headers=req.headers)


@pytest.mark.parametrize("middleware", [True, False], ids=["middleware", "no-middleware"])
@pytest.mark.parametrize("case", DRF_CASES, ids=[c.name for c in DRF_CASES])
def test_contract(case: Case, middleware: bool, issuer: Issuer, verifier: CountingVerifier) -> None:
    stack = ["wacht_auth.integrations.django.WachtMiddleware"] if middleware else []
    with override_settings(MIDDLEWARE=stack):
        response = _send(case, issuer)
    check(case, response.status_code, dict(response.headers), response.content)
    if case.status == 200 and case.user_id:
        data = response.json()
        assert data["auth_is_session"] and data["state_user_id"] == USER
    assert verifier.calls == (0 if case.token is None or case.code == "csrf_failed" else 1)


def test_request_user_and_auth(issuer: Issuer, verifier: CountingVerifier) -> None:
    token = make_token(issuer, "with_permission")
    response = APIClient().get("/drf/protected", headers={"Authorization": f"Bearer {token}"})
    assert response.json()["user_id"] == USER and response.json()["session_id"]
    state = response.wsgi_request.wacht
    result = WachtAuthentication().authenticate(_drf_request(response))  # reuses the state
    assert result is not None
    user, session = result
    assert isinstance(user, WachtUser) and isinstance(session, Session)
    assert user.is_authenticated and not user.is_anonymous
    assert (user.id, user.pk, str(user)) == (USER, USER, USER)
    assert user.organization_id == "77" and user.has_perm("invoices:write")
    assert session.user_id == state.user_id
    assert verifier.calls == 1


def _drf_request(response: Any) -> Any:
    class Wrapped:
        _request = response.wsgi_request

    return Wrapped()


def test_authenticate_header_makes_drf_answer_401() -> None:
    assert WachtAuthentication().authenticate_header(None) == 'Bearer realm="wacht"'


def test_permission_class_without_permissions(issuer: Issuer, verifier: CountingVerifier) -> None:
    token = make_token(issuer, "valid")
    with pytest.raises(ImproperlyConfigured, match="with_permissions"):
        APIClient().get("/drf/unconfigured", headers={"Authorization": f"Bearer {token}"})


def test_with_permissions_validates_and_composes(
    issuer: Issuer, verifier: CountingVerifier
) -> None:
    with pytest.raises(ValueError):
        HasWachtPermission.with_permissions("")
    both = HasWachtPermission.with_permissions("a", "b", scope="organization", require_all=True)
    assert both.permissions == ("a", "b") and both.require_all
    assert issubclass(both, HasWachtPermission)


def test_drf_own_errors_carry_our_codes() -> None:
    context: dict[str, Any] = {"request": None}
    missing = exception_handler(NotAuthenticated(), context)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="wacht"'
    denied = exception_handler(PermissionDenied("admins only"), context)
    assert denied.status_code == 403
    assert b'"code":"permission_denied"' in denied.content and b"admins only" in denied.content
    throttled = exception_handler(Throttled(wait=3), context)  # not ours: DRF's own answer
    assert throttled.status_code == 429 and throttled["Retry-After"] == "3"


def test_key_server_down_is_503_with_retry_after() -> None:
    with Issuer() as down:
        token = down.token(user_id=USER)
        config = down.config(jwks_timeout=1)
        down.down()
        with override_settings(WACHT_AUTH={"config": config}):
            response = APIClient().get(
                "/drf/protected", headers={"Authorization": f"Bearer {token}"}
            )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "jwks_unavailable"
    assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("case", KEY_CASES, ids=[c.name for c in KEY_CASES])
def test_contract_keys(
    case: Case, issuer: Issuer, gateway: FakeGateway, oauth: OAuthServer, keys: dict[str, str]
) -> None:
    verifier = Verifier(issuer.config(gateway_url=gateway.url, deployment_id="1"))
    settings = {"verifier": verifier, **credential_options(case, oauth)}
    stack = ["wacht_auth.integrations.django.WachtMiddleware"]
    with override_settings(WACHT_AUTH=settings, MIDDLEWARE=stack):
        response = _send(case, issuer, keys)
    check(case, response.status_code, dict(response.headers), response.content)


def test_a_permission_class_narrows_the_kinds_a_view_takes(
    issuer: Issuer, gateway: FakeGateway, keys: dict[str, str]
) -> None:
    from rest_framework.test import APIRequestFactory

    from wacht_auth.integrations.drf import HasWachtPermission, IsWachtAuthenticated

    class KeysOnly(IsWachtAuthenticated):
        accept = ("api_key",)

    verifier = Verifier(issuer.config(gateway_url=gateway.url, deployment_id="1"))
    settings = {"verifier": verifier, "accept": ["session_token", "api_key"]}
    factory = APIRequestFactory()
    with override_settings(WACHT_AUTH=settings):
        for permission, token, allowed in (
            (KeysOnly, keys["key"], True),
            (KeysOnly, issuer.token(user_id=USER), False),
            (HasWachtPermission.with_permissions("invoices:write", accept=("api_key",)),
             keys["key"], True),
        ):  # fmt: skip
            request = factory.get("/", HTTP_AUTHORIZATION=f"Bearer {token}")
            from django.http import HttpRequest

            django_request: HttpRequest = request
            drf_request = type("R", (), {"_request": django_request})()
            assert permission().has_permission(drf_request, None) is allowed
