"""The request layer: one place that reads a request and decides everything about its caller.

Every adapter wraps its framework's request in a :class:`RequestView` (header, cookie,
method, path, own origin) and calls one :class:`Authenticator` once per request. The
authenticator decides where the token comes from, whether a state attached earlier may be
reused, the CSRF rule for cookie-borne tokens, the CORS preflight rule, which routes are
open under ``protect_all`` and what a route's requirements mean; it answers with an immutable
:class:`AuthState`. :class:`Guards` turns requirements into view decorators for any
framework. An adapter only translates: native request in, native state and response out.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, ParamSpec, Protocol, TypeVar, cast
from urllib.parse import urlsplit

from .config import Settings
from .errors import (
    CsrfFailedError,
    OrganizationRequiredError,
    PermissionDeniedError,
    TokenMissingError,
    WachtAuthError,
    WorkspaceRequiredError,
)
from .session import PermissionScope, Session

if TYPE_CHECKING:
    from .verifier import Verifier

__all__ = [
    "SAFE_METHODS",
    "AuthState",
    "Authenticator",
    "Guards",
    "PublicPaths",
    "RequestView",
    "Requirement",
    "TokenSource",
    "bearer_token",
    "cookie_reader",
    "error_response",
    "origin_of",
    "request_argument",
]

#: Methods that must not change state (RFC 9110 §9.2.1); cookies are trusted on these alone.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

# RFC 6750 §2.1: the scheme is case-insensitive (RFC 9110 §11.1); one or more spaces follow.
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +(.*)\Z", re.DOTALL)

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")


class RequestView(Protocol):
    """What the request layer reads of a request; each adapter implements it over its own.

    ``method`` is the HTTP method in upper case; a websocket handshake reports
    ``"WEBSOCKET"``: browsers send it cross-site with cookies, so for the CSRF rule it is an
    unsafe request (cross-site websocket hijacking). ``path`` is the path the app routes on.
    """

    @property
    def method(self) -> str:
        """The request method, upper case (``"WEBSOCKET"`` for a websocket handshake)."""
        ...

    @property
    def path(self) -> str:
        """The path the app routes on."""
        ...

    def header(self, name: str) -> str | None:
        """The first value of the header ``name`` (given in lower case), or None."""
        ...

    def cookie(self, name: str) -> str | None:
        """The value of the cookie ``name``, or None."""
        ...

    def own_origin(self) -> str | None:
        """The app's own origin as this request reached it: ``scheme://host[:port]``."""
        ...


class TokenSource(NamedTuple):
    """A token found on a request, and whether it came from the session cookie."""

    token: str
    from_cookie: bool = False


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None for other schemes.

    ``Bearer`` with nothing after it yields ``""``, which the verifier rejects as malformed:
    a client that sent the scheme meant to authenticate.
    """
    if not authorization:
        return None
    if authorization.startswith("Bearer ") and " " not in authorization[7:].strip():
        return authorization[7:].strip()  # the common shape, without the regex
    match = _BEARER.match(authorization.strip())
    if match is None:
        return "" if authorization.strip().lower() == "bearer" else None
    return match.group(1).strip()


def cookie_reader(header: bytes | str) -> Callable[[str], str | None]:
    """A lookup over a raw ``Cookie`` header (RFC 6265 §4.2), for servers that give no parsed
    cookies (raw ASGI). The first cookie of a name wins; a DQUOTE-wrapped value is unwrapped
    (RFC 6265 §4.1.1). Parsing happens only when a cookie is asked for."""

    def cookie(name: str) -> str | None:
        text = header.decode("latin-1") if isinstance(header, bytes) else header
        for chunk in text.split(";"):
            key, _, value = chunk.partition("=")
            if key.strip() == name:
                return value.strip().strip('"')
        return None

    return cookie


def origin_of(url: str | None) -> str | None:
    """The ``scheme://host[:port]`` origin of a URL (lowercased), or None when it has none."""
    if not url or url == "null":
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme)
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


class AuthState:
    """The caller's authentication state, always present on a request as ``wacht``.

    Immutable: built by the :class:`Authenticator` and never changed afterwards, so it can be
    shared (an assignment raises ``AttributeError``). ``user_id`` is None when nobody is signed
    in; when a token was sent but failed, ``error`` keeps the precise failure so that
    :meth:`require` answers with its code (``token_expired`` lets the front end refresh).
    ``verifier`` is the verifier that produced the state: another one never reuses it.
    """

    __slots__ = ("error", "session", "token_presented", "verifier")

    session: Session | None
    error: WachtAuthError | None
    token_presented: bool
    verifier: object

    def __init__(
        self,
        session: Session | None = None,
        error: WachtAuthError | None = None,
        *,
        token_presented: bool = False,
        verifier: object = None,
    ) -> None:
        init = object.__setattr__
        init(self, "session", session)
        init(self, "error", error)
        init(self, "token_presented", token_presented or session is not None)
        init(self, "verifier", verifier)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"AuthState is read-only: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"AuthState is read-only: cannot delete {name!r}")

    def __repr__(self) -> str:
        if self.session is not None:
            return f"<AuthState user_id={self.session.user_id!r}>"
        if self.error is not None:
            return f"<AuthState error={self.error.code!r}>"
        return "<AuthState anonymous>"

    @property
    def is_authenticated(self) -> bool:
        """True when a valid session token was presented."""
        return self.session is not None

    @property
    def user_id(self) -> str | None:
        """The signed-in user's id (``sub``), or None."""
        return self.session.user_id if self.session else None

    @property
    def session_id(self) -> str | None:
        """The session id, or None."""
        return self.session.session_id if self.session else None

    @property
    def organization_id(self) -> str | None:
        """The active organization, or None."""
        return self.session.organization_id if self.session else None

    @property
    def workspace_id(self) -> str | None:
        """The active workspace, or None."""
        return self.session.workspace_id if self.session else None

    @property
    def organization_permissions(self) -> tuple[str, ...]:
        """Permissions in the active organization (empty when anonymous)."""
        return self.session.organization_permissions if self.session else ()

    @property
    def workspace_permissions(self) -> tuple[str, ...]:
        """Permissions in the active workspace (empty when anonymous)."""
        return self.session.workspace_permissions if self.session else ()

    @property
    def permissions(self) -> tuple[str, ...]:
        """Organization and workspace permissions (empty when anonymous)."""
        return self.session.permissions if self.session else ()

    @property
    def claims(self) -> Mapping[str, Any]:
        """All claims of the verified token, deeply read-only (empty when anonymous)."""
        return self.session.claims if self.session else _NO_CLAIMS

    @property
    def token(self) -> str | None:
        """The verified raw token, or None."""
        return self.session.token if self.session else None

    def has_permission(self, permission: str, scope: PermissionScope | None = None) -> bool:
        """Whether the caller is signed in and holds ``permission``."""
        return self.session is not None and self.session.has_permission(permission, scope)

    def forward_headers(self) -> dict[str, str]:
        """Headers forwarding the user's token to the Backend API; raises when not signed in."""
        return self.require().forward_headers()

    def require(self) -> Session:
        """The session, or the error that explains why there is none (401, or 503 for keys)."""
        if self.session is not None:
            return self.session
        raise self.error or TokenMissingError()


_NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})


class Authenticator:
    """The request layer of one app: a verifier and the app's options, deciding per request.

    Args:
        verifier: the :class:`~wacht_auth.Verifier` (or any object with ``config``,
            ``verify``, ``averify`` and ``cached``).
        protect_all: require a signed-in caller on every route except ``public_paths``, routes
            an adapter marks public, and CORS preflights.
        public_paths: paths open under ``protect_all``: exact, or a prefix ending in ``*``.
        prefetch: fetch the keys when the app starts (the adapter calls :meth:`prefetch`).
    """

    __slots__ = (
        "_anonymous",
        "_cookie",
        "_trusted",
        "prefetch",
        "protect_all",
        "public_paths",
        "verifier",
    )

    def __init__(
        self,
        verifier: Verifier,
        *,
        protect_all: bool = False,
        public_paths: Iterable[str] | PublicPaths = (),
        prefetch: bool = False,
    ) -> None:
        config = verifier.config
        self.verifier = verifier
        self.protect_all = bool(protect_all)
        self.prefetch = bool(prefetch)
        self.public_paths = (
            public_paths if isinstance(public_paths, PublicPaths) else PublicPaths(public_paths)
        )
        self._cookie = config.cookie_name if config.read_cookies else None
        # Origins trusted to send a cookie-borne token on an unsafe method, besides the app's.
        self._trusted = frozenset(filter(None, map(origin_of, config.authorized_parties)))
        self._anonymous = AuthState(verifier=verifier)  # immutable: one serves every request

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        verifier: Verifier | None = None,
        protect_all: bool | None = None,
        public_paths: Iterable[str] = (),
        prefetch: bool | None = None,
    ) -> Authenticator:
        """Build the layer from :class:`~wacht_auth.config.Settings` (Django's, Flask's or the
        environment's); arguments given in code win, ``public_paths`` add to the setting's."""
        from .verifier import Verifier

        verifier = verifier or settings.option("verifier") or Verifier(settings.build_config())
        return cls(
            verifier,
            protect_all=settings.option("protect_all", False)
            if protect_all is None
            else protect_all,
            public_paths=(*settings.option("public_paths", ()), *public_paths),
            prefetch=settings.option("prefetch", False) if prefetch is None else prefetch,
        )

    def __repr__(self) -> str:
        return f"Authenticator({self.verifier!r}, protect_all={self.protect_all})"

    # ---------------------------------------------------------------- the caller's state

    def authenticate(self, request: RequestView, prior: object = None) -> AuthState:
        """The request's :class:`AuthState`. ``prior`` is a state attached earlier (an outer
        middleware's): reused only when this layer's verifier produced it. Never raises a
        :class:`~wacht_auth.WachtAuthError`: failures are kept on the state."""
        return self.reuse(request, prior) or self.verify_request(request)

    async def aauthenticate(self, request: RequestView, prior: object = None) -> AuthState:
        """:meth:`authenticate` for asyncio: keys are fetched without blocking the loop."""
        return self.reuse(request, prior) or await self.averify_request(request)

    def reuse(self, request: RequestView, prior: object = None) -> AuthState | None:
        """The state without verifying anything: ``prior`` when this layer's verifier made
        it, or the cached answer for a repeated bearer token (one lookup, no CSRF inputs:
        bearer headers are exempt); None when the request must be verified."""
        if type(prior) is AuthState and prior.verifier is self.verifier:
            return prior
        return self.cached(request.header("authorization"))

    def cached(self, authorization: str | None) -> AuthState | None:
        """The state of a repeated bearer token, from the verifier's cache: one lookup, no
        CSRF inputs (bearer headers are exempt). ``authorization`` is the raw header value;
        None on a miss, another scheme or no header (then :meth:`verify_request`)."""
        # A cached token is a verified one, without spaces: this slice is exactly what
        # bearer_token() returns for it; any other shape misses and takes the full path.
        if authorization is not None and authorization.startswith("Bearer "):
            session = self.verifier.cached(authorization[7:])
            if session is not None:
                # Immutable, so one state serves every request carrying this token: built on
                # the first hit and kept on the (equally shared, read-only) Session.
                state = session._state
                if type(state) is not AuthState or state.verifier is not self.verifier:
                    state = session._state = AuthState(session, verifier=self.verifier)
                return state
        return None

    def verify_request(self, request: RequestView) -> AuthState:
        """Find the request's token, check CSRF and verify (no cache or prior state)."""
        source = self._source(request)
        if source is None:
            return self._anonymous
        try:
            self._check_csrf(request, source)
            return AuthState(self.verifier.verify(source.token), verifier=self.verifier)
        except WachtAuthError as error:
            return AuthState(error=error, token_presented=True, verifier=self.verifier)

    async def averify_request(self, request: RequestView) -> AuthState:
        """:meth:`verify_request` for asyncio."""
        source = self._source(request)
        if source is None:
            return self._anonymous
        try:
            self._check_csrf(request, source)
            return AuthState(await self.verifier.averify(source.token), verifier=self.verifier)
        except WachtAuthError as error:
            return AuthState(error=error, token_presented=True, verifier=self.verifier)

    def _source(self, request: RequestView) -> TokenSource | None:
        """``Authorization: Bearer`` first, then the session cookie (DESIGN.md §2)."""
        token = bearer_token(request.header("authorization"))
        if token is not None:
            return TokenSource(token)
        if self._cookie is not None:
            value = request.cookie(self._cookie)
            if value:
                return TokenSource(value, from_cookie=True)
        return None

    def _check_csrf(self, request: RequestView, source: TokenSource) -> None:
        """A cookie-borne token on an unsafe method needs a same-origin (or trusted) sender.

        Browsers attach cookies to cross-site requests; the ``Authorization`` header they
        never add on their own, so bearer tokens are exempt. When ``Origin`` is present it
        alone decides, and the opaque origin ``null`` is foreign (RFC 6454 §7.3: sandboxed
        frames, redirects across origins); ``Referer`` counts only when ``Origin`` is absent.
        A request with neither is refused.
        """
        if not source.from_cookie or request.method in SAFE_METHODS:
            return
        origin = request.header("origin")
        sender = origin_of(origin) if origin is not None else origin_of(request.header("referer"))
        if sender is None or (
            sender not in self._trusted and sender != origin_of(request.own_origin())
        ):
            raise CsrfFailedError(
                "a session cookie was sent on an unsafe request from a foreign or unknown "
                "origin; send the token in the Authorization header or add the origin to "
                "authorized_parties"
            )

    # ---------------------------------------------------------------- the route

    def is_open(self, request: RequestView, *, public_route: bool = False) -> bool:
        """Whether the route stays open under ``protect_all``: marked public by the adapter
        (``public_route``), under ``public_paths``, or a CORS preflight.

        One preflight rule for every framework: a real preflight is ``OPTIONS`` with
        ``Access-Control-Request-Method`` (Fetch standard, "CORS-preflight request"); browsers
        never send credentials on it, so refusing it would break CORS. A plain ``OPTIONS`` is
        an ordinary request and needs a caller like any other.
        """
        if public_route or request.path in self.public_paths:
            return True
        return request.method == "OPTIONS" and (
            request.header("access-control-request-method") is not None
        )

    def refusal(
        self, request: RequestView, state: AuthState, *, public_route: bool = False
    ) -> WachtAuthError | None:
        """Under ``protect_all``, the error to answer a request with; None lets it through."""
        if not self.protect_all or state.session is not None:
            return None
        if self.is_open(request, public_route=public_route):
            return None
        return state.error or TokenMissingError()

    def prefetch_keys(self) -> None:
        """Fetch the keys now (start-up); a failure is logged, keys are fetched on first need."""
        try:
            self.verifier.prefetch()
        except WachtAuthError as error:
            _log_prefetch(error)

    async def aprefetch_keys(self) -> None:
        """:meth:`prefetch_keys` for asyncio."""
        try:
            await self.verifier.aprefetch()
        except WachtAuthError as error:
            _log_prefetch(error)


def _log_prefetch(error: WachtAuthError) -> None:
    from ._events import LOGGER

    LOGGER.warning("wacht_auth: key prefetch at start-up failed: %s", error)


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a route requires of its caller; ``check`` returns the session or raises.

    Attributes:
        permissions: permissions to hold (any one of them, or all with ``require_all``).
        scope: ``"organization"``/``"workspace"`` to look in one place only; None for either.
        require_all: require every permission instead of any one.
        organization: True for "some active organization", or a specific organization id.
        workspace: True for "some active workspace", or a specific workspace id.
    """

    permissions: tuple[str, ...] = ()
    scope: PermissionScope | None = None
    require_all: bool = False
    organization: bool | str = False
    workspace: bool | str = False

    def __post_init__(self) -> None:
        if self.scope not in (None, "organization", "workspace"):
            raise ValueError(f"scope must be 'organization', 'workspace' or None: {self.scope!r}")
        for permission in self.permissions:
            if not isinstance(permission, str) or not permission:
                raise ValueError(f"permissions must be non-empty strings: {permission!r}")

    def check(self, state: AuthState) -> Session:
        """Return the caller's session when it meets this requirement, else raise the error
        of DESIGN.md §5 (401 when not signed in, 403 when signed in but not allowed)."""
        session = state.require()
        if self.organization is not False:
            wanted = None if self.organization is True else self.organization
            if session.organization_id is None or (wanted and session.organization_id != wanted):
                raise OrganizationRequiredError(
                    f"this endpoint requires the active organization {wanted}"
                    if wanted
                    else "this endpoint requires an active organization"
                )
        if self.workspace is not False:
            wanted = None if self.workspace is True else self.workspace
            if session.workspace_id is None or (wanted and session.workspace_id != wanted):
                raise WorkspaceRequiredError(
                    f"this endpoint requires the active workspace {wanted}"
                    if wanted
                    else "this endpoint requires an active workspace"
                )
        if self.permissions:
            held = [p for p in self.permissions if session.has_permission(p, self.scope)]
            if not held or (self.require_all and len(held) != len(self.permissions)):
                missing = [p for p in self.permissions if p not in held]
                needed = "all of" if self.require_all else "one of"
                raise PermissionDeniedError(
                    f"this endpoint requires {needed}: {', '.join(self.permissions)} "
                    f"(missing: {', '.join(missing)})"
                )
        return session


_SIGNED_IN = Requirement()


class PublicPaths:
    """Paths that stay open when every other route is protected.

    An entry ending in ``*`` is a prefix (``"/public/*"``); any other entry matches exactly.
    """

    __slots__ = ("_entries", "_exact", "_prefixes")

    def __init__(self, paths: Iterable[str] = ()) -> None:
        items = self._entries = tuple(paths)
        for item in items:
            if not isinstance(item, str) or not item:
                raise TypeError(f"public paths must be non-empty strings, got {item!r}")
        self._exact = frozenset(p for p in items if not p.endswith("*"))
        self._prefixes = tuple(p[:-1] for p in items if p.endswith("*"))

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and (
            path in self._exact or any(path.startswith(p) for p in self._prefixes)
        )

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __repr__(self) -> str:
        return f"PublicPaths({list(self._entries)!r})"


def request_argument(
    view: Callable[..., Any], *, first: bool = True
) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    """Where ``view`` takes its request, found once, when it is decorated (as Starlette's
    ``requires`` does): a parameter named ``request`` or ``websocket``, else one annotated
    with a request type (``Request``, ``HttpRequest``, ``WebSocket``, ``HTTPConnection``),
    else, with ``first``, the first parameter (``self`` of a method skipped).

    Raises:
        TypeError: ``view`` takes no request argument.
    """
    params = list(inspect.signature(view).parameters.values())
    names = [p.name for p in params]

    def annotated(param: inspect.Parameter) -> bool:
        note = param.annotation
        text = note if isinstance(note, str) else getattr(note, "__name__", "")
        return text.rsplit(".", 1)[-1] in _REQUEST_TYPES

    candidates = [p for p in params if p.name in ("request", "websocket")]
    candidates += [p for p in params if annotated(p)]
    if first:
        candidates += [p for p in params if p.name not in ("self", "cls")]
    if not candidates:
        raise TypeError(
            f"{view.__qualname__} needs a request argument (a Request or WebSocket named "
            "request or websocket) for a wacht_auth decorator"
        )
    name = candidates[0].name
    index = names.index(name)
    if candidates[0].kind is inspect.Parameter.KEYWORD_ONLY:
        return lambda args, kwargs: kwargs[name]
    return lambda args, kwargs: args[index] if len(args) > index else kwargs[name]


_REQUEST_TYPES = frozenset({"Request", "HttpRequest", "WebSocket", "HTTPConnection"})


class Guards(Generic[R]):
    """The requirement decorators of one framework, over one implementation.

    An adapter gives how to get the state of its native request (sync and async) and how to
    refuse natively; everything else (finding the request argument once, at decoration time;
    sync and async views; what each requirement means) is here. Bind an instance's methods as
    the adapter's module functions: ``require_auth = guards.require_auth``.

    Args:
        state: the request's :class:`AuthState` (sync views).
        astate: the same, awaited (async views).
        refuse: the native answer for a failed requirement; may be awaitable (websockets).
        find: given a view, a function from its call's ``(args, kwargs)`` to the request
            (default :func:`request_argument`; Flask's views take none and read a global).
        is_async: whether a view is a coroutine function.
    """

    def __init__(
        self,
        *,
        state: Callable[[R], AuthState],
        astate: Callable[[R], Awaitable[AuthState]],
        refuse: Callable[[R, WachtAuthError, AuthState], Any],
        find: Callable[[Callable[..., Any]], Callable[[tuple[Any, ...], dict[str, Any]], R]] = (
            request_argument
        ),
        is_async: Callable[[Any], bool] = inspect.iscoroutinefunction,
    ) -> None:
        self._state, self._astate, self._refuse = state, astate, refuse
        self._find, self._is_async = find, is_async

    def guard(self, requirement: Requirement) -> Callable[[Callable[P, T]], Callable[P, T]]:
        """A decorator refusing callers who do not meet ``requirement``."""
        # require_auth asks for a session and nothing more: a signed-in caller needs no check.
        signed_in_only = requirement == _SIGNED_IN
        state_of, astate_of, refuse = self._state, self._astate, self._refuse

        def decorate(view: Callable[P, T]) -> Callable[P, T]:
            request_of = self._find(view)
            if self._is_async(view):

                @functools.wraps(view)
                async def async_view(*args: P.args, **kwargs: P.kwargs) -> Any:
                    request = request_of(args, kwargs)
                    state = await astate_of(request)
                    if state.session is None or not signed_in_only:
                        try:
                            requirement.check(state)
                        except WachtAuthError as error:
                            answer = refuse(request, error, state)
                            return await answer if inspect.isawaitable(answer) else answer
                    return await view(*args, **kwargs)  # type: ignore[misc]

                return cast("Callable[P, T]", async_view)

            @functools.wraps(view)
            def sync_view(*args: P.args, **kwargs: P.kwargs) -> Any:
                request = request_of(args, kwargs)
                state = state_of(request)
                if state.session is None or not signed_in_only:
                    try:
                        requirement.check(state)
                    except WachtAuthError as error:
                        return refuse(request, error, state)
                return view(*args, **kwargs)

            return cast("Callable[P, T]", sync_view)

        return decorate

    def require_auth(self, view: Callable[P, T]) -> Callable[P, T]:
        """Decorator: 401 with the precise code (``token_expired`` …) unless signed in."""
        if not callable(view):
            raise TypeError("write @require_auth without parentheses")
        return self.guard(_SIGNED_IN)(view)

    def require_permission(
        self, *permissions: str, scope: PermissionScope | None = None, require_all: bool = False
    ) -> Callable[[Callable[P, T]], Callable[P, T]]:
        """Decorator: 403 ``permission_denied`` unless the caller holds one of
        ``permissions`` (every one with ``require_all``), in ``scope`` (None: either)."""
        if not permissions or any(callable(p) for p in permissions):
            raise TypeError('write @require_permission("name", ...) with at least one permission')
        return self.guard(Requirement(tuple(permissions), scope, require_all))

    def require_organization(
        self, organization_id: str | None = None
    ) -> Callable[[Callable[P, T]], Callable[P, T]]:
        """Decorator: 403 ``organization_required`` without an active (or this) organization."""
        if callable(organization_id):
            raise TypeError("write @require_organization() with parentheses")
        return self.guard(Requirement(organization=organization_id or True))

    def require_workspace(
        self, workspace_id: str | None = None
    ) -> Callable[[Callable[P, T]], Callable[P, T]]:
        """Decorator: 403 ``workspace_required`` without an active (or this) workspace."""
        if callable(workspace_id):
            raise TypeError("write @require_workspace() with parentheses")
        return self.guard(Requirement(workspace=workspace_id or True))


def error_response(
    error: WachtAuthError, *, token_presented: bool = True
) -> tuple[int, dict[str, str], bytes]:
    """The HTTP answer for ``error``: status, headers (``Content-Type`` included), JSON body."""
    headers = {"Content-Type": "application/json"}
    headers.update(error.response_headers(token_presented=token_presented))
    return error.status, headers, error.to_json()
