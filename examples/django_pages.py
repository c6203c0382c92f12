"""Server-rendered Django pages behind Wacht: template views signed in from Wacht's cookies.

A browser sends no bearer header. A visitor who is not signed in and opens a page is sent
(302) to Wacht's sign-in page with ``redirect_uri`` back here; the sign-in page sets the
``__session`` cookie, and the next page load exchanges it at the frontend API for a session
token, stored in ``__auth_<scope>`` so later loads need no exchange (``docs/pages.md``).

- ``/``: public; says who is signed in, if anyone.
- ``/app`` and everything under it: the page area (``protect_all`` + ``page_paths``).
- ``/account``: one page outside that area, guarded by ``require_auth(redirect=True)``.
- ``/app/admin``: a page that needs ``reports:admin``: a signed-in visitor without it gets
  the app's own ``403.html`` (Django's ``handler403``), not JSON.
- ``/sign-out``: the sign-out view (POST, the form on every page).
- ``/api/me``: an API route: anonymous callers get the 401 JSON, never a redirect.

Run it with ``WACHT_FRONTEND_API_URL=https://<your frontend host> python
examples/django_pages.py runserver`` and open ``http://localhost:8000/app``. In a project,
``SETTINGS`` goes into ``settings.py``, the views into ``views.py`` and the templates into
``templates/``.
"""

from __future__ import annotations

import sys
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path

from wacht_auth import Config
from wacht_auth.integrations.django import public, require_auth, require_permission, sign_out

# Inline so the example is one file (Django's locmem loader); usually files in templates/.
TEMPLATES = {
    "base.html": (
        "<!doctype html><html><head><title>{{ title }}</title></head><body>"
        "<h1>{{ title }}</h1>{% block content %}{% endblock %}</body></html>"
    ),
    "page.html": (
        '{% extends "base.html" %}{% block content %}'
        '<p>Signed in as <span id="user">{{ wacht.user_id }}</span></p>'
        '<p>Session <span id="session">{{ wacht.session_id }}</span></p>'
        '<form method="post" action="/sign-out"><button id="sign-out">Sign out</button></form>'
        "{% endblock %}"
    ),
    # Django's handler403 renders this for a page refusal (PermissionDenied).
    "403.html": '<!doctype html><h1 id="forbidden">You may not open this page</h1>',
    "home.html": (
        '{% extends "base.html" %}{% block content %}'
        "{% if wacht.is_authenticated %}"
        '<p>Signed in as <span id="user">{{ wacht.user_id }}</span></p>'
        '{% else %}<p id="user">Not signed in. <a href="/app">Open the app</a></p>{% endif %}'
        "{% endblock %}"
    ),
}

#: The Django settings of this app (``settings.py`` in a project).
SETTINGS: dict[str, Any] = {
    "DEBUG": False,
    "SECRET_KEY": "example-only",
    "ALLOWED_HOSTS": ["127.0.0.1", "localhost", "testserver"],
    "ROOT_URLCONF": __name__,
    "MIDDLEWARE": ["wacht_auth.integrations.django.WachtMiddleware"],
    "TEMPLATES": [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {"loaders": [("django.template.loaders.locmem.Loader", TEMPLATES)]},
        }
    ],
    # The deployment: "frontend_api_url" here, or WACHT_FRONTEND_API_URL in the environment.
    "WACHT_AUTH": {
        "protect_all": True,  # every view needs a signed-in caller ...
        "public_paths": ["/"],  # ... except the home page,
        "page_paths": ["/app/*"],  # and these are pages: anonymous visitors go to sign in
    },
}


def settings_for(config: Config | None = None) -> dict[str, Any]:
    """:data:`SETTINGS`, with ``config`` (a test's ``FrontendAPI.config()``) as the
    deployment in ``WACHT_AUTH``: for ``settings.configure`` or ``override_settings``."""
    wacht = dict(SETTINGS["WACHT_AUTH"])
    if config is not None:
        wacht["config"] = config
    return {**SETTINGS, "WACHT_AUTH": wacht}


def configure(config: Config | None = None) -> None:
    """Configure Django with this app's settings, once per process (``settings.configure``
    and ``django.setup``); does nothing when Django is configured already."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(**settings_for(config))
        django.setup()


def home(request: HttpRequest) -> HttpResponse:
    # Public: request.wacht is the visitor, signed in (from the cookies) or not.
    return render(request, "home.html", {"title": "Home", "wacht": request.wacht})  # type: ignore[attr-defined]


def dashboard(request: HttpRequest) -> HttpResponse:
    # Under page_paths: protect_all has sent anonymous visitors to sign in already.
    return render(request, "page.html", {"title": "Dashboard", "wacht": request.wacht})  # type: ignore[attr-defined]


def reports(request: HttpRequest) -> HttpResponse:
    return render(request, "page.html", {"title": "Reports", "wacht": request.wacht})  # type: ignore[attr-defined]


# Under protect_all a view outside page_paths answers 401 before it runs. This page is left
# to its own guard (public), which sends visitors to sign in instead, like login_required.
@public
@require_auth(redirect=True)
def account(request: HttpRequest) -> HttpResponse:
    return render(request, "page.html", {"title": "Account", "wacht": request.wacht})  # type: ignore[attr-defined]


# A page that needs a permission: a visitor without it gets 403.html (PermissionDenied).
@require_permission("reports:admin", redirect=True)
def admin(request: HttpRequest) -> HttpResponse:
    return render(request, "page.html", {"title": "Admin", "wacht": request.wacht})  # type: ignore[attr-defined]


def api_me(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user_id": request.wacht.user_id})  # type: ignore[attr-defined]


urlpatterns = [
    path("", home),
    path("app", dashboard),
    path("app/reports", reports),
    path("app/admin", admin),
    path("sign-out", sign_out),  # POST; open under protect_all
    path("account", account),
    path("api/me", api_me),
]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    configure()
    execute_from_command_line(sys.argv)
