"""URLs and views of the Django and DRF adapter tests.

Each contract route (``/public``, ``/protected``, ``/admin``, ``/org``) exists four times:
``/sync`` (function views), ``/async`` (async function views), ``/cbv`` (class-based views
with the mixins) and ``/acbv`` (async class-based views); ``/drf`` holds the DRF views.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path
from django.views import View
from rest_framework.request import Request  # type: ignore[import-untyped]
from rest_framework.response import Response  # type: ignore[import-untyped]
from rest_framework.views import APIView  # type: ignore[import-untyped]

from wacht_auth.integrations.django import (
    WachtPermissionRequiredMixin,
    WachtRequiredMixin,
    public,
    require_auth,
    require_organization,
    require_permission,
    require_scope,
    require_workspace,
)
from wacht_auth.integrations.drf import (
    HasOrganization,
    HasWachtPermission,
    HasWachtScope,
    IsWachtAuthenticated,
)

from .contract import tamper


def _body(request: HttpRequest) -> JsonResponse:
    state = request.wacht  # type: ignore[attr-defined]
    return JsonResponse({"user_id": state.user_id, "session_id": state.session_id})


async def _abody(request: HttpRequest) -> JsonResponse:
    state = await request.awacht()  # type: ignore[attr-defined]
    return JsonResponse({"user_id": state.user_id, "session_id": state.session_id})


# -- function views ---------------------------------------------------------------------------


@require_auth
def tamper_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(tamper(request.wacht))  # type: ignore[attr-defined]


@require_auth
async def atamper_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(tamper(await request.awacht()))  # type: ignore[attr-defined]


def public_view(request: HttpRequest) -> JsonResponse:
    return _body(request)


protected_view = require_auth(public_view)
admin_view = require_permission("invoices:write")(public_view)
org_view = require_organization()(public_view)


async def apublic_view(request: HttpRequest) -> JsonResponse:
    return await _abody(request)


aprotected_view = require_auth(apublic_view)
aadmin_view = require_permission("invoices:write")(apublic_view)
aorg_view = require_organization()(apublic_view)
workspace_view = require_workspace("5")(public_view)
aworkspace_view = require_workspace()(apublic_view)
granted_view = require_scope("invoices:read")(public_view)
strict_view = require_permission("a", "b", scope="workspace", require_all=True)(apublic_view)


def untouched_view(request: HttpRequest) -> HttpResponse:
    """Never looks at ``request.wacht``: must cost no verification."""
    return HttpResponse("ok")


@public
def marked_public_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


@public
async def amarked_public_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


async def twice_view(request: HttpRequest) -> JsonResponse:
    """Looks twice, sync and async: still one verification."""
    first = request.wacht.user_id  # type: ignore[attr-defined]
    second = (await request.awacht()).user_id  # type: ignore[attr-defined]
    return JsonResponse({"user_id": first, "same": first == second})


# -- class-based views ------------------------------------------------------------------------


class _Sync(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return _body(request)

    post = get


class _Async(View):
    async def get(self, request: HttpRequest) -> JsonResponse:
        return await _abody(request)

    post = get


class ProtectedView(WachtRequiredMixin, _Sync):
    pass


class AdminView(WachtPermissionRequiredMixin, _Sync):
    wacht_permissions = ("invoices:write",)


class OrgView(WachtRequiredMixin, _Sync):
    wacht_organization = True


class AProtectedView(WachtRequiredMixin, _Async):
    pass


class AAdminView(WachtPermissionRequiredMixin, _Async):
    wacht_permissions = ("invoices:write",)


class AOrgView(WachtRequiredMixin, _Async):
    wacht_organization = True


class AGrantedView(WachtRequiredMixin, _Async):
    wacht_scopes = ("invoices:read",)


class MisconfiguredView(WachtPermissionRequiredMixin, _Sync):
    """Forgot ``wacht_permissions``: ImproperlyConfigured."""


# -- Django REST framework --------------------------------------------------------------------


class DrfView(APIView):  # type: ignore[misc]  # DRF is untyped
    def get(self, request: Request) -> Response:
        user = request.user
        return Response(
            {
                "user_id": getattr(user, "user_id", None),
                "session_id": getattr(user, "session_id", None),
                "auth_is_session": request.auth is not None and request.auth.user_id == user.id,
                "state_user_id": request.wacht.user_id,
            }
        )

    post = get


class DrfPublic(DrfView):
    permission_classes: list[Any] = []


class DrfProtected(DrfView):
    permission_classes = [IsWachtAuthenticated]


class DrfAdmin(DrfView):
    permission_classes = [HasWachtPermission.with_permissions("invoices:write")]


class DrfOrg(DrfView):
    permission_classes = [IsWachtAuthenticated, HasOrganization]


class DrfGranted(DrfView):
    permission_classes = [HasWachtScope.with_(scopes=("invoices:read",))]


class DrfTamper(DrfView):
    permission_classes = [IsWachtAuthenticated]

    def get(self, request: Request) -> Response:
        answer = super().get(request).data
        return Response({**answer, **tamper(request.wacht)})


class DrfUnconfigured(DrfView):
    permission_classes = [HasWachtPermission]


def _routes(
    prefix: str, public: Any, protected: Any, admin: Any, org: Any, tamper: Any
) -> list[URLPattern]:
    return [
        path(f"{prefix}/public", public),
        path(f"{prefix}/protected", protected),
        path(f"{prefix}/admin", admin),
        path(f"{prefix}/org", org),
        path(f"{prefix}/tamper", tamper),
    ]


urlpatterns = [
    *_routes("sync", public_view, protected_view, admin_view, org_view, tamper_view),
    *_routes("async", apublic_view, aprotected_view, aadmin_view, aorg_view, atamper_view),
    *_routes(
        "cbv",
        _Sync.as_view(),
        ProtectedView.as_view(),
        AdminView.as_view(),
        OrgView.as_view(),
        tamper_view,
    ),
    *_routes(
        "acbv",
        _Async.as_view(),
        AProtectedView.as_view(),
        AAdminView.as_view(),
        AOrgView.as_view(),
        atamper_view,
    ),
    *_routes(
        "drf",
        DrfPublic.as_view(),
        DrfProtected.as_view(),
        DrfAdmin.as_view(),
        DrfOrg.as_view(),
        DrfTamper.as_view(),
    ),
    path("sync/page", require_auth(redirect=True)(public_view)),
    path("async/page", require_auth(redirect=True)(apublic_view)),
    path("sync/granted", granted_view),
    path("async/granted", AGrantedView.as_view()),
    path("drf/granted", DrfGranted.as_view()),
    path("sync/workspace", workspace_view),
    path("async/workspace", aworkspace_view),
    path("async/strict", strict_view),
    path("untouched", untouched_view),
    path("marked-public", marked_public_view),
    path("amarked-public", amarked_public_view),
    path("health/live", untouched_view),
    path("twice", twice_view),
    path("misconfigured", MisconfiguredView.as_view()),
    path("drf/unconfigured", DrfUnconfigured.as_view()),
]
