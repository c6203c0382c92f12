"""Flask: ``Wacht(app)`` attaches ``request.wacht`` and ``g.wacht`` (an immutable
:class:`~wacht_auth.auth.AuthState`, verified lazily, at most once per request); decorators
require what a view needs; every :class:`~wacht_auth.WachtAuthError` is answered as JSON.

Settings: ``app.config["WACHT_<NAME>"]`` over the environment. The request layer
(:class:`~wacht_auth.auth.Authenticator`, kept in ``app.extensions["wacht"]``) decides; this
module only translates.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, TypeVar

from flask import (
    Flask,
    Request,
    Response,
    abort,
    current_app,
    has_request_context,
    redirect,
    request,
)

from ..auth import (
    Authenticator,
    AuthState,
    Guards,
    LazyState,
    PageError,
    Redirect,
    Refused,
    configure,
    error_response,
    public,
)
from ..config import Config
from ..errors import ConfigurationError, WachtAuthError
from ._flask_pages import _copy_headers, dev_links, sign_out
from ._wsgi import EnvironView

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..auth import Options
    from ..verifier import Verifier

__all__ = [
    "Wacht",
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

_G = TypeVar("_G")


class Wacht:
    """The extension: ``Wacht(app)``, or ``wacht = Wacht()`` and later ``wacht.init_app(app)``.

    Takes a ready ``verifier`` (shared by every app) or a ``config`` for one, instead of
    ``app.config`` and the environment, and the request layer's options
    (:class:`~wacht_auth.auth.Options`, added to ``WACHT_PUBLIC_PATHS``/``WACHT_PAGE_PATHS``
    and winning over the other settings). Under ``protect_all``, static files and unrouted
    URLs (answered 404/405 by Flask) count as public routes too.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        verifier: Verifier | None = None,
        config: Config | None = None,
        **options: Unpack[Options],
    ) -> None:
        self.verifier, self.config, self.options = verifier, config, options
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
        try:
            layer = configure(
                app.config,
                prefixed=True,
                where="app.config",
                env=True,
                verifier=verifier or self.verifier,
                config=config or self.config,
                **self.options,
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
        elif layer.handshake.exchange:  # development-session links, checked before Flask
            hosts = lambda: app.config.get("TRUSTED_HOSTS")  # noqa: E731  # read when a link comes
            app.wsgi_app = dev_links(layer, app.wsgi_app, hosts)  # type: ignore[method-assign,assignment]
        app.register_error_handler(WachtAuthError, _answer)
        if layer.prefetch:
            layer.prefetch_keys()
        return layer


class _View(EnvironView):
    """The request layer's view of a Flask request: its environ, with the host Werkzeug
    accepted (``TRUSTED_HOSTS``)."""

    __slots__ = ("req",)

    def __init__(self, req: Request) -> None:
        super().__init__(req.environ, req.path)
        self.req = req

    def cookie(self, name: str) -> str | None:
        return self.req.cookies.get(name)

    def host(self) -> str | None:
        return self.req.host


class _Field:
    """``request.wacht``: computed on first read, then kept in the request's dict (a non-data
    descriptor): a request verifies at most once, one that never looks pays nothing."""

    def __init__(self, layer: Authenticator) -> None:
        self.layer = layer

    def __get__(self, req: Request | None, owner: type | None = None) -> Any:
        return self if req is None else _state(req, (), self.layer)


def _state(req: Request, needs: tuple[str, ...] = (), layer: Any = None) -> AuthState:
    """The request's state: kept on ``req`` once resolved (a guard passes its permissions)."""
    state = req.__dict__.get("wacht")  # not the descriptor
    if isinstance(state, AuthState):
        return state
    if layer is None:  # the request class knows its app's layer: no proxy lookup
        field = getattr(type(req), "wacht", None)
        layer = field.layer if isinstance(field, _Field) else current_app.extensions.get("wacht")
    if layer is None:
        raise RuntimeError("Wacht is not set up on this app: call Wacht(app) or init_app(app)")
    state = layer.lookup(req.environ.get("HTTP_AUTHORIZATION"))
    if state is None:
        state = LazyState(layer, req, _View, on_resolve=_copy_headers).get(needs)
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
    return None if refusal is None else _refuse(req, refusal, state)


def _answer(error: WachtAuthError) -> Response:
    """The error handler: the JSON envelope of the error table, never an HTML page. It reads
    the state only if the request resolved one: answering never checks a credential."""
    state = request._get_current_object().__dict__.get("wacht")  # type: ignore[attr-defined]
    return _json(error, state.token_presented if isinstance(state, AuthState) else True)


def _json(error: WachtAuthError, token_presented: bool = True) -> Response:
    status, headers, body = error_response(error, token_presented=token_presented)
    return current_app.response_class(body, status=status, headers=headers)


def _refuse(req: Request, refusal: Refused, state: AuthState) -> Any:
    if isinstance(refusal, PageError):
        abort(refusal.error.status)  # the app's errorhandler(403) answers (its HTML page)
    if isinstance(refusal, Redirect):
        return redirect(refusal.location, 302)  # the hook adds the state's cookies
    raise refusal  # answered by _answer, or by the app's own handler for that error


_guards: Guards[Request] = Guards(
    state=_state,
    refuse=_refuse,
    sign_in=lambda req: current_app.extensions["wacht"].handshake.sign_in_location(_View(req)),
    find=lambda view: lambda args, kwargs: request._get_current_object(),  # type: ignore[attr-defined]
)


require_auth = _guards.require_auth
require_permission = _guards.require_permission
require_scope = _guards.require_scope
require_organization = _guards.require_organization
require_workspace = _guards.require_workspace


from ._flask_webhooks import webhook, webhook_receiver  # noqa: E402  # re-exported
