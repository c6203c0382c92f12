"""The organization (or workspace) a route's path names: ``require_organization(path_param=...)``
and ``PathParam`` through every framework, with the 403 code of ``require_organization``.

Each app has ``/orgs/<org_id>/invoices`` (organization) and ``/spaces/<ws_id>/docs``
(workspace) and one route whose guard names a parameter the route does not have (a misused
guard: refused as ``configuration_error``, never opened).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wacht_auth import Verifier
from wacht_auth.auth import PathParam, Requirement, requirement
from wacht_auth.testing import Issuer

CASES = [
    # (path, claims of the token, status, code)
    ("/orgs/77/invoices", {"organization_id": "77"}, 200, None),
    ("/orgs/78/invoices", {"organization_id": "77"}, 403, "organization_required"),
    ("/orgs/77/invoices", {}, 403, "organization_required"),  # no active organization
    ("/spaces/5/docs", {"workspace_id": "5"}, 200, None),
    ("/spaces/6/docs", {"workspace_id": "5"}, 403, "workspace_required"),
    ("/broken/77", {"organization_id": "77"}, 500, "configuration_error"),
]


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer() as started:
        yield started


def _code(body: Any) -> str | None:
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


def _run(call: Callable[[str, str | None], tuple[int, Any]], issuer: Issuer) -> None:
    for path, claims, status, code in CASES:
        token = issuer.token("42", **claims)
        got_status, body = call(path, token)
        assert (got_status, _code(body) if code else None) == (status, code), path
    anonymous_status, body = call("/orgs/77/invoices", None)
    assert (anonymous_status, _code(body)) == (401, "token_missing")


def test_the_core_rule() -> None:
    from wacht_auth.auth import AuthState
    from wacht_auth.errors import ConfigurationError, OrganizationRequiredError

    needed = requirement(organization=PathParam("org_id"))
    with Issuer() as issuer:
        verifier = Verifier(issuer.config())
        state = AuthState(verifier.verify(issuer.token("42", organization_id="77")))
    assert needed.check(state, {"org_id": "77"}).user_id == "42"
    assert needed.check(state, {"org_id": 77}).user_id == "42"  # a converter's int
    with pytest.raises(OrganizationRequiredError):
        needed.check(state, {"org_id": "78"})
    with pytest.raises(ConfigurationError):
        needed.check(state, {})
    with pytest.raises(TypeError):
        PathParam("")
    assert Requirement.of(type("V", (), {"organization": PathParam("org_id")})) == needed


def test_an_id_and_a_path_param_are_not_both_given() -> None:
    from wacht_auth.integrations.asgi import require_organization

    with pytest.raises(TypeError):
        require_organization("77", path_param="org_id")


def test_starlette(issuer: Issuer) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from wacht_auth.integrations.asgi import (
        WachtMiddleware,
        require_organization,
        require_workspace,
    )

    @require_organization(path_param="org_id")
    async def invoices(request: Request) -> JSONResponse:
        return JSONResponse({"org": request.path_params["org_id"]})

    @require_workspace(path_param="ws_id")
    async def docs(request: Request) -> JSONResponse:
        return JSONResponse({})

    @require_organization(path_param="missing")
    async def broken(request: Request) -> JSONResponse:
        return JSONResponse({})

    app = Starlette(
        routes=[
            Route("/orgs/{org_id:int}/invoices", invoices),
            Route("/spaces/{ws_id}/docs", docs),
            Route("/broken/{org_id}", broken),
        ]
    )
    client = TestClient(
        WachtMiddleware(app, verifier=Verifier(issuer.config())), raise_server_exceptions=False
    )

    def call(path: str, token: str | None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = client.get(path, headers=headers)
        return response.status_code, response.json()

    _run(call, issuer)


def test_fastapi(issuer: Issuer) -> None:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from wacht_auth.integrations.fastapi import install, require_organization, require_workspace

    app = FastAPI()
    install(app, Verifier(issuer.config()))

    @app.get(
        "/orgs/{org_id}/invoices", dependencies=[Depends(require_organization(path_param="org_id"))]
    )
    async def invoices(org_id: int) -> dict[str, int]:
        return {"org": org_id}

    @app.get("/spaces/{ws_id}/docs", dependencies=[Depends(require_workspace(path_param="ws_id"))])
    async def docs(ws_id: str) -> dict[str, str]:
        return {}

    @app.get("/broken/{org_id}", dependencies=[Depends(require_organization(path_param="nope"))])
    async def broken(org_id: str) -> dict[str, str]:
        return {}

    client = TestClient(app, raise_server_exceptions=False)

    def call(path: str, token: str | None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = client.get(path, headers=headers)
        return response.status_code, response.json()

    _run(call, issuer)


def test_flask(issuer: Issuer) -> None:
    from flask import Flask, jsonify

    from wacht_auth.integrations.flask import Wacht, require_organization, require_workspace

    app = Flask(__name__)
    Wacht(app, verifier=Verifier(issuer.config()))

    @app.get("/orgs/<int:org_id>/invoices")
    @require_organization(path_param="org_id")
    def invoices(org_id: int) -> Any:
        return jsonify(org=org_id)

    @app.get("/spaces/<ws_id>/docs")
    @require_workspace(path_param="ws_id")
    def docs(ws_id: str) -> Any:
        return jsonify()

    @app.get("/broken/<org_id>")
    @require_organization(path_param="nope")
    def broken(org_id: str) -> Any:
        return jsonify()

    client = app.test_client()

    def call(path: str, token: str | None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = client.get(path, headers=headers)
        return response.status_code, response.get_json(silent=True)

    _run(call, issuer)


def _django_call(path: str, token: str | None) -> tuple[int, Any]:
    import json

    from django.test import Client

    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    response = Client(raise_request_exception=False).get(path, **headers)
    try:
        return response.status_code, json.loads(response.content)
    except ValueError:
        return response.status_code, None


def _django_urls() -> list[Any]:
    from django.http import JsonResponse
    from django.urls import path
    from django.views import View
    from rest_framework.response import Response  # type: ignore[import-untyped]
    from rest_framework.views import APIView  # type: ignore[import-untyped]

    from wacht_auth.integrations.django import (
        WachtRequiredMixin,
        require_organization,
        require_workspace,
    )
    from wacht_auth.integrations.drf import HasOrganization, WachtAuthentication

    @require_organization(path_param="org_id")
    def invoices(request: Any, org_id: int) -> JsonResponse:
        return JsonResponse({"org": org_id})

    @require_workspace(path_param="ws_id")
    async def docs(request: Any, ws_id: str) -> JsonResponse:
        return JsonResponse({})

    @require_organization(path_param="nope")
    def broken(request: Any, org_id: str) -> JsonResponse:
        return JsonResponse({})

    class MixinInvoices(WachtRequiredMixin, View):
        wacht_organization = PathParam("org_id")

        def get(self, request: Any, org_id: int) -> JsonResponse:
            return JsonResponse({"org": org_id})

    class ApiInvoices(APIView):  # type: ignore[misc]
        authentication_classes = [WachtAuthentication]
        permission_classes = [HasOrganization.with_(organization=PathParam("org_id"))]

        def get(self, request: Any, org_id: int) -> Response:
            return Response({"org": org_id})

    return [
        path("orgs/<int:org_id>/invoices", invoices),
        path("spaces/<ws_id>/docs", docs),
        path("broken/<org_id>", broken),
        path("mixin/orgs/<int:org_id>/invoices", MixinInvoices.as_view()),
        path("drf/orgs/<int:org_id>/invoices", ApiInvoices.as_view()),
    ]


urlpatterns: list[Any] = []


@pytest.fixture
def django_routes(issuer: Issuer) -> Iterator[None]:
    from django.test import override_settings

    urlpatterns[:] = _django_urls()
    settings = {
        "ROOT_URLCONF": __name__,
        "WACHT_AUTH": {"verifier": Verifier(issuer.config())},
        "REST_FRAMEWORK": {"EXCEPTION_HANDLER": "wacht_auth.integrations.drf.exception_handler"},
    }
    with override_settings(**settings):
        yield


def test_django_views(django_routes: None, issuer: Issuer) -> None:
    _run(_django_call, issuer)


@pytest.mark.parametrize("prefix", ["/mixin", "/drf"])
def test_django_mixins_and_drf(django_routes: None, issuer: Issuer, prefix: str) -> None:
    for org, status in (("77", 200), ("78", 403)):
        token = issuer.token("42", organization_id="77")
        got, body = _django_call(f"{prefix}/orgs/{org}/invoices", token)
        assert got == status
        if status == 403:
            assert _code(body) == "organization_required"
