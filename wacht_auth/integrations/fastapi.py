"""FastAPI adapter: dependencies returning the caller, and :func:`install`.

``Depends(require_auth)``, ``Depends(require_permission("invoices:write"))``,
``Depends(require_scope("invoices:read"))``, ``Depends(require_organization())``,
``Depends(require_workspace())``. They verify the request
once (reusing the state :class:`~wacht_auth.integrations.asgi.WachtMiddleware` stored, or
verifying themselves and caching it in the scope), and declare the bearer scheme so that the
OpenAPI schema shows it. :func:`install` wires an app in one call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, FastAPI
from fastapi.requests import HTTPConnection
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..auth import AuthState, Caller, Requirement, Requirements, configure, requirement
from ..auth.guards import uncalled_refused
from ..config import Config
from ..errors import WachtAuthError
from ._asgi import Refusal
from ._cors import move_inside
from .asgi import WachtMiddleware, aget_auth_state

if TYPE_CHECKING:
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
    "webhook",
    "webhook_event",
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


async def get_auth_state(connection: HTTPConnection, _credentials: Credentials) -> AuthState:
    """Dependency: the caller's :class:`~wacht_auth.auth.AuthState` (anonymous allowed).

    Typed on ``HTTPConnection``, not ``Request``, so that it (and every dependency built on
    it) works on websocket routes as well as HTTP ones.
    """
    return await aget_auth_state(connection.scope)


def _dependency(needed: Requirement) -> Callable[..., Awaitable[Caller]]:
    if needed.redirect:
        raise TypeError("a FastAPI dependency cannot redirect to a sign-in page")

    async def dependency(connection: HTTPConnection, _credentials: Credentials) -> Caller:
        """The caller, when it meets the route's requirement; else its refusal is raised
        (answered by :func:`wacht_exception_handler`)."""
        # The permissions go to the gateway when this dependency is what checks an API key.
        state = await aget_auth_state(connection.scope, None, needed.permissions)
        return needed.check(state, connection.path_params)

    return dependency


_requirements = Requirements(_dependency)
#: ``Depends(require_auth)``: the caller (the ``Session`` of a session token; a ``Credential``
#: for an API key or OAuth token the app accepts), or 401 with the precise code
#: (``token_expired`` …). To narrow the kinds a route takes, use :func:`require_caller`.
require_auth = _dependency(requirement())
require_caller = uncalled_refused(_requirements.require_caller, HTTPConnection)
require_permission = uncalled_refused(_requirements.require_permission, HTTPConnection)
require_scope = uncalled_refused(_requirements.require_scope, HTTPConnection)
require_organization = uncalled_refused(_requirements.require_organization, HTTPConnection)
require_workspace = uncalled_refused(_requirements.require_workspace, HTTPConnection)


async def wacht_exception_handler(request: HTTPConnection, exc: Exception) -> Refusal:
    """Answer a :class:`~wacht_auth.WachtAuthError` as the middleware does (JSON with
    ``WWW-Authenticate`` …; a websocket handshake closed with 1008 and the code). Register
    with ``app.add_exception_handler(WachtAuthError, wacht_exception_handler)``."""
    assert isinstance(exc, WachtAuthError)  # registered for it only
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
    layer = configure(verifier=verifier, config=config, **options)
    app.state.wacht_verifier = layer.verifier
    app.add_exception_handler(WachtAuthError, wacht_exception_handler)  # HTTP and websockets
    if middleware:
        app.add_middleware(WachtMiddleware, layer=layer)
        move_inside(app.user_middleware)
    elif layer.protect_all or layer.prefetch or layer.accept != ("session_token",):
        raise ValueError("protect_all, prefetch and accept need the middleware (middleware=True)")
    return layer.verifier


from ._asgi_webhooks import webhook, webhook_event  # noqa: E402  # re-exported
