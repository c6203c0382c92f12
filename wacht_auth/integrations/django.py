"""Django adapter: one middleware for WSGI and ASGI, a lazy ``request.wacht``, decorators, mixins.

Add ``"wacht_auth.integrations.django.WachtMiddleware"`` to ``MIDDLEWARE`` and configure
``settings.WACHT_AUTH`` (or the environment); see ``docs/django.md``.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse

from ..auth import (
    AuthState,
    PublicPaths,
    Requirement,
    TokenSource,
    aauthenticate,
    authenticate,
    cached_session,
    find_token,
)
from ..auth import error_response as _error_response
from ..config import Config
from ..errors import ConfigurationError, WachtAuthError
from ..session import PermissionScope, Session
from ..verifier import Verifier

__all__ = [
    "WachtMiddleware",
    "WachtPermissionRequiredMixin",
    "WachtRequiredMixin",
    "WachtSettings",
    "aauth_state",
    "auth_state",
    "load_settings",
    "public",
    "require_auth",
    "require_organization",
    "require_permission",
    "require_workspace",
]

_V = TypeVar("_V", bound=Callable[..., Any])
_ADAPTER_KEYS = frozenset({"protect_all", "public_paths", "prefetch", "config", "verifier"})
_SIGNED_IN = Requirement()
logger = logging.getLogger("wacht_auth")
_CONFIG_KEYS = frozenset(f.name for f in fields(Config))


@dataclass(frozen=True)
class WachtSettings:
    """``settings.WACHT_AUTH``, validated: the verifier (built once) and the protect-all mode."""

    verifier: Any  # a Verifier, or any object with .config, .verify and .averify
    protect_all: bool
    public_paths: PublicPaths


def _improperly(problem: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f"wacht_auth: {problem}. Edit settings.WACHT_AUTH, e.g. WACHT_AUTH = "
        '{"frontend_api_url": "https://<your frontend API host>"}, or set WACHT_FRONTEND_API_URL'
    )


@functools.cache
def load_settings() -> WachtSettings:
    """Read ``settings.WACHT_AUTH`` (keys case-insensitive) or, when absent, the environment.

    Built once per process (and again when a test overrides ``WACHT_AUTH``); a missing or bad
    setting raises :class:`~django.core.exceptions.ImproperlyConfigured` naming it.
    """
    raw = getattr(settings, "WACHT_AUTH", None) or {}
    if not isinstance(raw, Mapping):
        raise _improperly(f"settings.WACHT_AUTH must be a dict, got {type(raw).__name__}")
    values = {str(key).lower(): value for key, value in raw.items()}
    adapter = {key: values.pop(key) for key in _ADAPTER_KEYS & values.keys()}
    if unknown := sorted(values.keys() - _CONFIG_KEYS):
        raise _improperly(f"unknown key(s) in settings.WACHT_AUTH: {', '.join(unknown)}")
    if values and ("config" in adapter or "verifier" in adapter):
        raise _improperly("give either 'config'/'verifier' or Config fields, not both")
    paths = adapter.get("public_paths", ())
    if isinstance(paths, str) or not all(isinstance(p, str) for p in paths):
        raise _improperly("WACHT_AUTH['public_paths'] must be a list of paths")
    try:
        verifier = adapter.get("verifier") or Verifier(
            adapter.get("config") or Config.from_env(**values)
        )
    except ConfigurationError as exc:
        raise _improperly(exc.message) from exc
    if adapter.get("prefetch"):
        try:
            verifier.prefetch()
        except WachtAuthError as error:  # not fatal: keys are fetched again on first need
            logger.warning("wacht_auth: key prefetch at start-up failed: %s", error)
    return WachtSettings(verifier, bool(adapter.get("protect_all")), PublicPaths(paths))


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "WACHT_AUTH":
        load_settings.cache_clear()


setting_changed.connect(_settings_changed)


class _Field:
    """A field of :class:`_LazyState`: read before resolution, it resolves (non-data
    descriptor: afterwards the instance dict answers, without a call)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, state: _LazyState | None, owner: type | None = None) -> Any:
        return self if state is None else getattr(state.resolve(), self.name)


class _LazyState(AuthState):
    """``request.wacht``: verified on first use, like ``request.user``, and at most once."""

    session = _Field()  # shadow AuthState's slots: resolution fills the instance dict
    error = _Field()
    token_presented = _Field()

    def __init__(self, conf: WachtSettings, request: HttpRequest) -> None:
        # The request is held weakly (no request <-> state cycle: it is freed by refcount);
        # META (the WSGI environ, or a dict) holds no reference back to it.
        self._conf, self._request = conf, weakref.ref(request)
        self._meta: dict[str, Any] | None = request.META  # None once resolved

    def _set(self, session: Session | None, error: WachtAuthError | None, sent: bool) -> bool:
        self.session, self.error, self.token_presented, self._meta = session, error, sent, None
        return True

    def _from_cache(self, meta: dict[str, Any]) -> bool:
        """Resolve now if the bearer token is a repeated one the verifier's cache holds: the
        common case, answered without I/O, a coroutine or the CSRF inputs."""
        hit = cached_session(self._conf.verifier, meta.get("HTTP_AUTHORIZATION"))
        return hit is not None and self._set(hit, None, True)

    def _inputs(self, meta: dict[str, Any]) -> tuple[TokenSource | None, dict[str, Any]]:
        request, config = self._request(), self._conf.verifier.config
        if request is None:
            raise RuntimeError("request.wacht was first used after its request was gone")
        cookie = lambda name: request.COOKIES.get(name)  # noqa: E731  # parsed only if needed
        source = find_token(config, meta.get("HTTP_AUTHORIZATION"), cookie)
        if source is None or not source.from_cookie:  # origins matter for cookie tokens only
            return source, {"config": config}
        return source, {
            "method": request.method or "GET",
            "origin": meta.get("HTTP_ORIGIN"),
            "referer": meta.get("HTTP_REFERER"),
            "own_origin": f"{request.scheme}://{request.get_host()}",
            "config": config,
        }

    def resolve(self) -> AuthState:
        """Verify now unless done already; returns this state, resolved."""
        meta = self._meta
        if meta is not None and not self._from_cache(meta):
            source, options = self._inputs(meta)
            state = authenticate(self._conf.verifier, source, **options)
            self._set(state.session, state.error, state.token_presented)
        return self

    async def aresolve(self) -> AuthState:
        """:meth:`resolve` with :meth:`~wacht_auth.verifier.Verifier.averify`."""
        meta = self._meta
        if meta is not None and not self._from_cache(meta):
            source, options = self._inputs(meta)
            state = await aauthenticate(self._conf.verifier, source, **options)
            self._set(state.session, state.error, state.token_presented)
        return self


def _attach(request: HttpRequest, conf: WachtSettings) -> _LazyState:
    state = request.wacht = _LazyState(conf, request)  # type: ignore[attr-defined]
    request.awacht = state.aresolve  # type: ignore[attr-defined]
    return state


def _lazy(request: HttpRequest) -> _LazyState:
    state = getattr(request, "wacht", None)  # not __dict__: that would build a dict
    return state if isinstance(state, _LazyState) else _attach(request, load_settings())


def auth_state(request: HttpRequest) -> AuthState:
    """The request's :class:`~wacht_auth.auth.AuthState` (verified now if not yet)."""
    return _lazy(request).resolve()


async def aauth_state(request: HttpRequest) -> AuthState:
    """Async twin of :func:`auth_state`, same as ``await request.awacht()``."""
    return await _lazy(request).aresolve()


def _respond(error: WachtAuthError, *, token_presented: bool = True) -> HttpResponse:
    status, headers, body = _error_response(error, token_presented=token_presented)
    return HttpResponse(body, status=status, headers=headers)


def _deny(requirement: Requirement, state: AuthState) -> HttpResponse | None:
    try:
        requirement.check(state)
    except WachtAuthError as error:
        return _respond(error, token_presented=state.token_presented)
    return None


class WachtMiddleware:
    """Attach a lazy ``request.wacht`` and ``request.awacht()``; in protect-all mode, refuse
    unauthenticated calls to every view not marked :func:`public` nor under ``public_paths``."""

    sync_capable = True
    async_capable = True
    process_view: Callable[..., Any]  # set only in protect-all mode

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.conf = load_settings()  # start-up: ImproperlyConfigured surfaces here
        is_async = iscoroutinefunction(get_response)
        if is_async:
            markcoroutinefunction(self)
        if self.conf.protect_all:  # Django calls process_view only when the method exists
            self.process_view = self._aprotect if is_async else self._protect

    def __call__(self, request: HttpRequest) -> Any:
        """Attach the state; in async mode ``get_response`` returns the coroutine we pass on."""
        _attach(request, self.conf)
        return self.get_response(request)

    def _open(self, request: HttpRequest, view: Callable[..., Any]) -> bool:
        # CORS preflights never carry credentials (Fetch standard, "CORS-preflight request").
        return (
            request.method == "OPTIONS"
            or getattr(view, "wacht_public", False)
            or request.path_info in self.conf.public_paths
        )

    def _protect(self, request: HttpRequest, view: Any, *args: Any) -> HttpResponse | None:
        return None if self._open(request, view) else _deny(_SIGNED_IN, auth_state(request))

    async def _aprotect(self, request: HttpRequest, view: Any, *args: Any) -> HttpResponse | None:
        if self._open(request, view):
            return None
        return _deny(_SIGNED_IN, await aauth_state(request))


def _guard(requirement: Requirement) -> Callable[[_V], _V]:
    signed_in_only = requirement == _SIGNED_IN  # then a session is all there is to check

    def decorate(view: _V) -> _V:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                denied = _deny(requirement, await aauth_state(request))
                return denied or await view(request, *args, **kwargs)

            return cast("_V", async_view)

        @functools.wraps(view)
        def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            state = _lazy(request).resolve()
            if state.session is None or not signed_in_only:  # the check, when there is one
                denied = _deny(requirement, state)
                if denied is not None:
                    return denied
            return view(request, *args, **kwargs)

        return cast("_V", sync_view)

    return decorate


def require_auth(view: _V) -> _V:
    """Answer 401 (with the failed token's precise code) unless the caller is signed in."""
    return _guard(_SIGNED_IN)(view)


def require_permission(
    *permissions: str, scope: PermissionScope | None = None, require_all: bool = False
) -> Callable[[_V], _V]:
    """Answer 403 ``permission_denied`` unless the caller holds one (or all) of ``permissions``."""
    return _guard(Requirement(permissions, scope, require_all))


def require_organization(organization_id: str | None = None) -> Callable[[_V], _V]:
    """Answer 403 ``organization_required`` without an active (or this) organization."""
    return _guard(Requirement(organization=organization_id or True))


def require_workspace(workspace_id: str | None = None) -> Callable[[_V], _V]:
    """Answer 403 ``workspace_required`` without an active (or this) workspace."""
    return _guard(Requirement(workspace=workspace_id or True))


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

    def get_wacht_requirement(self) -> Requirement:
        """The :class:`~wacht_auth.auth.Requirement` built from the ``wacht_*`` attributes."""
        return Requirement(
            tuple(self.wacht_permissions),
            self.wacht_permission_scope,
            self.wacht_require_all,
            self.wacht_organization,
            self.wacht_workspace,
        )

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        """Check the requirement (awaiting it for async views), then dispatch as usual."""
        requirement, dispatch = self.get_wacht_requirement(), super().dispatch  # type: ignore[misc]
        if not getattr(self, "view_is_async", False):
            return _deny(requirement, auth_state(request)) or dispatch(request, *args, **kwargs)

        async def run() -> Any:
            denied = _deny(requirement, await aauth_state(request))
            return denied or await dispatch(request, *args, **kwargs)

        return run()


class WachtPermissionRequiredMixin(WachtRequiredMixin):
    """Like Django's ``PermissionRequiredMixin``: ``wacht_permissions`` must be set."""

    def get_wacht_requirement(self) -> Requirement:
        """As the base class, insisting that ``wacht_permissions`` names something."""
        if not self.wacht_permissions:
            raise ImproperlyConfigured(f"{type(self).__name__} must set wacht_permissions")
        return super().get_wacht_requirement()
