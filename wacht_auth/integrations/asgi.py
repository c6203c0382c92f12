"""ASGI adapter: a pure ASGI middleware for Starlette, FastAPI or any ASGI app, and decorators.

The middleware verifies the request's token once (a repeated one straight from the verifier's
cache, others with ``averify``: keys are fetched without blocking the loop) and stores the
:class:`~wacht_auth.auth.AuthState` in ``scope["wacht"]`` and ``scope["state"]["wacht"]`` (so
``request.state.wacht`` works: Starlette rebuilds ``Request`` from the scope, an attribute set
on one would be lost), plus ``scope["auth"]``/``scope["user"]`` for Starlette's ``requires()``.
Starlette is optional: a plain ASGI app gets look-alikes.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..auth import (
    AuthState,
    PublicPaths,
    Requirement,
    aauthenticate,
    authenticate,
    cached_state,
    cookie_reader,
    error_response,
    find_token,
)
from ..config import Config
from ..errors import WachtAuthError
from ..session import PermissionScope, Session

if TYPE_CHECKING:
    from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser

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
F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("wacht_auth")
_CSRF_HEADERS = {b"origin", b"referer", b"host"}
_SIGNED_IN = Requirement()
_WEB_SCHEMES = {"ws": "http", "wss": "https"}


class WachtUser(BaseUser):
    """The signed-in caller as a Starlette user (``request.user``); ``identity`` is the user id.

    ``is_authenticated`` is always True: only a verified session makes a ``WachtUser``.
    """

    is_authenticated = True

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def identity(self) -> str:
        """The user id (``sub``)."""
        return self.session.user_id

    @property
    def display_name(self) -> str:
        """The user id: tokens carry no name."""
        return self.session.user_id


class _Credentials(AuthCredentials):
    """Starlette's ``request.auth`` of a session: ``authenticated`` and its permissions, read
    on access (only ``requires()`` looks), so a shared one holds nothing a request can change."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def scopes(self) -> list[str]:  # type: ignore[override]  # read-only: may be shared
        return ["authenticated", *self._session.permissions]


# Starlette's objects for a repeated token's state, which cached_state() shares across its
# requests: built once, not per request. Keyed by that state (identity), cleared when full.
_STARLETTE: dict[AuthState, tuple[_Credentials, WachtUser]] = {}


def _store(scope: Scope, state: AuthState, shared: bool = False) -> AuthState:
    scope["wacht"] = state
    scope.setdefault("state", {})["wacht"] = state
    if (session := state.session) is None:
        scope["auth"], scope["user"] = AuthCredentials(), UnauthenticatedUser()
    elif not shared:  # Starlette's requires("authenticated", "invoices:read")
        scope["auth"], scope["user"] = _Credentials(session), WachtUser(session)
    elif (pair := _STARLETTE.get(state)) is not None:
        scope["auth"], scope["user"] = pair
    else:
        if len(_STARLETTE) >= 1024:
            _STARLETTE.clear()
        scope["auth"], scope["user"] = _STARLETTE[state] = _Credentials(session), WachtUser(session)
    return state


def _hit(scope: Scope, verifier: Verifier) -> AuthState | None:
    """A repeated bearer token's state (:func:`~wacht_auth.auth.cached_state`), stored in the
    scope; None when the full path must run."""
    for name, value in scope["headers"]:
        if name == b"authorization":  # the first one counts, as in _read
            state = cached_state(verifier, value.decode("latin-1"))
            return None if state is None else _store(scope, state, shared=True)
    return None


def _read(scope: Scope, config: Config) -> dict[str, Any]:
    """The token and the CSRF inputs (``authenticate``'s arguments), from the raw headers.

    The request path is hot: one pass over the headers, and the CSRF inputs are collected
    only for a token from the cookie (the rule ignores bearer headers).
    """
    authorization = cookies = None
    for name, value in scope["headers"]:
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"cookie":  # HTTP/2 may split cookies over several fields
            cookies = value if cookies is None else cookies + b";" + value
    source = find_token(config, authorization, cookie_reader(cookies) if cookies else None)
    if source is None or not source.from_cookie:
        return {"source": source}
    headers = {n: v.decode("latin-1") for n, v in scope["headers"] if n in _CSRF_HEADERS}
    # The app's own origin: scheme + Host, ws/wss as http/https. A websocket handshake is a
    # GET that browsers send cross-site with cookies: it counts as unsafe, so a cookie-borne
    # token needs a same-origin Origin (cross-site websocket hijacking).
    scheme = _WEB_SCHEMES.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
    server = scope.get("server")
    host = headers.get(b"host") or (f"{server[0]}:{server[1]}" if server else "")
    websocket = scope["type"] == "websocket"
    return {
        "source": source,
        "method": "WEBSOCKET" if websocket else scope.get("method", "GET"),
        "origin": headers.get(b"origin"),
        "referer": headers.get(b"referer"),
        "own_origin": f"{scheme}://{host}" if host else None,
    }


def _verifier_for(scope: Scope) -> Verifier:
    verifier = getattr(getattr(scope.get("app"), "state", None), "wacht_verifier", None)
    if verifier is None:
        raise RuntimeError(
            "no Wacht verifier for this request: add WachtMiddleware to the app, or set "
            "app.state.wacht_verifier (wacht_auth.integrations.fastapi.install does both)"
        )
    return verifier  # type: ignore[no-any-return]  # Starlette's State is untyped


async def aget_auth_state(scope: Scope, verifier: Verifier | None = None) -> AuthState:
    """The request's auth state, verified once (then cached in the scope)."""
    if (state := scope.get("wacht")) is not None:
        return state  # type: ignore[no-any-return]  # set by _store only
    verifier = verifier or _verifier_for(scope)
    return _hit(scope, verifier) or await _authenticate(scope, verifier)


async def _authenticate(scope: Scope, verifier: Verifier) -> AuthState:
    return _store(scope, await aauthenticate(verifier, **_read(scope, verifier.config)))


def get_auth_state(scope: Scope, verifier: Verifier | None = None) -> AuthState:
    """The sync twin of :func:`aget_auth_state`, for sync endpoints (run in a thread)."""
    if (state := scope.get("wacht")) is not None:
        return state  # type: ignore[no-any-return]  # set by _store only
    verifier = verifier or _verifier_for(scope)
    if (state := _hit(scope, verifier)) is not None:
        return state
    return _store(scope, authenticate(verifier, **_read(scope, verifier.config)))


async def _deny(scope: Scope, send: Send, error: WachtAuthError) -> None:
    """Answer ``error`` in raw ASGI: JSON for HTTP, close 1008 before accept for websockets."""
    if scope["type"] == "websocket":  # RFC 6455 §7.4.1: 1008 is "policy violation"
        await send({"type": "websocket.close", "code": 1008, "reason": error.code})
        return
    status, headers, body = error_response(error)
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class WachtMiddleware:
    """Pure ASGI middleware attaching the caller's :class:`~wacht_auth.auth.AuthState`.

    ``app.add_middleware(WachtMiddleware, verifier=...)`` or ``WachtMiddleware(app, ...)``.
    Without ``verifier`` one is built from ``config`` (or the environment), at start-up.
    ``protect_all`` requires a signed-in caller everywhere except ``public_paths`` (exact
    paths, or prefixes ending in ``*``); ``prefetch`` fetches the keys at lifespan start-up.
    A :class:`~wacht_auth.WachtAuthError` raised by the app before it answered (a FastAPI
    dependency, say) is answered here as JSON.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: Verifier | None = None,
        config: Config | None = None,
        protect_all: bool = False,
        public_paths: Iterable[str] | PublicPaths = (),
        prefetch: bool = False,
    ) -> None:
        if verifier is None:
            from ..verifier import Verifier

            verifier = Verifier(config) if config is not None else Verifier.from_env()
        self.app, self.verifier = app, verifier
        self.protect_all, self.prefetch = protect_all, prefetch
        self.public_paths = (
            public_paths if isinstance(public_paths, PublicPaths) else PublicPaths(public_paths)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] not in ("http", "websocket"):
            if scope["type"] == "lifespan" and self.prefetch:
                receive = self._prefetching(receive)
            await self.app(scope, receive, send)
            return
        verifier = self.verifier
        state = scope.get("wacht") or _hit(scope, verifier) or await _authenticate(scope, verifier)
        # Only a missing session can fail the check: signed-in callers skip the path lookup.
        if self.protect_all and state.session is None and not self._is_public(scope):
            try:
                _SIGNED_IN.check(state)
            except WachtAuthError as error:
                await _deny(scope, send, error)
                return
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
            await _deny(scope, send, error)

    def _is_public(self, scope: Scope) -> bool:
        """A public path, or a CORS preflight: browsers never send credentials on those
        (Fetch standard, CORS-preflight request), so refusing one would break CORS."""
        if scope.get("path") in self.public_paths:
            return True
        return scope.get("method") == "OPTIONS" and any(
            name == b"access-control-request-method" for name, _ in scope["headers"]
        )

    def _prefetching(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message.get("type") == "lifespan.startup":
                try:
                    await self.verifier.aprefetch()
                except WachtAuthError as error:  # keys are fetched again on first need
                    logger.warning("wacht_auth: key prefetch at start-up failed: %s", error)
            return message

        return wrapped


def _guard(requirement: Requirement) -> Callable[[F], F]:
    """A decorator for Starlette endpoints (sync or async, HTTP or websocket)."""
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import Response
    from starlette.websockets import WebSocket

    def connection(args: tuple[Any, ...], kwargs: dict[str, Any]) -> HTTPConnection:
        for value in (*args, *kwargs.values()):
            if isinstance(value, HTTPConnection):
                return value
        raise TypeError("a wacht_auth decorator needs an endpoint taking a Request or WebSocket")

    def refusal(error: WachtAuthError) -> Response:
        status, headers, body = error_response(error)
        return Response(body, status, headers)

    # require_auth asks for a session and nothing more: a signed-in caller needs no check.
    signed_in_only = requirement == _SIGNED_IN

    def decorate(endpoint: F) -> F:
        if inspect.iscoroutinefunction(endpoint):

            @functools.wraps(endpoint)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                # The usual endpoint(request), by exact type: isinstance against
                # HTTPConnection (an ABC: a Mapping) costs more than the rest of this check.
                conn = args[0] if args and type(args[0]) is Request else connection(args, kwargs)
                state = conn.scope.get("wacht") or await aget_auth_state(conn.scope)
                if state.session is None or not signed_in_only:
                    try:
                        requirement.check(state)
                    except WachtAuthError as error:
                        if isinstance(conn, WebSocket):
                            return await conn.close(code=1008, reason=error.code)
                        return refusal(error)
                return await endpoint(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]  # same signature (wraps)

        @functools.wraps(endpoint)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                requirement.check(get_auth_state(connection(args, kwargs).scope))
            except WachtAuthError as error:
                return refusal(error)
            return endpoint(*args, **kwargs)

        return sync_wrapper  # type: ignore[return-value]  # same signature (wraps)

    return decorate


def require_auth(endpoint: F) -> F:
    """Decorator: 401 (with the precise code, e.g. ``token_expired``) unless signed in."""
    return _guard(_SIGNED_IN)(endpoint)


def require_permission(
    *permissions: str, scope: PermissionScope | None = None, require_all: bool = False
) -> Callable[[F], F]:
    """Decorator: 403 ``permission_denied`` unless the caller holds one (or all) of these."""
    return _guard(Requirement(permissions, scope, require_all))


def require_organization(organization_id: str | None = None) -> Callable[[F], F]:
    """Decorator: 403 ``organization_required`` without an active (or this) organization."""
    return _guard(Requirement(organization=organization_id or True))


def require_workspace(workspace_id: str | None = None) -> Callable[[F], F]:
    """Decorator: 403 ``workspace_required`` without an active (or this) workspace."""
    return _guard(Requirement(workspace=workspace_id or True))
