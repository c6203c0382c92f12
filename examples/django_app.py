"""A single-file Django API behind Wacht: every view needs a signed-in caller unless public.

Run it with ``WACHT_FRONTEND_API_URL=https://<your frontend host> python
examples/django_app.py runserver``, then call it with ``Authorization: Bearer <session token>``.
In a real project, ``SETTINGS`` goes into ``settings.py`` and the views into ``views.py``.
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path

SETTINGS: dict[str, Any] = {
    "DEBUG": False,
    "SECRET_KEY": "example-only",
    "ALLOWED_HOSTS": ["127.0.0.1", "localhost", "testserver"],
    "ROOT_URLCONF": __name__,
    "MIDDLEWARE": ["wacht_auth.integrations.django.WachtMiddleware"],
    # Config fields (frontend_api_url, audience …) may go here too; else the environment.
    "WACHT_AUTH": {"protect_all": True, "public_paths": ["/health"]},
}
if not settings.configured:
    settings.configure(**SETTINGS)

from wacht_auth.integrations.django import require_permission  # noqa: E402


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})  # listed in public_paths: open


def me(request: HttpRequest) -> JsonResponse:
    wacht = request.wacht  # type: ignore[attr-defined]  # protect-all: always signed in here
    return JsonResponse({"user_id": wacht.user_id, "organization_id": wacht.organization_id})


@require_permission("invoices:write")
def create_invoice(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"created_by": request.wacht.user_id}, status=201)  # type: ignore[attr-defined]


urlpatterns = [path("health", health), path("me", me), path("invoices", create_invoice)]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
