"""Request authentication shared by every adapter: find the token, check CSRF, keep the state.

An adapter reads its framework's request, hands the raw header values to these functions and
stores the resulting :class:`AuthState` the native way (``request.wacht``,
``request.state.wacht`` …). Everything that decides (where the token comes from, the CSRF rule
for cookie-borne tokens, what a route's requirements mean, the shape of an error response)
lives here, so the frameworks behave the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast
from urllib.parse import urlsplit

from .config import Config
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
    from collections.abc import Awaitable

__all__ = [
    "SAFE_METHODS",
    "AuthState",
    "PublicPaths",
    "Requirement",
    "TokenSource",
    "aauthenticate",
    "authenticate",
    "bearer_token",
    "cached_session",
    "cached_state",
    "cookie_reader",
    "error_response",
    "find_token",
    "origin_of",
]

#: Methods that must not change state (RFC 9110 §9.2.1); cookies are trusted on these alone.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

# RFC 6750 §2.1: the scheme is case-insensitive (RFC 9110 §11.1); one or more spaces follow.
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +(.*)\Z", re.DOTALL)


class _Verifies(Protocol):
    def verify(self, token: str) -> Session: ...

    def averify(self, token: str) -> Awaitable[Session]: ...


class _Caches(Protocol):
    def cached(self, token: object) -> Session | None: ...


class TokenSource(NamedTuple):
    """A token found on a request, and whether it came from the session cookie.

    A named tuple rather than a dataclass: one is built on every authenticated request.
    """

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


def find_token(
    config: Config,
    authorization: str | None,
    cookie: Callable[[str], str | None] | Mapping[str, str] | None = None,
) -> TokenSource | None:
    """Find the session token: the ``Authorization: Bearer`` header first, then the cookie.

    ``cookie`` is the request's cookies (a mapping, or a function from name to value); the
    cookie is read only when ``config.read_cookies`` is on (DESIGN.md §2, "Cookies").
    """
    token = bearer_token(authorization)
    if token is not None:
        return TokenSource(token)
    if cookie is None or not config.read_cookies or config.cookie_name is None:
        return None
    value = cookie(config.cookie_name) if callable(cookie) else cookie.get(config.cookie_name)
    if value:
        return TokenSource(value, from_cookie=True)
    return None


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


def _check_csrf(
    config: Config,
    source: TokenSource,
    method: str,
    origin: str | None,
    referer: str | None,
    own_origin: str | None,
) -> None:
    """A cookie-borne token on an unsafe method needs a same-origin (or trusted) request.

    Browsers attach cookies to cross-site requests; the ``Authorization`` header they never
    add on their own, so bearer tokens are exempt. ``Origin`` is used first, then ``Referer``
    (as Django's CSRF check does); a request with neither is refused.
    """
    if not source.from_cookie or method.upper() in SAFE_METHODS:
        return
    sender = origin_of(origin) or origin_of(referer)
    trusted = {origin_of(p) for p in config.authorized_parties}
    trusted.add(origin_of(own_origin))
    trusted.discard(None)
    if sender is None or sender not in trusted:
        raise CsrfFailedError(
            "a session cookie was sent on an unsafe request from a foreign or unknown origin; "
            "send the token in the Authorization header or add the origin to authorized_parties"
        )


class AuthState:
    """The caller's authentication state, always present on a request as ``wacht``.

    ``user_id`` is None when nobody is signed in. When a token was sent but failed, ``error``
    keeps the precise failure so that :meth:`require` answers with its code.
    """

    __slots__ = ("error", "session", "token_presented")

    def __init__(
        self,
        session: Session | None = None,
        error: WachtAuthError | None = None,
        *,
        token_presented: bool = False,
    ) -> None:
        self.session: Session | None = session
        self.error: WachtAuthError | None = error
        self.token_presented: bool = token_presented or session is not None

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
        """All claims of the verified token (empty when anonymous)."""
        return self.session.claims if self.session else {}

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


def _state_for_error(error: WachtAuthError) -> AuthState:
    return AuthState(error=error, token_presented=True)


def authenticate(
    verifier: _Verifies,
    source: TokenSource | None,
    *,
    method: str = "GET",
    origin: str | None = None,
    referer: str | None = None,
    own_origin: str | None = None,
    config: Config | None = None,
) -> AuthState:
    """Verify the request's token (if any) and return its :class:`AuthState`. Never raises
    a :class:`WachtAuthError`: failures are kept on the state for the route to judge."""
    if source is None:
        return AuthState()
    try:
        _check_csrf(config or _config_of(verifier), source, method, origin, referer, own_origin)
        return AuthState(verifier.verify(source.token))
    except WachtAuthError as error:
        return _state_for_error(error)


async def aauthenticate(
    verifier: _Verifies,
    source: TokenSource | None,
    *,
    method: str = "GET",
    origin: str | None = None,
    referer: str | None = None,
    own_origin: str | None = None,
    config: Config | None = None,
) -> AuthState:
    """The async twin of :func:`authenticate` (keys are fetched without blocking the loop)."""
    if source is None:
        return AuthState()
    try:
        _check_csrf(config or _config_of(verifier), source, method, origin, referer, own_origin)
        return AuthState(await verifier.averify(source.token))
    except WachtAuthError as error:
        return _state_for_error(error)


# The AuthState of each recent cached Session (cached_state); cleared when full.
_STATES: dict[Session, AuthState] = {}
_STATES_MAX = 1024


def cached_session(verifier: object, authorization: str | None) -> Session | None:
    """The session of an ``Authorization: Bearer`` token that the verifier's cache holds, or
    None (a miss, another scheme or shape, no header, a verifier without ``cached``).

    A cached token is a verified one, without spaces: on a hit this slice is exactly what
    :func:`bearer_token` returns; any other shape simply misses and takes the full path.
    """
    if authorization is None or not authorization.startswith("Bearer "):
        return None
    cached = getattr(verifier, "cached", None)
    return None if cached is None else cast("Session | None", cached(authorization[7:]))


def cached_state(verifier: _Caches, authorization: str | None) -> AuthState | None:
    """The state of an ``Authorization: Bearer`` token that the verifier's cache holds, or
    None when :func:`authenticate` must run (a miss, another scheme or shape, no header).

    The hot path of a repeated token: no coroutine, no CSRF check (bearer headers are exempt).
    The cache returns the same Session object on every hit, so its state is built once and
    shared by the requests carrying that token: read-only, like the Session. Keyed by the
    Session itself (identity, re-checked with ``is``; holding it means no id is reused).
    """
    session = cached_session(verifier, authorization)
    if session is None:
        return None
    state = _STATES.get(session)
    if state is None or state.session is not session:
        if len(_STATES) >= _STATES_MAX:
            _STATES.clear()
        state = _STATES[session] = AuthState(session)
    return state


def _config_of(verifier: object) -> Config:
    config = getattr(verifier, "config", None)
    if not isinstance(config, Config):
        raise TypeError("pass config= or a verifier with a .config")
    return config


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


class PublicPaths:
    """Paths that stay open when every other route is protected.

    An entry ending in ``*`` is a prefix (``"/public/*"``); any other entry matches exactly.
    """

    __slots__ = ("_exact", "_prefixes")

    def __init__(self, paths: Iterable[str] = ()) -> None:
        items = list(paths)
        self._exact = frozenset(p for p in items if not p.endswith("*"))
        self._prefixes = tuple(p[:-1] for p in items if p.endswith("*"))

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and (
            path in self._exact or any(path.startswith(p) for p in self._prefixes)
        )

    def __bool__(self) -> bool:
        return bool(self._exact or self._prefixes)


def error_response(
    error: WachtAuthError, *, token_presented: bool = True
) -> tuple[int, dict[str, str], bytes]:
    """The HTTP answer for ``error``: status, headers (``Content-Type`` included), JSON body."""
    headers = {"Content-Type": "application/json"}
    headers.update(error.response_headers(token_presented=token_presented))
    return error.status, headers, error.to_json()
