"""ASGI adapter: a pure ASGI middleware for Starlette, FastAPI or any ASGI app, and decorators.

The middleware asks the request layer (:class:`~wacht_auth.auth.Authenticator`) once per
connection and stores the immutable :class:`~wacht_auth.auth.AuthState` in ``scope["wacht"]``
and ``scope["state"]["wacht"]`` (so ``request.state.wacht`` works: Starlette rebuilds
``Request`` from the scope, an attribute set on one would be lost), plus ``scope["auth"]`` and
``scope["user"]`` for Starlette's ``requires()``. Starlette is optional.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Collection, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

from ..auth import (
    Authenticator,
    AuthState,
    Caller,
    Guards,
    PublicPaths,
    Redirect,
    cookie_reader,
    error_response,
    request_argument,
)
from ..config import Config, Settings
from ..errors import WachtAuthError
from ..gateway import Credential
from ..session import Session

if TYPE_CHECKING:
    from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser
    from starlette.requests import HTTPConnection

    from ..verifier import Verifier
else:
    try:
        from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser
    except ImportError:  # a plain ASGI app without Starlette: the same shapes, no dependency

        class BaseUser:
            """Stand-in for ``starlette.authentication.BaseUser``."""

        class AuthCredentials:
            """Stand-in for ``starlette.authentication.AuthCredentials``."""

            def __init__(self, scopes=None):
                self.scopes = list(scopes or [])

        class UnauthenticatedUser(BaseUser):
            """Stand-in for ``starlette.authentication.UnauthenticatedUser``."""

            is_authenticated, display_name = False, ""


__all__ = [
    "WachtMiddleware",
    "WachtUser",
    "aget_auth_state",
    "get_auth_state",
    "require_auth",
    "require_organization",
    "require_permission",
    "require_workspace",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
_WEB_SCHEMES = {"ws": "http", "wss": "https"}


class WachtUser(BaseUser):
    """The caller as a Starlette user (``request.user``): ``identity`` is the user id of a
    session, or the key id of an API key or OAuth token; ``caller`` is the Session or the
    Credential."""

    is_authenticated = True

    def __init__(self, caller: Caller) -> None:
        self.caller = caller

    @property
    def session(self) -> Session | None:
        """The verified session, or None for an API key or OAuth token."""
        return self.caller if isinstance(self.caller, Session) else None

    @property
    def identity(self) -> str:
        """The user id (``sub``), or a credential's key id."""
        caller = self.caller
        return caller.user_id if isinstance(caller, Session) else caller.key_id or ""

    @property
    def display_name(self) -> str:
        """The identity: tokens carry no name."""
        return self.identity


class _View:
    """The request layer's view of an ASGI scope (:class:`~wacht_auth.auth.RequestView`)."""

    __slots__ = ("scope",)

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    @property
    def method(self) -> str:
        scope = self.scope
        return "WEBSOCKET" if scope["type"] == "websocket" else scope.get("method", "GET")

    @property
    def path(self) -> str:
        return str(self.scope.get("path", ""))

    def header(self, name: str) -> str | None:
        key = name.encode("latin-1")
        for header, value in self.scope["headers"]:
            if header == key:
                return value.decode("latin-1")  # type: ignore[no-any-return]
        return None

    def cookie(self, name: str) -> str | None:
        # HTTP/2 may split cookies over several fields (RFC 9113 §8.2.3).
        raw = b";".join(value for header, value in self.scope["headers"] if header == b"cookie")
        return cookie_reader(raw)(name) if raw else None

    def own_origin(self) -> str | None:
        scheme = self.scope.get("scheme", "http")
        server = self.scope.get("server")
        host = self.header("host") or (f"{server[0]}:{server[1]}" if server else "")
        return f"{_WEB_SCHEMES.get(scheme, scheme)}://{host}" if host else None

    def client_ip(self) -> str | None:
        client = self.scope.get("client")
        return str(client[0]) if client else None

    def query(self) -> str:
        return bytes(self.scope.get("query_string", b"")).decode("latin-1")


class _Credentials(AuthCredentials):
    """``request.auth`` of a session for Starlette's ``requires()``: ``authenticated`` and the
    permissions, listed on each read (only ``requires()`` looks), so a change to the list one
    read returns reaches nothing else."""

    def __init__(self, caller: Caller) -> None:
        self._caller = caller

    @property
    def scopes(self) -> list[str]:  # type: ignore[override]  # read-only
        caller = self._caller
        extra = caller.scopes if isinstance(caller, Credential) else ()
        return ["authenticated", *caller.permissions, *extra]


def _store(scope: Scope, state: AuthState) -> AuthState:
    scope["wacht"] = state
    scope.setdefault("state", {})["wacht"] = state
    if (caller := state.session or state.credential) is None:
        scope["auth"], scope["user"] = AuthCredentials(), UnauthenticatedUser()
    else:  # built per connection: nothing a request changes reaches another
        scope["auth"], scope["user"] = _Credentials(caller), WachtUser(caller)
    return state


def _layer(scope: Scope, verifier: Verifier | None) -> Authenticator:
    """The request layer for this request: the middleware's, the app's, or (an explicit
    ``verifier``) one per verifier, so its exchange cache and single flight are shared."""
    attached = scope.get("wacht.authenticator")
    if attached is not None and (verifier is None or attached.verifier is verifier):
        return attached  # type: ignore[no-any-return]
    if verifier is not None:
        return Authenticator.of(verifier)
    state = getattr(scope.get("app"), "state", None)
    layer = getattr(state, "wacht_authenticator", None)
    if layer is None:
        verifier = getattr(state, "wacht_verifier", None)
        if state is None or verifier is None:
            raise RuntimeError(
                "no Wacht verifier for this request: add WachtMiddleware to the app, or set "
                "app.state.wacht_verifier (wacht_auth.integrations.fastapi.install does both)"
            )
        layer = state.wacht_authenticator = Authenticator(verifier)
    return layer


def get_auth_state(
    scope: Scope, verifier: Verifier | None = None, required_permissions: Collection[str] = ()
) -> AuthState:
    """The request's auth state: the one attached (by ``verifier``, when given), else
    verified now and attached. For sync endpoints (run in a thread)."""
    prior = scope.get("wacht")
    if verifier is None and isinstance(prior, AuthState):
        return prior
    layer = _layer(scope, verifier)
    state = layer.authenticate(_View(scope), prior, required_permissions=required_permissions)
    return _store(scope, state)


async def aget_auth_state(
    scope: Scope, verifier: Verifier | None = None, required_permissions: Collection[str] = ()
) -> AuthState:
    """The async twin of :func:`get_auth_state` (keys fetched without blocking the loop)."""
    prior = scope.get("wacht")
    if verifier is None and isinstance(prior, AuthState):
        return prior
    layer = _layer(scope, verifier)
    view = _View(scope)
    state = await layer.aauthenticate(view, prior, required_permissions=required_permissions)
    return _store(scope, state)


def _adding(send: Send, headers: tuple[tuple[str, str], ...]) -> Send:
    """``send`` that adds ``headers`` to the response's start message."""
    if not headers:
        return send
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]

    def adding(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *raw]}
        return send(message)

    return adding


async def _deny(
    scope: Scope, send: Send, error: WachtAuthError | Redirect, state: AuthState
) -> None:
    """Answer in raw ASGI: JSON for HTTP (a 302 for a page), close 1008 before accept for
    websockets."""
    if scope["type"] == "websocket":  # RFC 6455 §7.4.1: 1008 is "policy violation"
        reason = error.code if isinstance(error, WachtAuthError) else "token_missing"
        await send({"type": "websocket.close", "code": 1008, "reason": reason})
        return
    if isinstance(error, Redirect):
        location = error.location.encode("latin-1")
        start = [(b"location", location), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": error.status, "headers": start})
        await send({"type": "http.response.body", "body": b""})
        return
    status, headers, body = error_response(error, token_presented=state.token_presented)
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


_CORS_ORDER = (
    "CORSMiddleware runs inside WachtMiddleware, so the 401/403/503 answers WachtMiddleware "
    "sends itself (protect_all) carry no Access-Control-Allow-Origin and a browser cannot "
    "read their error code (token_expired ...). Add CORSMiddleware after WachtMiddleware "
    "(app.add_middleware(CORSMiddleware, ...) last, or first in Starlette(middleware=[...])), "
    "or use wacht_auth.integrations.fastapi.install(), which puts WachtMiddleware inside it."
)
_MAX_WRAPPERS = 64  # a middleware stack deeper than this is not looked through


def _is_cors_middleware(obj: object) -> bool:
    """True for Starlette's ``CORSMiddleware`` (FastAPI re-exports it), a subclass or instance."""
    try:
        from starlette.middleware.cors import CORSMiddleware
    except ImportError:  # no Starlette: no CORSMiddleware to misplace
        return False
    cls = obj if isinstance(obj, type) else type(obj)
    return issubclass(cls, CORSMiddleware)


def _warn_if_cors_inside(app: object) -> bool:
    """Warn (a ``RuntimeWarning`` and a ``wacht_auth`` log record) when a ``CORSMiddleware``
    wraps ``app``, the app WachtMiddleware is given: it then sits inside ours.

    Called when WachtMiddleware is built, which Starlette does at start-up (lifespan) or on
    the first request, once the whole stack is known. Follows the ``.app`` attribute every
    Starlette middleware keeps, at most ``_MAX_WRAPPERS`` deep. Returns whether it warned.
    """
    for _ in range(_MAX_WRAPPERS):
        if app is None:
            return False
        if _is_cors_middleware(app):
            import warnings

            from .._events import LOGGER

            warnings.warn(_CORS_ORDER, RuntimeWarning, stacklevel=3)
            LOGGER.warning("wacht_auth: %s", _CORS_ORDER)
            return True
        app = getattr(app, "app", None)
    return False


class WachtMiddleware:
    """Pure ASGI middleware attaching the caller's :class:`~wacht_auth.auth.AuthState`.

    ``app.add_middleware(WachtMiddleware, verifier=...)`` or ``WachtMiddleware(app, ...)``.
    Without ``verifier`` or ``config``, every setting comes from the environment
    (``WACHT_*``, :data:`~wacht_auth.config.SETTINGS`), read at start-up. ``protect_all``
    requires a signed-in caller everywhere except ``public_paths`` (exact paths, or prefixes
    ending in ``*``) and CORS preflights; ``prefetch`` fetches the keys at lifespan start-up;
    ``accept`` names the credential kinds authenticated (default: session tokens only; add
    ``"api_key"``/``"oauth_token"`` to have Wacht's gateway check those). ``page_paths`` are
    pages: under ``protect_all`` an anonymous visitor there is redirected to sign in;
    ``trusted_proxies`` (hops, or proxy addresses) lets ``X-Forwarded-*`` be read.
    A :class:`~wacht_auth.WachtAuthError` raised by the app before it answered (a FastAPI
    dependency, say) is answered here as JSON.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: Verifier | None = None,
        config: Config | None = None,
        protect_all: bool | None = None,
        public_paths: Iterable[str] | PublicPaths = (),
        prefetch: bool | None = None,
        accept: Iterable[str] | None = None,
        page_paths: Iterable[str] = (),
        trusted_proxies: int | str | Iterable[str] | None = None,
    ) -> None:
        settings = Settings.load(env={} if verifier or config else None, config=config)
        self.app = app
        self.layer = Authenticator.from_settings(
            settings,
            verifier=verifier,
            protect_all=protect_all,
            prefetch=prefetch,
            public_paths=public_paths,
            accept=accept,
            page_paths=page_paths,
            trusted_proxies=trusted_proxies,
        )
        self.verifier = self.layer.verifier
        _warn_if_cors_inside(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] not in ("http", "websocket"):
            if scope["type"] == "lifespan" and self.layer.prefetch:
                receive = self._prefetching(receive)
            await self.app(scope, receive, send)
            return
        layer, view = self.layer, _View(scope)
        prior = scope.get("wacht")
        state = _store(scope, layer.reuse(view, prior) or await layer.averify_request(view))
        scope["wacht.authenticator"] = layer  # for page guards: where to sign in
        if layer.protect_all and (state.session is None or state.redirect):
            refusal = layer.refusal(view, state)
            if refusal is not None:
                await _deny(scope, _adding(send, state.response_headers), refusal, state)
                return
        if state.response_headers:  # the gateway's rate-limit state, on every answer
            send = _adding(send, state.response_headers)
        started = False

        def tracking_send(message: Message) -> Awaitable[None]:
            # Not a coroutine: it hands back send's own awaitable, one await less per message.
            nonlocal started
            started = True
            return send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except WachtAuthError as error:
            if started:
                raise
            await _deny(scope, send, error, state)

    def _prefetching(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message.get("type") == "lifespan.startup":
                await self.layer.aprefetch_keys()
            return message

        return wrapped


def _refuse(conn: HTTPConnection, error: WachtAuthError, state: AuthState) -> Any:
    from starlette.responses import Response

    if conn.scope["type"] == "websocket":
        return conn.close(code=1008, reason=error.code)  # type: ignore[attr-defined]
    status, headers, body = error_response(error, token_presented=state.token_presented)
    return Response(body, status, headers)


def _redirect(conn: HTTPConnection, location: str, state: AuthState) -> Any:
    from starlette.responses import RedirectResponse

    if conn.scope["type"] == "websocket":
        return conn.close(code=1008, reason="token_missing")  # type: ignore[attr-defined]
    return RedirectResponse(location, 302)  # the middleware adds the state's cookies


def _sign_in(conn: HTTPConnection) -> str | None:
    return _layer(conn.scope, None).sign_in_location(_View(conn.scope))


_guards: Guards[HTTPConnection] = Guards(
    state=lambda conn, needs: get_auth_state(conn.scope, None, needs),
    astate=lambda conn, needs: aget_auth_state(conn.scope, None, needs),
    refuse=_refuse,
    redirect=_redirect,
    sign_in=_sign_in,
    find=functools.partial(request_argument, first=False),
)
require_auth = _guards.require_auth
require_permission = _guards.require_permission
require_organization = _guards.require_organization
require_workspace = _guards.require_workspace


# ---- webhooks
from ..webhooks import Event, Receiver, WebhookError, succeeded  # noqa: E402  # one block

__all__ += ["webhook"]


def webhook(
    handler: Callable[[Any, Event], Awaitable[Any]] | None = None,
    /,
    *,
    receiver: Receiver | None = None,
) -> Any:
    """Make ``async handler(request, event)`` a Starlette endpoint receiving Wacht's
    deliveries (FastAPI routes take it too): POST only, the raw body read (capped) before
    anything parses it, the verified :class:`~wacht_auth.webhooks.Event` passed; refusals
    answer the JSON error envelope; a handler returning ``None`` answers 204. Without
    ``receiver`` it is built now from ``WACHT_WEBHOOK_SECRET``: a bad secret fails at start-up.
    """

    def decorate(handler: Callable[[Any, Event], Awaitable[Any]]) -> Any:
        from starlette.requests import Request
        from starlette.responses import Response

        hooks = receiver or Receiver.from_settings()

        async def endpoint(request: Request) -> Response:
            try:
                event = await hooks.areceive(request.method, request.headers, request.stream())
            except WebhookError as error:
                status, headers, body = error_response(error)
                return Response(body, status, headers)
            response = await handler(request, event)
            response = Response(status_code=204) if response is None else response
            if succeeded(response.status_code):
                hooks.accepted(event)
            return response

        # Not functools.wraps: FastAPI would read the handler's signature through __wrapped__.
        endpoint.__name__, endpoint.__doc__ = handler.__name__, handler.__doc__
        endpoint.__annotations__ = {"request": Request, "return": Response}
        return endpoint

    return decorate if handler is None else decorate(handler)
