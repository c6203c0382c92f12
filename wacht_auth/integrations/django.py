"""Django adapter: one middleware for WSGI and ASGI, a lazy ``request.wacht``, decorators, mixins.

Add ``"wacht_auth.integrations.django.WachtMiddleware"`` to ``MIDDLEWARE`` and configure
``settings.WACHT_AUTH`` (or the environment); see ``docs/django.md``. The request layer
(:class:`~wacht_auth.auth.Authenticator`) decides; this module only translates.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import DisallowedHost, ImproperlyConfigured
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.functional import SimpleLazyObject

from ..auth import Authenticator, AuthState, Guards, Redirect, Requirement, error_response
from ..config import DJANGO_SETTING, Settings
from ..errors import ConfigurationError, WachtAuthError
from ..session import PermissionScope

__all__ = [
    "WachtMiddleware",
    "WachtPermissionRequiredMixin",
    "WachtRequiredMixin",
    "aauth_state",
    "auth_state",
    "authenticator",
    "public",
    "require_auth",
    "require_organization",
    "require_permission",
    "require_workspace",
]

_V = TypeVar("_V", bound=Callable[..., Any])


@functools.cache
def authenticator() -> Authenticator:
    """The request layer built from ``settings.WACHT_AUTH`` over the environment, once per
    process (again when a test overrides ``WACHT_AUTH``); a bad or missing setting raises
    :class:`~django.core.exceptions.ImproperlyConfigured` naming what to edit."""
    try:
        where = f"settings.{DJANGO_SETTING}"
        loaded = Settings.load(getattr(settings, DJANGO_SETTING, None), where=where)
        layer = Authenticator.from_settings(loaded)
    except ConfigurationError as exc:
        raise ImproperlyConfigured(f"wacht_auth: {exc.message}") from exc
    if layer.prefetch:
        layer.prefetch_keys()
    return layer


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == DJANGO_SETTING:
        authenticator.cache_clear()


setting_changed.connect(_settings_changed)


class _View:
    """The request layer's view of an ``HttpRequest`` (:class:`~wacht_auth.auth.RequestView`)."""

    __slots__ = ("method", "path", "request")

    def __init__(self, request: HttpRequest) -> None:
        self.request, self.method, self.path = request, request.method or "GET", request.path_info

    def header(self, name: str) -> str | None:
        return self.request.META.get("HTTP_" + name.upper().replace("-", "_"))

    def cookie(self, name: str) -> str | None:
        return self.request.COOKIES.get(name)

    def own_origin(self) -> str | None:
        try:
            return f"{self.request.scheme}://{self.request.get_host()}"
        except DisallowedHost:  # not our host: no origin is ours
            return None

    def client_ip(self) -> str | None:
        return self.request.META.get("REMOTE_ADDR")

    def query(self) -> str:
        return str(self.request.META.get("QUERY_STRING", ""))


class _Lazy:
    """``request.wacht``'s value, made on first use (like ``request.user``), at most once.

    The request is held weakly: it holds this object, and a cycle would leave every request
    to the garbage collector instead of freeing it when the response is sent.
    """

    __slots__ = ("layer", "request", "state")

    def __init__(self, layer: Authenticator, request: HttpRequest, state: AuthState | None) -> None:
        self.layer, self.state = layer, state
        self.request = weakref.ref(request)

    def _view(self) -> _View:
        request = self.request()
        if request is None:
            raise RuntimeError("request.wacht was first used after its request was gone")
        return _View(request)

    def __call__(self, needs: tuple[str, ...] = ()) -> AuthState:
        state = self.state
        if state is None:
            view = self._view()
            state = self.state = self.layer.authenticate(view, required_permissions=needs)
        return state

    async def aresolve(self, needs: tuple[str, ...] = ()) -> AuthState:
        state = self.state
        if state is None:
            view = self._view()
            state = self.state = await self.layer.aauthenticate(view, required_permissions=needs)
        return state


def _lazy(request: HttpRequest, layer: Authenticator | None = None) -> _Lazy:
    lazy = request.__dict__.get("_wacht")
    if lazy is None:
        layer = layer or authenticator()
        # A repeated bearer token is answered now (one cache lookup): the view then reads a
        # plain AuthState. Only a real verification waits until someone looks.
        state = layer.cached(request.META.get("HTTP_AUTHORIZATION"))
        lazy = request._wacht = _Lazy(layer, request, state)  # type: ignore[attr-defined]
        request.wacht = state or SimpleLazyObject(lazy)  # type: ignore[attr-defined]
        request.awacht = lazy.aresolve  # type: ignore[attr-defined]
    return lazy


def auth_state(request: HttpRequest, required_permissions: tuple[str, ...] = ()) -> AuthState:
    """The request's :class:`~wacht_auth.auth.AuthState` (verified now if not yet; an API
    key is then checked with ``required_permissions``)."""
    lazy = request.__dict__.get("_wacht") or _lazy(request)
    state = lazy.state  # the common case: attached and resolved by the middleware
    return state if state is not None else lazy(required_permissions)


async def aauth_state(
    request: HttpRequest, required_permissions: tuple[str, ...] = ()
) -> AuthState:
    """Async twin of :func:`auth_state`, same as ``await request.awacht()``."""
    return await _lazy(request).aresolve(required_permissions)


def _with_headers(lazy: _Lazy, response: HttpResponse) -> HttpResponse:
    """The state's headers on the response: the gateway's rate-limit state, the cookies of a
    session exchange (through ``response.cookies``: Django sends one value per header)."""
    state = lazy.state
    if state is not None and state.response_headers:
        for name, value in state.response_headers:
            if name.lower() == "set-cookie":
                response.cookies.load(value)
            else:
                response[name] = value
    return response


def _redirect(request: HttpRequest, location: str, state: AuthState) -> HttpResponse:
    return HttpResponseRedirect(location)  # the middleware adds the state's cookies


def _sign_in(request: HttpRequest) -> str | None:
    return _lazy(request).layer.sign_in_location(_View(request))


def _respond(error: WachtAuthError, *, token_presented: bool = True) -> HttpResponse:
    status, headers, body = error_response(error, token_presented=token_presented)
    return HttpResponse(body, status=status, headers=headers)


def _refuse(request: HttpRequest, error: WachtAuthError, state: AuthState) -> HttpResponse:
    return _respond(error, token_presented=state.token_presented)


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
        gateway's rate-limit headers (API keys, OAuth tokens) go on the response."""
        lazy = _lazy(request, self.layer)
        if not self.is_async:
            response = self.get_response(request)
            state = lazy.state
            return (
                response
                if state is None or not state.response_headers
                else (_with_headers(lazy, response))
            )

        async def respond() -> Any:
            await lazy.aresolve()
            return _with_headers(lazy, await self.get_response(request))

        return respond()

    def _protect(self, request: HttpRequest, view: Any, *args: Any) -> HttpResponse | None:
        """Protect-all mode: the layer decides whether this route may be called."""
        state = _lazy(request)()  # resolved already in an async stack
        refusal = self.layer.refusal(
            _View(request), state, public_route=getattr(view, "wacht_public", False)
        )
        if isinstance(refusal, Redirect):
            return _redirect(request, refusal.location, state)
        return None if refusal is None else _refuse(request, refusal, state)


_guards: Guards[HttpRequest] = Guards(
    state=auth_state,
    astate=aauth_state,
    refuse=_refuse,
    redirect=_redirect,
    sign_in=_sign_in,
    is_async=iscoroutinefunction,
)
require_auth = _guards.require_auth
require_permission = _guards.require_permission
require_organization = _guards.require_organization
require_workspace = _guards.require_workspace


def public(view: _V) -> _V:
    """Leave ``view`` open in protect-all mode (like Django's ``login_not_required``)."""
    view.wacht_public = True  # type: ignore[attr-defined]  # a marker on any callable
    return view


class WachtRequiredMixin:
    """Class-based views: require a signed-in caller, and what the ``wacht_*`` attributes say."""

    wacht_permissions: tuple[str, ...] = ()
    wacht_permission_scope: PermissionScope | None = None
    wacht_require_all: bool = False
    wacht_organization: bool | str = False
    wacht_workspace: bool | str = False
    wacht_accept: tuple[str, ...] | None = None  # credential kinds taken (None: the app's)
    wacht_redirect: bool = False  # a page: visitors who are not signed in go to sign in

    def get_wacht_requirement(self) -> Requirement:
        """The :class:`~wacht_auth.auth.Requirement` built from the ``wacht_*`` attributes."""
        return Requirement(
            tuple(self.wacht_permissions),
            self.wacht_permission_scope,
            self.wacht_require_all,
            self.wacht_organization,
            self.wacht_workspace,
            accept=self.wacht_accept,
            redirect=self.wacht_redirect,
        )

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
        if not self.wacht_permissions:
            raise ImproperlyConfigured(f"{type(self).__name__} must set wacht_permissions")
        return super().get_wacht_requirement()


# ---- webhooks
from ..webhooks import Receiver, webhook_view  # noqa: E402  # one block, carried over whole

__all__ += ["webhook", "webhook_receiver"]


@functools.cache
def webhook_receiver() -> Receiver:
    """The :class:`~wacht_auth.webhooks.Receiver` of ``settings.WACHT_AUTH["webhook_secret"]``
    (over ``WACHT_WEBHOOK_SECRET``), once per process (again when a test overrides it)."""
    try:
        loaded = Settings.load(getattr(settings, DJANGO_SETTING, None), where="settings.WACHT_AUTH")
        return Receiver.from_settings(loaded)
    except ConfigurationError as exc:
        raise ImproperlyConfigured(f"wacht_auth: {exc.message}") from exc


def _webhook_settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == DJANGO_SETTING:
        webhook_receiver.cache_clear()


setting_changed.connect(_webhook_settings_changed)


def _webhook_refused(error: WachtAuthError) -> HttpResponse:
    status, headers, body = error_response(error)
    return HttpResponse(body, status=status, headers=headers)


def webhook(view: _V | None = None, /, *, receiver: Receiver | None = None) -> Any:
    """Make a view a Wacht webhook receiver: CSRF-exempt, POST only, ``view(request, event)``
    called with the verified :class:`~wacht_auth.webhooks.Event` (sync or async views);
    refusals answer the JSON error envelope. A view returning ``None`` answers 204."""

    def decorate(view: _V) -> _V:
        run = webhook_view(
            view,
            receiver=(lambda: receiver) if receiver else webhook_receiver,
            read=lambda args: (args[0].method, args[0].headers, lambda: args[0].body),
            respond=lambda result: HttpResponse(status=204) if result is None else result,
            refuse=_webhook_refused,
            position=1,
            is_async=iscoroutinefunction(view),
        )
        run.csrf_exempt = True  # type: ignore[attr-defined]  # what @csrf_exempt sets
        return run  # type: ignore[return-value]

    return decorate if view is None else decorate(view)
