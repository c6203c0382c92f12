"""FastAPI adapter: dependencies returning the caller, and :func:`install`.

``Depends(require_auth)``, ``Depends(require_permission("invoices:write"))``,
``Depends(require_scope("invoices:read"))``, ``Depends(require_organization())``,
``Depends(require_workspace())``. They verify the request
once (reusing the state :class:`~wacht_auth.integrations.asgi.WachtMiddleware` stored, or
verifying themselves and caching it in the scope), and declare the bearer scheme so that the
OpenAPI schema shows it. :func:`install` wires an app in one call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import Depends, FastAPI
from fastapi.requests import HTTPConnection
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..auth import AuthState, Caller, Requirement, configure, requirement
from ..config import Config
from ..errors import WachtAuthError
from ..session import PermissionScope
from ._cors import move_inside
from .asgi import Refusal, WachtMiddleware, aget_auth_state

if TYPE_CHECKING:
    from starlette.types import ExceptionHandler
    from typing_extensions import Unpack

    from ..auth import Options
    from ..verifier import Verifier

__all__ = [
    "WachtMiddleware",
    "bearer_scheme",
    "get_auth_state",
    "install",
    "require_auth",
    "require_caller",
    "require_organization",
    "require_permission",
    "require_scope",
    "require_workspace",
    "wacht_exception_handler",
]

#: The ``Authorization: Bearer`` scheme as OpenAPI shows it (``components.securitySchemes``).
#: ``auto_error=False``: the token may also come from the session cookie, and a missing one is
#: answered by the requirement with our own JSON error, not FastAPI's.
bearer_scheme = HTTPBearer(
    scheme_name="WachtBearer",
    bearerFormat="JWT",
    description="A Wacht session token (`GET {frontend}/session/token`).",
    auto_error=False,
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
Dependency = Callable[..., Awaitable[Caller]]


async def get_auth_state(connection: HTTPConnection, _credentials: Credentials) -> AuthState:
    """Dependency: the caller's :class:`~wacht_auth.auth.AuthState` (anonymous allowed).

    Typed on ``HTTPConnection``, not ``Request``, so that it (and every dependency built on
    it) works on websocket routes as well as HTTP ones.
    """
    return await aget_auth_state(connection.scope)


def _dependency(needed: Requirement) -> Dependency:
    async def dependency(connection: HTTPConnection, _credentials: Credentials) -> Caller:
        # The permissions go to the gateway when this dependency is what checks an API key.
        state = await aget_auth_state(connection.scope, None, needed.permissions)
        return needed.check(state)  # a WachtAuthError is answered by the handler

    return dependency


_SIGNED_IN = requirement()
# The factories' last parameter: FastAPI fills it with the connection when a factory itself is
# given to Depends (``Depends(require_organization)``); the factory then refuses (fail closed).
_UNSET: Any = None


def _factory(connection: object, name: str) -> None:
    if connection is not _UNSET:
        raise TypeError(f"write Depends({name}(...)) with parentheses, not Depends({name})")


async def require_auth(state: Annotated[AuthState, Depends(get_auth_state)]) -> Caller:
    """Dependency: the caller (the ``Session`` of a session token; a ``Credential`` for an
    API key or OAuth token the app accepts), or 401 with the precise code
    (``token_expired`` …). To narrow the kinds a route takes, use :func:`require_caller`."""
    return _SIGNED_IN.check(state)


def require_caller(*, accept: Iterable[str], _connection: HTTPConnection = _UNSET) -> Dependency:
    """:func:`require_auth` for the credential kinds in ``accept`` only (``"session_token"``,
    ``"api_key"``, ``"oauth_token"``); others get 401 ``credential_invalid``."""
    _factory(_connection, "require_caller")
    return _dependency(requirement(accept=accept))


def require_permission(
    *permissions: str,
    scope: PermissionScope | None = None,
    require_all: bool = False,
    accept: Iterable[str] | None = None,
    _connection: HTTPConnection = _UNSET,
) -> Dependency:
    """The caller when it holds one (or all) of ``permissions``, else 403
    ``permission_denied``."""
    _factory(_connection, "require_permission")
    if not permissions:
        raise TypeError('write require_permission("name", ...) with at least one permission')
    return _dependency(
        requirement(*permissions, scope=scope, require_all=require_all, accept=accept)
    )


def require_scope(
    *scopes: str, accept: Iterable[str] | None = None, _connection: HTTPConnection = _UNSET
) -> Dependency:
    """The caller when it is an OAuth access token (opaque or JWT) granted every one of
    ``scopes``, else 403 ``permission_denied``."""
    _factory(_connection, "require_scope")
    if not scopes:
        raise TypeError('write require_scope("name", ...) with at least one scope')
    return _dependency(requirement(scopes=scopes, accept=accept))


def require_organization(
    organization_id: str | None = None,
    *,
    accept: Iterable[str] | None = None,
    _connection: HTTPConnection = _UNSET,
) -> Dependency:
    """The caller with an active (or this) organization, else 403 ``organization_required``."""
    _factory(_connection, "require_organization")
    return _dependency(requirement(organization=organization_id or True, accept=accept))


def require_workspace(
    workspace_id: str | None = None,
    *,
    accept: Iterable[str] | None = None,
    _connection: HTTPConnection = _UNSET,
) -> Dependency:
    """The caller with an active (or this) workspace, else 403 ``workspace_required``."""
    _factory(_connection, "require_workspace")
    return _dependency(requirement(workspace=workspace_id or True, accept=accept))


async def wacht_exception_handler(request: HTTPConnection, exc: Exception) -> Refusal:
    """Answer a :class:`~wacht_auth.WachtAuthError` as the middleware does (JSON with
    ``WWW-Authenticate`` …; a websocket handshake closed with 1008 and the code). Register
    with ``app.add_exception_handler(WachtAuthError, wacht_exception_handler)``."""
    if not isinstance(exc, WachtAuthError):  # pragma: no cover - registered for it only
        raise exc
    return Refusal(exc)


def install(
    app: FastAPI,
    verifier: Verifier | None = None,
    *,
    config: Config | None = None,
    middleware: bool = True,
    **options: Unpack[Options],
) -> Verifier:
    """Wire ``app``: the exception handler, ``app.state.wacht_verifier`` and (unless
    ``middleware=False``) :class:`~wacht_auth.integrations.asgi.WachtMiddleware`, inside any
    ``CORSMiddleware`` added before. Settings as the middleware reads them: the environment
    unless ``verifier`` or ``config`` is given, options in code winning.

    Without the middleware the dependencies verify the token themselves, only on the routes
    that use them; websockets, ``protect_all``/``prefetch`` and ``accept`` of API keys or
    OAuth tokens (whose rate-limit headers the middleware adds to every answer) need it.
    """
    layer = configure(
        env=verifier is None and config is None, verifier=verifier, config=config, **options
    )
    app.state.wacht_verifier = layer.verifier
    # One handler for HTTP and websocket connections: neither branch of Starlette's
    # ExceptionHandler union describes that, hence the cast.
    app.add_exception_handler(WachtAuthError, cast("ExceptionHandler", wacht_exception_handler))
    if middleware:
        app.add_middleware(WachtMiddleware, layer=layer)
        move_inside(app.user_middleware)
    elif layer.protect_all or layer.prefetch or layer.accept != ("session_token",):
        raise ValueError("protect_all, prefetch and accept need the middleware (middleware=True)")
    return layer.verifier
