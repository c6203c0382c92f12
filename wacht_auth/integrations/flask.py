"""Flask: ``Wacht(app)`` attaches ``request.wacht`` and ``g.wacht`` (an
:class:`~wacht_auth.auth.AuthState`, verified lazily, at most once per request); decorators
require what a view needs; every :class:`~wacht_auth.WachtAuthError` is answered as JSON.

Settings: ``app.config["WACHT_<FIELD>"]`` for each :class:`~wacht_auth.Config` field (plus
``WACHT_PUBLISHABLE_KEY``, ``WACHT_FRONTEND_HOST``, ``WACHT_JWT_KEY``), then the environment.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from flask import Flask, Request, Response, current_app, has_request_context, request

from ..auth import (
    AuthState,
    PublicPaths,
    Requirement,
    authenticate,
    cached_state,
    error_response,
    find_token,
)
from ..config import Config, decode_publishable_key
from ..errors import ConfigurationError, WachtAuthError
from ..session import PermissionScope
from ..verifier import Verifier

__all__ = [
    "Wacht",
    "public",
    "require_auth",
    "require_organization",
    "require_permission",
    "require_workspace",
]

F = TypeVar("F", bound=Callable[..., Any])
_G = TypeVar("_G")
_LISTS = frozenset({"algorithms", "audience", "authorized_parties"})
_ALIASES = {
    "WACHT_FRONTEND_HOST": "frontend_api_url",
    "WACHT_JWT_KEY": "public_key",
    "WACHT_PUBLIC_SIGNING_KEY": "public_key",
}


def _items(value: str | Iterable[str]) -> tuple[str, ...]:
    """A list setting, given as a list or as one comma-separated string."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(item.strip() for item in items if item.strip())


def _config_from_app(app: Flask) -> Config:
    """``app.config["WACHT_*"]`` over the environment (:meth:`Config.from_env`)."""
    settings: dict[str, Any] = {}
    if app.config.get("WACHT_PUBLISHABLE_KEY"):
        settings["frontend_api_url"] = decode_publishable_key(app.config["WACHT_PUBLISHABLE_KEY"])
    fields = {f"WACHT_{f.name.upper()}": f.name for f in dataclasses.fields(Config)}
    for key, name in (_ALIASES | fields).items():  # the field names win over their aliases
        value = app.config.get(key)
        if value is not None and value != "":
            settings[name] = _items(value) if name in _LISTS else value
    if isinstance(settings.get("public_key"), str):  # a PEM on one line, as in .env files
        settings["public_key"] = settings["public_key"].replace("\\n", "\n")
    return Config.from_env(**settings)


@dataclasses.dataclass(frozen=True, slots=True)
class _AppState:
    """One app's set-up, kept in ``app.extensions["wacht"]``."""

    verifier: Verifier
    protect_all: bool
    public_paths: PublicPaths


class Wacht:
    """The extension: ``Wacht(app)``, or ``wacht = Wacht()`` and later ``wacht.init_app(app)``.

    Args:
        app: the app to set up now.
        verifier: a ready :class:`~wacht_auth.verifier.Verifier`, shared by every app.
        config: settings for the verifier, instead of ``app.config`` and the environment.
        protect_all: require a signed-in caller on every endpoint except :func:`public` views,
            ``public_paths``, static files, ``OPTIONS`` (CORS preflights carry no token) and
            unrouted URLs (404/405); ``WACHT_PROTECT_ALL = True`` turns it on too.
        public_paths: open paths in protect-all mode (``"/health"``; ``"/docs/*"`` is a
            prefix), added to ``WACHT_PUBLIC_PATHS``.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        verifier: Verifier | None = None,
        config: Config | None = None,
        protect_all: bool = False,
        public_paths: Iterable[str] = (),
    ) -> None:
        self.verifier = verifier
        self.config = config
        self.protect_all = protect_all
        self.public_paths = tuple(public_paths)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build the verifier now (a :class:`~wacht_auth.ConfigurationError` says what to
        set), then give ``app`` its ``request.wacht``/``g.wacht`` (by subclassing its
        ``request_class`` and ``app_ctx_globals_class``: set your own before this), the
        protect-all hook and the JSON error handler."""
        verifier = self.verifier
        try:
            if verifier is None:
                verifier = Verifier(self.config or _config_from_app(app))
            protect_all = app.config.get("WACHT_PROTECT_ALL", False)
            if not isinstance(protect_all, bool):
                raise ConfigurationError(f"WACHT_PROTECT_ALL must be a bool, got {protect_all!r}")
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"Wacht is not configured for the Flask app {app.name!r}: {exc.message} "
                "(settings go in app.config['WACHT_...'] or in environment variables)"
            ) from exc
        paths = self.public_paths + _items(app.config.get("WACHT_PUBLIC_PATHS") or ())
        state = _AppState(verifier, self.protect_all or protect_all, PublicPaths(paths))
        app.extensions["wacht"] = state
        # Attributes of the app's own classes rather than set by a before_request hook: a
        # hook costs every request (Flask inspects it each time), even those never looking.
        app.request_class = type("Request", (app.request_class,), {"wacht": _StateField(state)})
        app.app_ctx_globals_class = _with_wacht(app.app_ctx_globals_class)
        if state.protect_all:
            app.before_request(functools.partial(_protect, state))
        app.register_error_handler(WachtAuthError, _answer)


class _StateField:
    """``request.wacht``: computed on first read, then kept in the request's dict (a non-data
    descriptor): a request verifies at most once, one that never looks pays nothing."""

    def __init__(self, app_state: _AppState) -> None:
        self.app_state = app_state

    def __get__(self, req: Request | None, owner: type | None = None) -> Any:
        if req is None:
            return self
        verifier, header = self.app_state.verifier, req.environ.get("HTTP_AUTHORIZATION")
        state = cached_state(verifier, header)  # a repeated bearer token: no CSRF inputs
        if state is None:
            # The Cookie header is parsed only when needed; origins matter for cookies only.
            source = find_token(verifier.config, header, lambda name: req.cookies.get(name))
            csrf = source is not None and source.from_cookie
            state = authenticate(
                verifier,
                source,
                method=req.method,
                origin=req.environ.get("HTTP_ORIGIN") if csrf else None,
                referer=req.environ.get("HTTP_REFERER") if csrf else None,
                own_origin=f"{req.scheme}://{req.host}" if csrf else None,
                config=verifier.config,
            )
        req.wacht = state  # type: ignore[attr-defined]
        return state


def _with_wacht(base: type[_G]) -> type[_G]:
    """``g`` whose ``wacht`` is the current request's state (never stored in ``g``: an outer
    app context keeps one ``g`` across requests)."""

    class Globals(base):  # type: ignore[valid-type,misc]  # a subclass of a variable
        def __getattr__(self, name: str) -> Any:  # only when g has no such attribute
            if name == "wacht" and has_request_context():
                return _state(request._get_current_object())  # type: ignore[attr-defined]
            return super().__getattr__(name)

        def get(self, name: str, default: Any = None) -> Any:
            return getattr(self, name, default) if name == "wacht" else super().get(name, default)

        def __contains__(self, name: str) -> bool:
            return super().__contains__(name) or (name == "wacht" and has_request_context())

    return Globals


def _protect(app_state: _AppState) -> None:
    """``before_request`` in protect-all mode: every route not marked public requires auth."""
    req: Request = request._get_current_object()  # type: ignore[attr-defined]  # not the proxy
    if not _is_public(app_state, req):
        _state(req).require()


def _is_public(app_state: _AppState, req: Request) -> bool:
    endpoint = req.endpoint
    if endpoint is None or req.method == "OPTIONS" or req.path in app_state.public_paths:
        return True
    if endpoint == "static" or endpoint.endswith(".static"):
        return True
    return bool(getattr(current_app.view_functions.get(endpoint), "wacht_public", False))


def _answer(error: WachtAuthError) -> Response:
    """The error handler: the JSON envelope of DESIGN.md §5, never an HTML page."""
    status, headers, body = error_response(error)
    return current_app.response_class(body, status=status, headers=headers)


def _state(req: Request) -> AuthState:
    state = getattr(req, "wacht", None)
    if isinstance(state, AuthState):
        return state
    if "wacht" not in current_app.extensions:
        raise RuntimeError("Wacht is not set up on this app: call Wacht(app) or init_app(app)")
    # app.request_class was replaced after init_app: compute the state here instead.
    return cast(AuthState, _StateField(current_app.extensions["wacht"]).__get__(req))


def _guard(requirement: Requirement) -> Callable[[F], F]:
    signed_in_only = requirement == Requirement()  # then a session is all there is to check

    def decorate(view: F) -> F:
        if inspect.iscoroutinefunction(view):  # async views need flask[async]

            @functools.wraps(view)
            async def async_view(*args: Any, **kwargs: Any) -> Any:
                requirement.check(_state(request._get_current_object()))  # type: ignore[attr-defined]
                return await view(*args, **kwargs)

            return cast(F, async_view)

        @functools.wraps(view)
        def sync_view(*args: Any, **kwargs: Any) -> Any:
            # One proxy lookup: each attribute read through the `request` proxy costs more
            # than the whole cache hit.
            state = _state(request._get_current_object())  # type: ignore[attr-defined]
            if state.session is None or not signed_in_only:
                requirement.check(state)
            return view(*args, **kwargs)

        return cast(F, sync_view)

    return decorate


def require_auth(view: F) -> F:
    """401 unless the caller is signed in (with the precise code of a failed token)."""
    return _guard(Requirement())(view)


def require_permission(
    *permissions: str, scope: PermissionScope | None = None, require_all: bool = False
) -> Callable[[F], F]:
    """403 ``permission_denied`` unless the caller holds one of ``permissions`` (every one
    with ``require_all``), in ``scope`` (``"organization"``, ``"workspace"``, None: either)."""
    return _guard(Requirement(tuple(permissions), scope, require_all))


def require_organization(organization_id: str | None = None) -> Callable[[F], F]:
    """403 ``organization_required`` unless an organization (this one, if given) is active."""
    if callable(organization_id):
        raise TypeError("write @require_organization() with parentheses")
    return _guard(Requirement(organization=organization_id or True))


def require_workspace(workspace_id: str | None = None) -> Callable[[F], F]:
    """403 ``workspace_required`` unless a workspace (this one, if given) is active."""
    if callable(workspace_id):
        raise TypeError("write @require_workspace() with parentheses")
    return _guard(Requirement(workspace=workspace_id or True))


def public(view: F) -> F:
    """Leave ``view`` open in protect-all mode; marks the function, so it may sit above or
    below ``@app.route``."""
    view.wacht_public = True  # type: ignore[attr-defined]  # a marker on any callable
    return view
