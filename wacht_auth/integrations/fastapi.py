"""FastAPI adapter: dependencies returning the verified :class:`~wacht_auth.Session`.

``Depends(require_auth)``, ``Depends(require_permission("invoices:write"))``,
``Depends(require_organization())``, ``Depends(require_workspace())``. They verify the request
once (reusing the state :class:`~wacht_auth.integrations.asgi.WachtMiddleware` stored, or
verifying themselves and caching it in the scope), and declare the bearer scheme so that the
OpenAPI schema shows it. :func:`install` wires an app in one call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import Depends, FastAPI, WebSocket
from fastapi.requests import HTTPConnection
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..auth import AuthState, Caller, PublicPaths, Requirement, error_response
from ..config import Config
from ..errors import WachtAuthError
from ..session import PermissionScope
from .asgi import WachtMiddleware, _is_cors_middleware, aget_auth_state

if TYPE_CHECKING:
    from starlette.types import ExceptionHandler

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


async def get_auth_state(connection: HTTPConnection, _credentials: Credentials) -> AuthState:
    """Dependency: the caller's :class:`~wacht_auth.auth.AuthState` (anonymous allowed).

    Typed on ``HTTPConnection``, not ``Request``, so that it (and every dependency built on
    it) works on websocket routes as well as HTTP ones; ``bearer_scheme`` only documents
    the scheme in OpenAPI, and websocket routes are not in the schema anyway.
    """
    return await aget_auth_state(connection.scope)


State = Annotated[AuthState, Depends(get_auth_state)]


def _dependency(requirement: Requirement) -> Callable[..., Awaitable[Caller]]:
    needs = requirement.permissions

    async def dependency(connection: HTTPConnection, _credentials: Credentials) -> Caller:
        # The permissions go to the gateway when this dependency is what checks an API key.
        state = await aget_auth_state(connection.scope, None, needs)
        return requirement.check(state)  # a WachtAuthError is answered by the handler

    return dependency


_SIGNED_IN = Requirement()  # built once: a dataclass with checks in __post_init__


async def require_auth(state: State) -> Caller:
    """Dependency: the caller (the ``Session`` of a session token; a ``Credential`` for an
    API key or OAuth token the app accepts), or 401 with the precise code
    (``token_expired`` …). To narrow the kinds a route takes, use :func:`require_caller`."""
    return _SIGNED_IN.check(state)


def require_caller(*, accept: Iterable[str]) -> Callable[..., Awaitable[Caller]]:
    """Dependency factory: :func:`require_auth` for the credential kinds in ``accept`` only
    (``"session_token"``, ``"api_key"``, ``"oauth_token"``); others get 401
    ``credential_invalid``."""
    return _dependency(Requirement(accept=tuple(accept)))


def require_permission(
    *permissions: str,
    scope: PermissionScope | None = None,
    require_all: bool = False,
    accept: Iterable[str] | None = None,
) -> Callable[..., Awaitable[Caller]]:
    """Dependency factory: the caller when it holds one (or all) of ``permissions``, else
    403 ``permission_denied``."""
    kinds = None if accept is None else tuple(accept)
    return _dependency(Requirement(permissions, scope, require_all, accept=kinds))


def require_organization(
    organization_id: str | None = None, *, accept: Iterable[str] | None = None
) -> Callable[..., Awaitable[Caller]]:
    """Dependency factory: the caller with an active (or this) organization, else 403."""
    kinds = None if accept is None else tuple(accept)
    return _dependency(Requirement(organization=organization_id or True, accept=kinds))


def require_workspace(
    workspace_id: str | None = None, *, accept: Iterable[str] | None = None
) -> Callable[..., Awaitable[Caller]]:
    """Dependency factory: the caller with an active (or this) workspace, else 403."""
    kinds = None if accept is None else tuple(accept)
    return _dependency(Requirement(workspace=workspace_id or True, accept=kinds))


async def wacht_exception_handler(request: HTTPConnection, exc: Exception) -> Response | None:
    """Answer a :class:`~wacht_auth.WachtAuthError` as JSON with ``WWW-Authenticate`` etc.;
    on a websocket, close the handshake with 1008 and the error code (RFC 6455 §7.4.1), as
    the middleware and the ASGI decorators do.

    Register with ``app.add_exception_handler(WachtAuthError, wacht_exception_handler)``.
    """
    if not isinstance(exc, WachtAuthError):  # pragma: no cover - registered for it only
        raise exc
    if isinstance(request, WebSocket):
        await request.close(code=1008, reason=exc.code)
        return None
    status, headers, body = error_response(exc)
    return Response(body, status, headers)


def _move_inside_cors(app: FastAPI) -> None:
    """Move the WachtMiddleware just added inside every ``CORSMiddleware`` added before it.

    Starlette makes the middleware added last the outermost, so ``install()`` called after
    ``app.add_middleware(CORSMiddleware, ...)`` would put ours outside CORS: the 401s it sends
    itself in protect-all mode would lack ``Access-Control-Allow-Origin`` and a browser could
    not read ``token_expired``. Only its place relative to CORS changes; a CORSMiddleware
    added after ``install()`` is already outside and stays there.
    """
    stack = app.user_middleware  # outermost first; add_middleware inserted ours at 0
    cors = [i for i, entry in enumerate(stack) if i and _is_cors_middleware(entry.cls)]
    if cors:
        stack.insert(cors[-1], stack.pop(0))  # after the pop, cors[-1] is just inside it


def install(
    app: FastAPI,
    verifier: Verifier | None = None,
    *,
    config: Config | None = None,
    middleware: bool = True,
    protect_all: bool = False,
    public_paths: Iterable[str] | PublicPaths = (),
    prefetch: bool = False,
    accept: Iterable[str] = ("session_token",),
    page_paths: Iterable[str] = (),
    trusted_proxies: int | str | Iterable[str] | None = None,
) -> Verifier:
    """Wire ``app``: the exception handler, ``app.state.wacht_verifier`` and (unless
    ``middleware=False``) :class:`~wacht_auth.integrations.asgi.WachtMiddleware`.

    Without the middleware the dependencies verify the token themselves, only on the routes
    that use them; websockets, ``protect_all``/``prefetch`` and ``accept`` of API keys or
    OAuth tokens (whose rate-limit headers the middleware adds to every answer) need it.
    """
    accept = tuple(accept)
    if verifier is None:
        from ..verifier import Verifier

        verifier = Verifier(config) if config is not None else Verifier.from_env()
    app.state.wacht_verifier = verifier
    # One handler for HTTP and websocket connections: neither branch of Starlette's
    # ExceptionHandler union describes that, hence the cast.
    app.add_exception_handler(WachtAuthError, cast("ExceptionHandler", wacht_exception_handler))
    if middleware:
        options: dict[str, Any] = {
            "protect_all": protect_all,
            "prefetch": prefetch,
            "page_paths": page_paths,
            "trusted_proxies": trusted_proxies,
        }
        app.add_middleware(
            WachtMiddleware, verifier=verifier, public_paths=public_paths, accept=accept, **options
        )
        _move_inside_cors(app)
    elif protect_all or prefetch or accept != ("session_token",):
        raise ValueError("protect_all, prefetch and accept need the middleware (middleware=True)")
    return verifier


# ---- webhooks
from collections.abc import AsyncIterator  # noqa: E402  # one block, carried over whole

from fastapi import Request  # noqa: E402

from ..webhooks import Event, Receiver  # noqa: E402
from .asgi import webhook  # noqa: E402

__all__ += ["webhook", "webhook_event"]


def webhook_event(receiver: Receiver | None = None) -> Callable[[Request], AsyncIterator[Event]]:
    """Dependency factory: ``event: Annotated[Event, Depends(webhook_event())]`` is the
    verified delivery (the raw body read first, capped). A refusal raises its
    :class:`~wacht_auth.errors.WebhookError`, answered as JSON by
    :func:`wacht_exception_handler`; the delivery's id is remembered once the endpoint
    returned without raising. Without ``receiver`` it is built now from
    ``WACHT_WEBHOOK_SECRET``. :func:`webhook` answers refusals itself."""
    hooks = receiver or Receiver.from_settings()

    async def dependency(request: Request) -> AsyncIterator[Event]:
        event = await hooks.areceive(request.method, request.headers, request.stream())
        yield event  # the endpoint runs here; an exception it raises skips the next line
        hooks.accepted(event)

    return dependency
