"""Django adapter: one middleware for WSGI and ASGI, a lazy ``request.wacht``, decorators, mixins.

Add ``"wacht_auth.integrations.django.WachtMiddleware"`` to ``MIDDLEWARE`` and configure
``settings.WACHT_AUTH`` (or the environment); see ``docs/django.md``. The request layer
(:class:`~wacht_auth.auth.Authenticator`) decides; this module only translates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import DisallowedHost, ImproperlyConfigured, PermissionDenied
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.functional import SimpleLazyObject

from ..auth import (
    Authenticator,
    AuthState,
    Guards,
    LazyState,
    Redirect,
    Requirement,
    configure,
    error_response,
    public,
)
from ..auth.state import PageError, Refused
from ..errors import ConfigurationError, WachtAuthError
from ..settings import DJANGO_SETTING
from ._django_pages import WachtUser, WachtUserMiddleware, _with_headers, sign_out
from ._wsgi import EnvironView

__all__ = [
    "WachtMiddleware",
    "WachtPermissionRequiredMixin",
    "WachtRequiredMixin",
    "WachtUser",
    "WachtUserMiddleware",
    "aauth_state",
    "auth_state",
    "authenticator",
    "public",
    "require_auth",
    "require_organization",
    "require_permission",
    "require_scope",
    "require_workspace",
    "sign_out",
    "webhook",
    "webhook_receiver",
]

_V = TypeVar("_V", bound=Callable[..., Any])
_WHERE = f"settings.{DJANGO_SETTING}"


@functools.cache
def authenticator() -> Authenticator:
    """The request layer built from ``settings.WACHT_AUTH`` over the environment, once per
    process (again when a test overrides ``WACHT_AUTH``); a bad or missing setting raises
    :class:`~django.core.exceptions.ImproperlyConfigured` naming what to edit."""
    try:
        layer = configure(getattr(settings, DJANGO_SETTING, None), where=_WHERE)
    except ConfigurationError as exc:
        raise ImproperlyConfigured(f"wacht_auth: {exc.message}") from exc
    if layer.prefetch:
        layer.prefetch_keys()
    return layer


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == DJANGO_SETTING:
        authenticator.cache_clear()
        webhook_receiver.cache_clear()


setting_changed.connect(_settings_changed)


class _View(EnvironView):
    """The request layer's view of an ``HttpRequest``: its ``META``, with the scheme and host
    Django decided (``SECURE_PROXY_SSL_HEADER``, ``ALLOWED_HOSTS``)."""

    __slots__ = ("request",)

    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request.META, request.path_info)
        self.request = request

    def cookie(self, name: str) -> str | None:
        return self.request.COOKIES.get(name)

    @property
    def scheme(self) -> str:
        return self.request.scheme or "http"

    def host(self) -> str | None:
        try:
            return self.request.get_host()
        except DisallowedHost:  # not our host: no origin is ours
            return None


def _lazy(request: HttpRequest, layer: Authenticator | None = None) -> LazyState:
    lazy = request.__dict__.get("_wacht")
    if lazy is None:
        layer = layer or authenticator()
        # A repeated bearer token is answered now (one cache lookup): the view then reads a
        # plain AuthState. Only a real verification waits until someone looks.
        state = layer.lookup(request.META.get("HTTP_AUTHORIZATION"))
        lazy = request._wacht = LazyState(layer, request, _View, state=state)  # type: ignore[attr-defined]
        request.wacht = state or SimpleLazyObject(lazy)  # type: ignore[attr-defined]
        request.awacht = lazy.aget  # type: ignore[attr-defined]
    return lazy


def auth_state(request: HttpRequest, required_permissions: tuple[str, ...] = ()) -> AuthState:
    """The request's :class:`~wacht_auth.auth.AuthState` (verified now if not yet; an API
    key is then checked with ``required_permissions``)."""
    return _lazy(request).get(required_permissions)


async def aauth_state(
    request: HttpRequest, required_permissions: tuple[str, ...] = ()
) -> AuthState:
    """Async twin of :func:`auth_state`, same as ``await request.awacht()``."""
    return await _lazy(request).aget(required_permissions)


def _refuse(request: HttpRequest, refusal: Refused, state: AuthState) -> HttpResponse:
    if isinstance(refusal, PageError):  # Django's handler403 answers (the app's 403.html)
        raise PermissionDenied(refusal.error.code)
    if isinstance(refusal, Redirect):
        return HttpResponseRedirect(refusal.location)  # the middleware adds the cookies
    return _json(refusal, state.token_presented)


def _json(error: WachtAuthError, token_presented: bool = True) -> HttpResponse:
    status, headers, body = error_response(error, token_presented=token_presented)
    return HttpResponse(body, status=status, headers=headers)


class WachtMiddleware:
    """Attach a lazy ``request.wacht`` and ``request.awacht()`` (in an async stack the state is
    verified before the view, with ``averify``: never a blocking key fetch on the loop); in
    protect-all mode, refuse unauthenticated calls to every view not marked :func:`public`."""

    sync_capable = True
    async_capable = True
    process_view: Callable[..., HttpResponse | None]  # set only in protect-all mode

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.layer = authenticator()  # start-up: ImproperlyConfigured surfaces here
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        if self.layer.protect_all:  # Django calls process_view only when the method exists
            self.process_view = self._protect

    def __call__(self, request: HttpRequest) -> Any:
        """Attach the state; in async mode, resolve it first, then await the view. The
        state's headers (rate limits, an exchange's cookies) go on the response."""
        lazy = _lazy(request, self.layer)
        if not self.is_async:  # a development-session link is exchanged and made clean first
            query = request.META.get("QUERY_STRING", "")
            early = lazy.get() if self.layer.dev_link(request.method or "", query) else None
            clean = early and early.redirect and HttpResponseRedirect(early.redirect)
            response, state = clean or self.get_response(request), lazy.state
            return response if state is None else _with_headers(state, response)

        async def respond() -> Any:
            state = await lazy.aget()
            clean = state.redirect and HttpResponseRedirect(state.redirect)
            return _with_headers(state, clean or await self.get_response(request))

        return respond()

    def _protect(self, request: HttpRequest, view: Any, *args: Any) -> HttpResponse | None:
        """Protect-all mode: the layer decides whether this route may be called."""
        state = _lazy(request).get()  # resolved already in an async stack
        public_route = getattr(view, "wacht_public", False)
        refusal = self.layer.refusal(_View(request), state, public_route=public_route)
        return None if refusal is None else _refuse(request, refusal, state)


_guards: Guards[HttpRequest] = Guards(
    state=auth_state,
    astate=aauth_state,
    refuse=_refuse,
    sign_in=lambda request: _lazy(request).layer.handshake.sign_in_location(_View(request)),
    is_async=iscoroutinefunction,
)
require_auth = _guards.require_auth
require_permission = _guards.require_permission
require_scope = _guards.require_scope
require_organization = _guards.require_organization
require_workspace = _guards.require_workspace


class WachtRequiredMixin:
    """Class-based views: require a signed-in caller and what the ``wacht_*`` attributes say
    (``wacht_permissions``, ``wacht_scope``, ``wacht_require_all``, ``wacht_organization``,
    ``wacht_workspace``, ``wacht_accept``, ``wacht_redirect``, ``wacht_scopes``: the names of
    :meth:`~wacht_auth.auth.Requirement.of`)."""

    def get_wacht_requirement(self) -> Requirement:
        """The :class:`~wacht_auth.auth.Requirement` the ``wacht_*`` attributes name."""
        return Requirement.of(self, "wacht_")

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        """Check the requirement (awaiting it for async views), then dispatch as usual."""
        guard = _guards.guard(self.get_wacht_requirement())
        dispatch = super().dispatch  # type: ignore[misc]
        if getattr(self, "view_is_async", False):

            async def run(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                return await dispatch(request, *args, **kwargs)

            return guard(run)(request, *args, **kwargs)
        return guard(lambda request, *a, **k: dispatch(request, *a, **k))(request, *args, **kwargs)


class WachtPermissionRequiredMixin(WachtRequiredMixin):
    """Like Django's ``PermissionRequiredMixin``: ``wacht_permissions`` must be set."""

    def get_wacht_requirement(self) -> Requirement:
        """As the base class, insisting that ``wacht_permissions`` names something."""
        if not getattr(self, "wacht_permissions", ()):
            raise ImproperlyConfigured(f"{type(self).__name__} must set wacht_permissions")
        return super().get_wacht_requirement()


from ._django_webhooks import webhook, webhook_receiver  # noqa: E402  # re-exported
