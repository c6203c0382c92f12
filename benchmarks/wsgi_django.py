"""Django (WSGI) with our middleware, with none, and with a PyJWT middleware (issue 3).

One URLconf, four handler stacks with the same trivial view, called in-process through
Django's ``WSGIHandler`` (the callable ``get_wsgi_application()`` returns):

- no auth: no middleware, the view answers ``ok``;
- ours: our ``WachtMiddleware`` and ``@require_auth``, the view answers
  ``request.wacht.user_id``; once with the default verified-token cache and a repeated token,
  once with the cache off and a pool of distinct fresh RS256-2048 tokens;
- PyJWT: a hand-written middleware doing ``jwt.decode`` with a preloaded key, answering 401
  on failure and setting ``request.user_id``.

The stacks are otherwise bare (no session, CSRF or security middleware): the harshest setting
for the ratio, since every other middleware adds the same cost to both sides. Each app has
its own URLconf with its one view at ``/`` (``request.urlconf``): in a shared URLconf, every
app but the first would also pay for matching the routes listed before its own (~1 µs each).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test.utils import override_settings
from django.urls import path

from wacht_auth.integrations.django import require_auth
from wacht_auth.verifier import Verifier

from ._harness import Plan, Report, measure
from ._web import USER_ID, Fixture, PyJWTCheck, expect, framework_report, wsgi_call, wsgi_driver
from .core import tamper

__all__ = ["bench"]

#: The guard (issue 8): repeated token ≥ 0.88x no auth.
REPEATED_TARGET = 0.88

_OURS = "wacht_auth.integrations.django.WachtMiddleware"
_PYJWT = f"{__name__}.PyJWTMiddleware"


class PyJWTMiddleware:
    """What a developer writes by hand with PyJWT: a bearer-token check per request."""

    check: PyJWTCheck | None = None

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        assert self.check is not None
        user_id = self.check.user_id(request.META.get("HTTP_AUTHORIZATION"))
        if user_id is None:
            response = JsonResponse({"error": {"code": "unauthorized", "status": 401}}, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="api"'
            return response
        request.user_id = user_id  # type: ignore[attr-defined]
        return self.get_response(request)


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


@require_auth
def protected(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.wacht.user_id, content_type="text/plain")  # type: ignore[attr-defined]


def pyjwt_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.user_id, content_type="text/plain")  # type: ignore[attr-defined]


urlpatterns = [path("", plain)]  # ROOT_URLCONF; each handler uses its own (_handler)


def _ensure_configured() -> None:
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="benchmark-only",
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            DATABASES={},
            USE_I18N=False,
            LOGGING_CONFIG=None,
        )
        django.setup()


@contextmanager
def _settings(**values: Any) -> Iterator[None]:
    with override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"], **values):
        yield


@contextmanager
def _quiet_401s() -> Iterator[None]:
    """The set-up checks answer 401 on purpose; Django would log each as a warning."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _handler(
    view: Callable[[HttpRequest], HttpResponse],
    middleware: list[str],
    wacht: dict[str, Any] | None = None,
) -> WSGIHandler:
    """A handler whose requests resolve against a URLconf holding ``view`` alone, at ``/``."""
    urls = ModuleType(f"{__name__}.urls_{view.__name__}")
    urls.urlpatterns = [path("", view)]  # type: ignore[attr-defined]
    with _settings(MIDDLEWARE=middleware, WACHT_AUTH=wacht or {}):
        handler = WSGIHandler()
    # Django resolves against request.urlconf when the request has one (BaseHandler).
    handler.request_class = type("Request", (WSGIRequest,), {"urlconf": urls})
    return handler


def bench(fixture: Fixture, plan: Plan) -> Report:
    """Measure the Django table."""
    _ensure_configured()
    issuer = fixture.issuer
    PyJWTMiddleware.check = PyJWTCheck(issuer)
    with _settings(), _quiet_401s():
        plain_handler = _handler(plain, [])
        cached = {"verifier": Verifier(issuer.config())}
        repeated_handler = _handler(protected, [_OURS], cached)
        uncached = {"verifier": Verifier(issuer.config(token_cache_size=0))}
        fresh_handler = _handler(protected, [_OURS], uncached)
        pyjwt_handler = _handler(pyjwt_view, [_PYJWT])

        expect("no auth", wsgi_call(plain_handler, fixture.token), 200, b"ok")
        for name, handler in (
            ("ours", repeated_handler),
            ("ours", fresh_handler),
            ("PyJWT", pyjwt_handler),
        ):
            expect(name, wsgi_call(handler, fixture.token), 200, USER_ID.encode())
            expect(name, wsgi_call(handler, None), 401)
            expect(name, wsgi_call(handler, tamper(fixture.token)), 401)
        repeated = [fixture.token] * len(fixture.pool)
        measured = measure(
            [
                ("plain", wsgi_driver(plain_handler, repeated)),
                ("repeated", wsgi_driver(repeated_handler, repeated)),
                ("fresh", wsgi_driver(fresh_handler, fixture.pool)),
                ("pyjwt", wsgi_driver(pyjwt_handler, fixture.pool)),
            ],
            plan.rounds,
        )
    return framework_report("Django (WSGI)", plan, measured, REPEATED_TARGET)
