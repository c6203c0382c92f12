"""URLs of the Django page tests (``test_pages_django.py``): pages refused the Django way,
``request.user`` from the opt-in ``WachtUserMiddleware``, the sign-out views."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from wacht_auth.integrations.django import require_permission, sign_out


def page(request: HttpRequest) -> HttpResponse:
    state = request.wacht  # type: ignore[attr-defined]
    return HttpResponse(f"<p>{state.user_id}</p>")


@require_permission("reports:read", redirect=True)
def report(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<p>report</p>")


@require_permission("reports:read", redirect=True)
async def areport(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<p>report</p>")


@require_permission("reports:read")
def api_report(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


def me(request: HttpRequest) -> JsonResponse:
    user = request.user
    return JsonResponse(
        {
            "str": str(user),
            "is_authenticated": user.is_authenticated,
            "pk": user.pk,
            "id": user.id,
            "can_read": user.has_perm("reports:read"),
            "type": user.__class__.__name__,
        }
    )


async def ame(request: HttpRequest) -> JsonResponse:
    user = await request.auser()
    return JsonResponse({"str": str(user), "is_authenticated": user.is_authenticated})


def untouched(request: HttpRequest) -> HttpResponse:
    return HttpResponse("nobody looked")


@login_required
def django_login_required(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"hello {request.user}")


@permission_required("reports:read", raise_exception=True)
def django_permission_required(request: HttpRequest) -> HttpResponse:
    return HttpResponse("allowed")


urlpatterns = [
    path("page", page),
    path("report", report),
    path("areport", areport),
    path("api/report", api_report),
    path("me", me),
    path("ame", ame),
    path("untouched", untouched),
    path("login-required", django_login_required),
    path("permission-required", django_permission_required),
    path("sign-out", sign_out),
    path("sign-out-bye", sign_out, {"next": "/bye"}),
    path("asign-out", sign_out),
]
