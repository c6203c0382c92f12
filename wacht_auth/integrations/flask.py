"""Flask: ``Wacht(app)`` attaches ``request.wacht`` and ``g.wacht`` (an immutable
:class:`~wacht_auth.auth.AuthState`, verified lazily, at most once per request); decorators
require what a view needs; every :class:`~wacht_auth.WachtAuthError` is answered as JSON.

Settings: ``app.config["WACHT_<NAME>"]`` for each setting of
:data:`~wacht_auth.config.SETTINGS`, over the environment. The request layer
(:class:`~wacht_auth.auth.Authenticator`, kept in ``app.extensions["wacht"]``) decides; this
module only translates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import (
    Flask,
    Request,
    Response,
    after_this_request,
    current_app,
    has_request_context,
    redirect,
    request,
)

from ..auth import Authenticator, AuthState, Guards, Redirect, error_response
from ..config import Config, Settings
from ..errors import ConfigurationError, WachtAuthError
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


class Wacht:
    """The extension: ``Wacht(app)``, or ``wacht = Wacht()`` and later ``wacht.init_app(app)``.

    Args:
        app: the app to set up now.
        verifier: a ready :class:`~wacht_auth.verifier.Verifier`, shared by every app.
        config: settings for the verifier, instead of ``app.config`` and the environment.
        protect_all: require a signed-in caller on every endpoint except :func:`public` views,
            ``public_paths``, static files, CORS preflights and unrouted URLs (404/405);
            ``WACHT_PROTECT_ALL = True`` turns it on too.
        public_paths: open paths in protect-all mode (``"/health"``; ``"/docs/*"`` is a
            prefix), added to ``WACHT_PUBLIC_PATHS``.
        accept: the credential kinds authenticated (default ``WACHT_ACCEPT``, else session
            tokens only); ``"api_key"``/``"oauth_token"`` are checked by Wacht's gateway.
        page_paths: pages (path prefixes): under protect-all an anonymous visitor there is
            redirected to sign in; added to ``WACHT_PAGE_PATHS``.
        trusted_proxies: the proxies in front of the app (hops, or addresses): only then are
            ``X-Forwarded-*`` headers read (default ``WACHT_TRUSTED_PROXIES``).
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        verifier: Verifier | None = None,
        config: Config | None = None,
        protect_all: bool | None = None,
        public_paths: Iterable[str] = (),
        accept: Iterable[str] | None = None,
        page_paths: Iterable[str] = (),
        trusted_proxies: int | str | Iterable[str] | None = None,
    ) -> None:
        self.verifier, self.config = verifier, config
        self.page_paths, self.trusted_proxies = tuple(page_paths), trusted_proxies
        self.protect_all, self.public_paths = protect_all, tuple(public_paths)
        self.accept = None if accept is None else tuple(accept)
        if app is not None:
            self.init_app(app)

    def init_app(
        self, app: Flask, *, verifier: Verifier | None = None, config: Config | None = None
    ) -> Authenticator:
        """Set ``app`` up (``verifier``/``config`` here win over the constructor's, for app
        factories): build the request layer now (a :class:`~wacht_auth.ConfigurationError`
        names the setting to fix), give the app ``request.wacht``/``g.wacht`` (by
        subclassing its ``request_class`` and ``app_ctx_globals_class``: set your own before
        this), the protect-all hook and the JSON error handler."""
        config = config or self.config
        try:
            settings = Settings.load(app.config, prefixed=True, where="app.config", config=config)
            layer = Authenticator.from_settings(
                settings,
                verifier=verifier or self.verifier,
                protect_all=self.protect_all,
                public_paths=self.public_paths,
                accept=self.accept,
                page_paths=self.page_paths,
                trusted_proxies=self.trusted_proxies,
            )
        except ConfigurationError as exc:
            message = f"Wacht is not configured for {app.name!r}: {exc.message}"
            raise ConfigurationError(message) from exc
        app.extensions["wacht"] = layer
        # Attributes of the app's own classes rather than set by a before_request hook: a
        # hook costs every request (Flask inspects it each time), even those never looking.
        app.request_class = type("Request", (app.request_class,), {"wacht": _Field(layer)})
        app.app_ctx_globals_class = _with_wacht(app.app_ctx_globals_class)
        if layer.protect_all:
            app.before_request(functools.partial(_protect, layer))
        app.register_error_handler(WachtAuthError, _answer)
        if layer.prefetch:
            layer.prefetch_keys()
        return layer


class _View:
    """The request layer's view of a Flask request (:class:`~wacht_auth.auth.RequestView`)."""

    __slots__ = ("method", "path", "req")

    def __init__(self, req: Request) -> None:
        self.req, self.method, self.path = req, req.method, req.path

    def header(self, name: str) -> str | None:
        return self.req.environ.get("HTTP_" + name.upper().replace("-", "_"))

    def cookie(self, name: str) -> str | None:
        return self.req.cookies.get(name)

    def own_origin(self) -> str | None:
        return f"{self.req.scheme}://{self.req.host}"

    def client_ip(self) -> str | None:
        return self.req.remote_addr

    def query(self) -> str:
        return self.req.query_string.decode("latin-1")


class _Field:
    """``request.wacht``: computed on first read, then kept in the request's dict (a non-data
    descriptor): a request verifies at most once, one that never looks pays nothing."""

    def __init__(self, layer: Authenticator) -> None:
        self.layer = layer

    def __get__(self, req: Request | None, owner: type | None = None) -> Any:
        return self if req is None else _resolve(self.layer, req, ())


def _resolve(layer: Authenticator, req: Request, needs: tuple[str, ...]) -> AuthState:
    """Verify now (a repeated bearer token from the cache) and keep the state on ``req``."""
    state = layer.cached(req.environ.get("HTTP_AUTHORIZATION"))
    if state is None:
        state = layer.verify_request(_View(req), needs)
        if state.response_headers:  # cookies of an exchange, the gateway's rate-limit state
            after_this_request(functools.partial(_add_headers, state))
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


def _state(req: Request, needs: tuple[str, ...] = ()) -> AuthState:
    state = req.__dict__.get("wacht")  # not the descriptor: a guard passes its permissions
    if isinstance(state, AuthState):
        return state
    layer = current_app.extensions.get("wacht")
    if layer is None:
        raise RuntimeError("Wacht is not set up on this app: call Wacht(app) or init_app(app)")
    return _resolve(layer, req, needs)


def _add_headers(state: AuthState, response: Response) -> Response:
    """Registered with ``after_this_request`` by the requests whose state has headers to
    copy (the others pay nothing): the gateway's rate-limit state, the exchange's cookies."""
    for name, value in state.response_headers:
        response.headers.add(name, value)  # several Set-Cookie stay several
    return response


def _protect(layer: Authenticator) -> Any:
    """``before_request`` in protect-all mode: the layer decides; static files and unrouted
    URLs (answered 404/405 by Flask) count as public routes."""
    req: Request = request._get_current_object()  # type: ignore[attr-defined]  # not the proxy
    endpoint = req.endpoint
    public_route = (
        endpoint is None
        or endpoint == "static"
        or endpoint.endswith(".static")
        or getattr(current_app.view_functions.get(endpoint), "wacht_public", False)
    )
    state = _state(req)
    refusal = layer.refusal(_View(req), state, public_route=bool(public_route))
    if isinstance(refusal, Redirect):
        return redirect(refusal.location, 302)
    if isinstance(refusal, WachtAuthError):
        raise refusal
    return None


def _answer(error: WachtAuthError) -> Response:
    """The error handler: the JSON envelope of the error table, never an HTML page. It reads
    the state only if the request resolved one: answering never checks a credential."""
    state = request._get_current_object().__dict__.get("wacht")  # type: ignore[attr-defined]
    presented = state.token_presented if isinstance(state, AuthState) else True
    status, headers, body = error_response(error, token_presented=presented)
    return current_app.response_class(body, status=status, headers=headers)


def _refuse(req: Request, error: WachtAuthError, state: AuthState) -> Response:
    raise error  # answered by _answer, or by the app's own handler for that error


def _redirect(req: Request, location: str, state: AuthState) -> Any:
    return redirect(location, 302)  # after_request adds the state's cookies


def _sign_in(req: Request) -> str | None:
    return current_app.extensions["wacht"].sign_in_location(_View(req))  # type: ignore[no-any-return]


_guards: Guards[Request] = Guards(
    state=_state,
    redirect=_redirect,
    sign_in=_sign_in,
    astate=lambda req, needs: _async(_state(req, needs)),
    refuse=_refuse,
    find=lambda view: lambda args, kwargs: request._get_current_object(),  # type: ignore[attr-defined]
)


async def _async(state: AuthState) -> AuthState:
    return state


require_auth = _guards.require_auth
require_permission = _guards.require_permission
require_organization = _guards.require_organization
require_workspace = _guards.require_workspace


def public(view: F) -> F:
    """Leave ``view`` open in protect-all mode; marks the function, so it may sit above or
    below ``@app.route``."""
    view.wacht_public = True  # type: ignore[attr-defined]  # a marker on any callable
    return view


# ---- webhooks
import inspect  # noqa: E402  # one block, carried over whole

from ..webhooks import Receiver, webhook_view  # noqa: E402

__all__ += ["webhook", "webhook_receiver"]


def webhook_receiver(app: Flask | None = None) -> Receiver:
    """The app's :class:`~wacht_auth.webhooks.Receiver`: ``app.config["WACHT_WEBHOOK_SECRET"]``
    over the environment, built once and kept in ``app.extensions["wacht.webhooks"]``. Call it
    in the app factory to make a missing or malformed secret fail at start-up."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    hooks: Receiver | None = app.extensions.get("wacht.webhooks")
    if hooks is None:
        try:
            loaded = Settings.load(app.config, prefixed=True, where="app.config")
            hooks = app.extensions["wacht.webhooks"] = Receiver.from_settings(loaded)
        except ConfigurationError as exc:
            message = f"Wacht webhooks are not configured for {app.name!r}: {exc.message}"
            raise ConfigurationError(message) from exc
    return hooks


def _webhook_refused(error: WachtAuthError) -> Response:
    status, headers, body = error_response(error)
    return current_app.response_class(body, status=status, headers=headers)


def webhook(view: F | None = None, /, *, receiver: Receiver | None = None) -> Any:
    """Make a view a Wacht webhook receiver (``@app.post("/webhooks")`` above it): POST
    only, ``view(event, **url_values)`` called with the verified
    :class:`~wacht_auth.webhooks.Event`; refusals answer the JSON error envelope. A view
    returning ``None`` answers 204."""

    def decorate(view: F) -> F:
        return webhook_view(  # type: ignore[return-value]
            view,
            receiver=(lambda: receiver) if receiver else webhook_receiver,
            read=lambda args: (request.method, request.headers, lambda: request.get_data()),
            respond=lambda result: current_app.make_response(
                ("", 204) if result is None else result
            ),
            refuse=_webhook_refused,
            position=0,
            is_async=inspect.iscoroutinefunction(view),
        )

    return decorate if view is None else decorate(view)
