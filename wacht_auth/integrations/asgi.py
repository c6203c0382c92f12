"""ASGI adapter: a pure ASGI middleware for Starlette, FastAPI or any ASGI app, and decorators.

The middleware asks the request layer (:class:`~wacht_auth.auth.Authenticator`) once per
connection and stores the immutable :class:`~wacht_auth.auth.AuthState` in ``scope["wacht"]``
and ``scope["state"]["wacht"]`` (so ``request.state.wacht`` works: Starlette rebuilds
``Request`` from the scope, an attribute set on one would be lost), plus ``scope["auth"]`` and
``scope["user"]`` for Starlette's ``requires()``. Starlette is optional.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Collection
from typing import TYPE_CHECKING, Any

from ..auth import (
    Authenticator,
    AuthState,
    Caller,
    Guards,
    Refused,
    configure,
    request_argument,
)
from ..config import Config
from ..credentials import Credential
from ..errors import WachtAuthError
from ..session import Session
from ._asgi import ASGIApp, Message, Receive, Refusal, Scope, ScopeView, Send, adding, answer
from ._cors import warn_if_inside

if TYPE_CHECKING:
    from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser
    from starlette.requests import HTTPConnection
    from typing_extensions import Unpack

    from ..auth import Options
    from ..verifier import Verifier
else:
    try:
        from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser
    except ImportError:  # a plain ASGI app without Starlette: the same shapes, no dependency

        class BaseUser:  # stand-ins for Starlette's classes, the same shapes
            pass

        class AuthCredentials:
            def __init__(self, scopes=None):
                self.scopes = list(scopes or [])

        class UnauthenticatedUser(BaseUser):
            is_authenticated, display_name = False, ""


__all__ = [
    "SignOut",
    "WachtMiddleware",
    "WachtUser",
    "aget_auth_state",
    "get_auth_state",
    "require_auth",
    "require_organization",
    "require_permission",
    "require_scope",
    "require_workspace",
    "sign_out",
    "webhook",
]


class WachtUser(BaseUser):
    """The caller as a Starlette user (``request.user``), one per connection: ``identity`` is
    the user id of a session, or the key id of an API key or OAuth token; ``caller`` is the
    Session or the Credential."""

    __slots__ = ("caller",)
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


class _Credentials(AuthCredentials):
    """``request.auth`` of a caller for Starlette's ``requires()``: ``authenticated``, the
    permissions and a credential's scopes, listed on each read (only ``requires()`` looks),
    so a change to the list one read returns reaches nothing else."""

    __slots__ = ("_caller",)

    def __init__(self, caller: Caller) -> None:
        self._caller = caller

    @property
    def scopes(self) -> list[str]:  # type: ignore[override]  # read-only
        caller = self._caller
        extra = caller.scopes if isinstance(caller, Credential) else ()
        return ["authenticated", *caller.permissions, *extra]


def _store(scope: Scope, state: AuthState) -> AuthState:
    scope["wacht"] = state
    states = scope.get("state")  # not setdefault: no dict made when the server gave one
    if states is None:
        states = scope["state"] = {}
    states["wacht"] = state
    if (caller := state.session or state.credential) is None:
        scope["auth"], scope["user"] = AuthCredentials(), UnauthenticatedUser()
    else:  # built per connection: nothing a request changes reaches another
        scope["auth"], scope["user"] = _Credentials(caller), WachtUser(caller)
    return state


def _layer(scope: Scope, verifier: Verifier | None) -> Authenticator:
    """The request layer for this request: the middleware's, or the one of ``verifier`` (or
    of the app's ``app.state.wacht_verifier``)."""
    attached = scope.get("wacht.authenticator")
    if verifier is None and attached is None:
        verifier = getattr(getattr(scope.get("app"), "state", None), "wacht_verifier", None)
        if verifier is None:
            raise RuntimeError(
                "no Wacht verifier for this request: add WachtMiddleware to the app, or set "
                "app.state.wacht_verifier (wacht_auth.integrations.fastapi.install does both)"
            )
    return Authenticator.of(verifier, attached=attached)


def get_auth_state(
    scope: Scope, verifier: Verifier | None = None, required_permissions: Collection[str] = ()
) -> AuthState:
    """The request's auth state: the one attached (by ``verifier``, when given), else
    verified now and attached (an API key checked with ``required_permissions``).
    For sync endpoints (run in a thread)."""
    prior = scope.get("wacht")
    if verifier is None and type(prior) is AuthState:
        return prior  # what the middleware attached
    state = _layer(scope, verifier).resolve(
        ScopeView(scope), prior, required_permissions=required_permissions
    )
    return state if state is prior else _store(scope, state)


async def aget_auth_state(
    scope: Scope, verifier: Verifier | None = None, required_permissions: Collection[str] = ()
) -> AuthState:
    """The async twin of :func:`get_auth_state` (keys fetched without blocking the loop)."""
    prior = scope.get("wacht")
    if verifier is None and type(prior) is AuthState:
        return prior  # what the middleware attached
    layer = _layer(scope, verifier)
    state = await layer.aresolve(ScopeView(scope), prior, required_permissions=required_permissions)
    return state if state is prior else _store(scope, state)


class WachtMiddleware:
    """Pure ASGI middleware attaching the caller's :class:`~wacht_auth.auth.AuthState`.

    ``app.add_middleware(WachtMiddleware, verifier=...)`` or ``WachtMiddleware(app, ...)``,
    with the request layer's options (:class:`~wacht_auth.auth.Options`), or a ready
    ``layer``. Without ``verifier`` or ``config``, every setting comes from the environment
    (``WACHT_*``), read at start-up. A :class:`~wacht_auth.WachtAuthError` raised by the app
    before it answered (a FastAPI dependency, say) is answered here as JSON.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: Verifier | None = None,
        config: Config | None = None,
        layer: Authenticator | None = None,
        **options: Unpack[Options],
    ) -> None:
        self.app = app
        self.layer = layer or configure(verifier=verifier, config=config, **options)
        self.verifier = self.layer.verifier
        warn_if_inside(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] not in ("http", "websocket"):
            if scope["type"] == "lifespan" and self.layer.prefetch:
                receive = self._prefetching(receive)
            await self.app(scope, receive, send)
            return
        layer = self.layer
        authorization = None  # read here: a hit needs no view (every line, as the view reads)
        for name, value in scope["headers"]:
            if name == b"authorization":
                text = value.decode("latin-1")
                authorization = text if authorization is None else f"{authorization}, {text}"
        state = layer.lookup(authorization, scope.get("wacht"))
        state = _store(scope, state or await layer.aresolve(ScopeView(scope), looked_up=True))
        scope["wacht.authenticator"] = layer  # for page guards: where to sign in
        if state.redirect or (layer.protect_all and state.session is None):
            refusal = layer.refusal(ScopeView(scope), state)
            if refusal is not None:
                await answer(scope, send, refusal, token_presented=state.token_presented,
                             headers=state.response_headers, receive=receive)  # fmt: skip
                return
        if state.response_headers:  # the gateway's rate-limit state, on every answer
            send = adding(send, state.response_headers)
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
            await answer(scope, send, error, token_presented=state.token_presented)

    def _prefetching(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message.get("type") == "lifespan.startup":
                await self.layer.aprefetch_keys()
            return message

        return wrapped


def _refuse(conn: HTTPConnection, refusal: Refused, state: AuthState) -> Any:
    done = Refusal(refusal, token_presented=state.token_presented)
    if conn.scope["type"] == "websocket":  # a websocket endpoint's return value is dropped
        return done(conn.scope, conn.receive, conn.send)  # type: ignore[attr-defined]
    return done  # a page's redirect: the middleware adds the state's cookies


_guards: Guards[HTTPConnection] = Guards(
    state=lambda conn, needs: get_auth_state(conn.scope, None, needs),
    astate=lambda conn, needs: aget_auth_state(conn.scope, None, needs),
    refuse=_refuse,
    sign_in=lambda conn: _layer(conn.scope, None).handshake.sign_in_location(ScopeView(conn.scope)),
    find=functools.partial(request_argument, first=False),
    params=lambda conn, kwargs: conn.path_params,
)
require_auth = _guards.require_auth
require_permission = _guards.require_permission
require_scope = _guards.require_scope
require_organization = _guards.require_organization
require_workspace = _guards.require_workspace


from ._asgi_pages import SignOut, sign_out  # noqa: E402  # re-exported
from ._asgi_webhooks import webhook  # noqa: E402  # re-exported
