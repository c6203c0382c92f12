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
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    NamedTuple,
    ParamSpec,
    Protocol,
    TypeAlias,
    TypeVar,
    cast,
    overload,
)
from urllib.parse import urlsplit

from .config import Settings
from .errors import (
    ConfigurationError,
    CredentialInvalidError,
    CsrfFailedError,
    OrganizationRequiredError,
    PermissionDeniedError,
    TokenMissingError,
    WachtAuthError,
    WorkspaceRequiredError,
)
from .gateway import CREDENTIAL_KINDS, Checked, Credential, CredentialKind, Gateway
from .pages import (
    Exchanged,
    PagePaths,
    SessionExchange,
    Transport,
    TrustedProxies,
    client_ip,
    dev_session_cookies,
    dev_session_in_query,
    expired_session_cookie,
    public_url,
    session_cookie,
    sign_in_url,
    transport_from_cookies,
    without_dev_session,
)
from .session import PermissionScope, Session
from .tokens import looks_like_jws, peek_issuer

if TYPE_CHECKING:
    from .verifier import Verifier

__all__ = [
    "SAFE_METHODS",
    "AuthState",
    "Authenticator",
    "Caller",
    "Guards",
    "PublicPaths",
    "Redirect",
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

#: Who a request authenticated as: a verified session, or a credential Wacht's gateway accepted.
Caller: TypeAlias = "Session | Credential"
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

    def client_ip(self) -> str | None:
        """The address of the socket peer (the client, or the nearest proxy)."""
        ...

    def query(self) -> str:
        """The raw query string (without ``?``), as the request carried it."""
        ...


class TokenSource(NamedTuple):
    """A token found on a request, and whether it came from the session cookie."""

    token: str
    from_cookie: bool = False


class Redirect(NamedTuple):
    """A page's answer instead of a 401: send the browser to ``location`` (302), with the
    state's ``response_headers`` (cookies) on the answer."""

    location: str
    status: int = 302


class _Plan(NamedTuple):
    """A transport token to exchange, whether it came from ``?__dev_session__=``, and the
    client IP to send as ``X-Wacht-Forwarded-For``."""

    transport: Transport
    from_query: bool
    client_ip: str | None


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
    shared (an assignment raises ``AttributeError``). The caller is a verified ``session``
    (a session token), a ``credential`` (an API key or OAuth access token Wacht's gateway
    accepted), or nobody. ``user_id`` is the signed-in user: None for anonymous callers and
    for keys (``owner_user_id`` names a key's owner). When a credential was sent but failed,
    ``error`` keeps the precise failure so that :meth:`require` answers with its code
    (``token_expired`` lets the front end refresh). ``verifier`` is the verifier that produced
    the state: another one never reuses it. ``response_headers`` are to be copied onto the
    response, whatever it is (the gateway's rate-limit state, the cookies of a session
    exchange). ``redirect`` is the clean URL a page request carrying ``?__dev_session__=``
    is sent to once exchanged.
    """

    __slots__ = (
        "credential",
        "error",
        "redirect",
        "response_headers",
        "session",
        "token_presented",
        "verifier",
    )

    session: Session | None
    credential: Credential | None
    error: WachtAuthError | None
    token_presented: bool
    verifier: object
    response_headers: tuple[tuple[str, str], ...]
    redirect: str | None

    def __init__(
        self,
        session: Session | None = None,
        error: WachtAuthError | None = None,
        *,
        token_presented: bool = False,
        verifier: object = None,
        credential: Credential | None = None,
        response_headers: tuple[tuple[str, str], ...] = (),
        redirect: str | None = None,
    ) -> None:
        init = object.__setattr__
        init(self, "session", session)
        init(self, "error", error)
        init(self, "token_presented", token_presented or session is not None)
        init(self, "verifier", verifier)
        init(self, "credential", credential)
        init(self, "response_headers", response_headers)
        init(self, "redirect", redirect)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"AuthState is read-only: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"AuthState is read-only: cannot delete {name!r}")

    def __repr__(self) -> str:
        if self.session is not None:
            return f"<AuthState user_id={self.session.user_id!r}>"
        if self.credential is not None:
            return f"<AuthState {self.credential.token_type} key_id={self.credential.key_id!r}>"
        if self.error is not None:
            return f"<AuthState error={self.error.code!r}>"
        return "<AuthState anonymous>"

    @property
    def caller(self) -> Caller | None:
        """The verified session or the accepted credential, or None."""
        return self.session or self.credential

    @property
    def is_authenticated(self) -> bool:
        """True when a valid session token or an accepted credential was presented."""
        return self.session is not None or self.credential is not None

    @property
    def token_type(self) -> CredentialKind | None:
        """``"session_token"``, ``"api_key"``, ``"oauth_token"``, or None when anonymous."""
        if self.session is not None:
            return "session_token"
        return self.credential.token_type if self.credential is not None else None

    @property
    def user_id(self) -> str | None:
        """The signed-in user's id (``sub``); None when anonymous and for keys."""
        return self.session.user_id if self.session else None

    @property
    def owner_user_id(self) -> str | None:
        """The user a credential acts for: the key's owner, or the signed-in user."""
        if self.credential is not None:
            return self.credential.owner_user_id
        return self.user_id

    @property
    def session_id(self) -> str | None:
        """The session id, or None."""
        return self.session.session_id if self.session else None

    @property
    def organization_id(self) -> str | None:
        """The active organization (a key's organization), or None."""
        caller = self.session or self.credential
        return caller.organization_id if caller else None

    @property
    def workspace_id(self) -> str | None:
        """The active workspace (a key's workspace), or None."""
        caller = self.session or self.credential
        return caller.workspace_id if caller else None

    @property
    def organization_permissions(self) -> tuple[str, ...]:
        """Permissions in the active organization (empty when anonymous and for keys)."""
        return self.session.organization_permissions if self.session else ()

    @property
    def workspace_permissions(self) -> tuple[str, ...]:
        """Permissions in the active workspace (empty when anonymous and for keys)."""
        return self.session.workspace_permissions if self.session else ()

    @property
    def permissions(self) -> tuple[str, ...]:
        """The caller's permissions (a session's organization then workspace ones, or what
        the gateway granted a credential); empty when anonymous."""
        caller = self.session or self.credential
        return caller.permissions if caller else ()

    @property
    def scopes(self) -> tuple[str, ...]:
        """A credential's OAuth scopes (empty for session tokens and most keys)."""
        return self.credential.scopes if self.credential else ()

    @property
    def identity(self) -> Mapping[str, Any]:
        """The gateway's identity of a credential, read-only (empty otherwise)."""
        return self.credential.identity if self.credential else _NO_CLAIMS

    @property
    def claims(self) -> Mapping[str, Any]:
        """All claims of the verified token, deeply read-only (empty otherwise)."""
        return self.session.claims if self.session else _NO_CLAIMS

    @property
    def token(self) -> str | None:
        """The verified raw session token, or None (a credential's value is not kept)."""
        return self.session.token if self.session else None

    def has_permission(self, permission: str, scope: PermissionScope | None = None) -> bool:
        """Whether the caller is authenticated and holds ``permission``."""
        caller = self.session or self.credential
        return caller is not None and caller.has_permission(permission, scope)

    def forward_headers(self) -> dict[str, str]:
        """Headers forwarding the user's token to the Backend API; raises when no user is
        signed in with a session token."""
        return self.require().forward_headers()

    def require(self) -> Caller:
        """The caller, or the error that explains why there is none (401; 429 or 503 for
        keys the gateway could not accept; 503 when no signing keys could be had)."""
        caller = self.session or self.credential
        if caller is not None:
            return caller
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
        prefetch: fetch the keys when the app starts (the adapter calls
            :meth:`prefetch_keys`).
        accept: the credential kinds authenticated: ``"session_token"`` (verified locally),
            ``"api_key"`` and ``"oauth_token"`` (checked by Wacht's gateway, one call per
            request). Default: session tokens only; nothing reaches the gateway unless asked.
        gateway: a ready :class:`~wacht_auth.gateway.Gateway` (default: one for the config's
            ``gateway_url``, built when ``accept`` names a gateway kind).
        page_paths: path prefixes served as pages: under ``protect_all`` an anonymous visitor
            there is redirected to sign in instead of getting a 401.
        trusted_proxies: the proxies in front of the app (a number of hops, or addresses and
            CIDRs): only then are ``X-Forwarded-*`` headers read (``wacht_auth.pages``).
    """

    __slots__ = (
        "_anonymous",
        "_cookie",
        "_cookie_name",
        "_issuers",
        "_sessions",
        "_trusted",
        "accept",
        "exchange",
        "gateway",
        "page_paths",
        "prefetch",
        "protect_all",
        "public_paths",
        "trusted_proxies",
        "verifier",
    )

    def __init__(
        self,
        verifier: Verifier,
        *,
        protect_all: bool = False,
        public_paths: Iterable[str] | PublicPaths = (),
        prefetch: bool = False,
        accept: Iterable[str] = ("session_token",),
        gateway: Gateway | None = None,
        page_paths: Iterable[str] | PagePaths = (),
        trusted_proxies: TrustedProxies | int | str | Iterable[str] | None = None,
    ) -> None:
        config = verifier.config
        self.verifier = verifier
        self.accept: tuple[CredentialKind, ...] = _kinds(accept, "accept")
        self._sessions = "session_token" in self.accept
        if gateway is None and set(self.accept) - {"session_token"}:
            gateway = Gateway(config.gateway_url, timeout=config.gateway_timeout)
        self.gateway = gateway
        # Session tokens of these issuers are verified here and never sent to the gateway.
        self._issuers = frozenset(c.issuer for c in getattr(verifier, "configs", (config,)))
        self.protect_all = bool(protect_all)
        self.prefetch = bool(prefetch)
        self.public_paths = (
            public_paths if isinstance(public_paths, PublicPaths) else PublicPaths(public_paths)
        )
        self._cookie = config.cookie_name if config.read_cookies else None
        self._cookie_name = config.cookie_name or ""
        self.page_paths = page_paths if isinstance(page_paths, PagePaths) else PagePaths(page_paths)
        self.trusted_proxies = TrustedProxies.parse(trusted_proxies)
        # A browser without a usable session token is signed in from its session cookie at
        # the frontend API (DESIGN.md §10): whenever cookies are read and one is known.
        self.exchange = (
            SessionExchange(
                config.frontend_api_url,
                timeout=config.exchange_timeout,
                clock=config.clock,
                on_event=config.on_event,
            )
            if config.read_cookies and config.frontend_api_url
            else None
        )
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
        accept: Iterable[str] | None = None,
        page_paths: Iterable[str] = (),
        trusted_proxies: TrustedProxies | int | str | Iterable[str] | None = None,
    ) -> Authenticator:
        """Build the layer from :class:`~wacht_auth.config.Settings` (Django's, Flask's or the
        environment's); arguments given in code win, ``public_paths`` and ``page_paths`` add
        to the setting's."""
        from .verifier import Verifier

        verifier = verifier or settings.option("verifier") or Verifier(settings.build_config())
        if accept is None:
            accept = settings.option("accept", ("session_token",))
        return cls(
            verifier,
            accept=accept,
            page_paths=(*settings.option("page_paths", ()), *page_paths),
            trusted_proxies=settings.option("trusted_proxies")
            if trusted_proxies is None
            else trusted_proxies,
            protect_all=settings.option("protect_all", False)
            if protect_all is None
            else protect_all,
            public_paths=(*settings.option("public_paths", ()), *public_paths),
            prefetch=settings.option("prefetch", False) if prefetch is None else prefetch,
        )

    @classmethod
    def of(cls, verifier: Verifier) -> Authenticator:
        """A default layer for ``verifier``, one per verifier and kept on it (so it lives as
        long as the verifier does), so that code given only a verifier shares one exchange
        cache and single flight."""
        layer = getattr(verifier, "_default_layer", None)
        if not isinstance(layer, cls):
            layer = cls(verifier)
            verifier._default_layer = layer  # type: ignore[attr-defined]
        return layer

    def __repr__(self) -> str:
        return (
            f"Authenticator({self.verifier!r}, accept={self.accept!r}, "
            f"protect_all={self.protect_all})"
        )

    # ---------------------------------------------------------------- the caller's state

    def authenticate(
        self,
        request: RequestView,
        prior: object = None,
        *,
        required_permissions: Collection[str] = (),
    ) -> AuthState:
        """The request's :class:`AuthState`. ``prior`` is a state attached earlier (an outer
        middleware's): reused only when this layer's verifier produced it. Never raises a
        :class:`~wacht_auth.WachtAuthError`: failures are kept on the state.
        ``required_permissions`` are sent to the gateway with an API key or OAuth token."""
        return self.reuse(request, prior) or self.verify_request(request, required_permissions)

    async def aauthenticate(
        self,
        request: RequestView,
        prior: object = None,
        *,
        required_permissions: Collection[str] = (),
    ) -> AuthState:
        """:meth:`authenticate` for asyncio: keys are fetched and credentials checked without
        blocking the loop."""
        state = self.reuse(request, prior)
        return state or await self.averify_request(request, required_permissions)

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
        if (
            authorization is not None
            and authorization.startswith("Bearer ")
            and self._sessions  # a layer taking no session tokens takes no cached one either
        ):
            session = self.verifier.cached(authorization[7:])
            if session is not None:
                # Immutable, so one state serves every request carrying this token: built on
                # the first hit and kept on the (equally shared, read-only) Session.
                state = session._state
                if type(state) is not AuthState or state.verifier is not self.verifier:
                    state = session._state = AuthState(session, verifier=self.verifier)
                return state
        return None

    def verify_request(
        self, request: RequestView, required_permissions: Collection[str] = ()
    ) -> AuthState:
        """Find the request's credential and judge it (no cache or prior state): a session
        token here (CSRF rule, then the verifier), an API key or OAuth token at the gateway,
        and, for a browser without a usable session token, the exchange of its session cookie
        at the frontend API (DESIGN.md §10)."""
        source = self._source(request)
        stale: AuthState | None = None
        if source is not None:
            kind = self._kind(source)
            if kind != "session_token":
                assert self.gateway is not None  # _kind names a gateway kind only with one
                about = self._about(request, required_permissions)
                return self._checked(self.gateway.check(kind, source.token, **about))
            if "session_token" not in self.accept:
                return self._refused()
            try:
                self._check_csrf(request, source)
                return AuthState(self.verifier.verify(source.token), verifier=self.verifier)
            except WachtAuthError as error:
                stale = AuthState(error=error, token_presented=True, verifier=self.verifier)
                if not source.from_cookie:
                    return stale
        plan = self._exchange_plan(request, stale)
        if plan is None:
            return stale or self._anonymous
        if isinstance(plan, AuthState):
            return plan
        assert self.exchange is not None  # a plan is made only with an exchange
        try:
            exchanged = self.exchange.exchange(
                plan.transport.value, dev=plan.transport.dev, client_ip=plan.client_ip
            )
            if exchanged is None:
                return self._session_over(request)
            session = self.verifier.verify(exchanged.token)
        except WachtAuthError as error:
            return AuthState(error=error, token_presented=True, verifier=self.verifier)
        return self._exchanged(request, plan, exchanged, session)

    async def averify_request(
        self, request: RequestView, required_permissions: Collection[str] = ()
    ) -> AuthState:
        """:meth:`verify_request` for asyncio."""
        source = self._source(request)
        stale: AuthState | None = None
        if source is not None:
            kind = self._kind(source)
            if kind != "session_token":
                assert self.gateway is not None  # _kind names a gateway kind only with one
                about = self._about(request, required_permissions)
                return self._checked(await self.gateway.acheck(kind, source.token, **about))
            if "session_token" not in self.accept:
                return self._refused()
            try:
                self._check_csrf(request, source)
                session = await self.verifier.averify(source.token)
                return AuthState(session, verifier=self.verifier)
            except WachtAuthError as error:
                stale = AuthState(error=error, token_presented=True, verifier=self.verifier)
                if not source.from_cookie:
                    return stale
        plan = self._exchange_plan(request, stale)
        if plan is None:
            return stale or self._anonymous
        if isinstance(plan, AuthState):
            return plan
        assert self.exchange is not None  # a plan is made only with an exchange
        try:
            exchanged = await self.exchange.aexchange(
                plan.transport.value, dev=plan.transport.dev, client_ip=plan.client_ip
            )
            if exchanged is None:
                return self._session_over(request)
            session = await self.verifier.averify(exchanged.token)
        except WachtAuthError as error:
            return AuthState(error=error, token_presented=True, verifier=self.verifier)
        return self._exchanged(request, plan, exchanged, session)

    # ---------------------------------------------------------------- the session handshake

    def _exchange_plan(
        self, request: RequestView, stale: AuthState | None
    ) -> _Plan | AuthState | None:
        """What to exchange for a browser without a usable session token: the transport
        cookie (``__session``, else the development session) or a ``?__dev_session__=`` on a
        safe request; None when there is nothing (or no exchange is configured); a refusal
        (CSRF) as a state. Cookie-borne, so the CSRF rule applies as to ``__auth``."""
        exchange = self.exchange
        if exchange is None:
            return None
        from_query = False
        transport = transport_from_cookies(request.cookie, exchange.frontend_api_url)
        if transport is None and request.method in ("GET", "HEAD"):
            dev = dev_session_in_query(request.query())
            if dev is not None:
                transport, from_query = Transport(dev, dev=True), True
        if transport is None:
            return None
        if not from_query:
            try:
                self._check_csrf(request, TokenSource(transport.value, from_cookie=True))
            except WachtAuthError as error:
                return AuthState(error=error, token_presented=True, verifier=self.verifier)
        peer = request.client_ip()
        ip = client_ip(peer, request.header("x-forwarded-for"), self.trusted_proxies)
        return _Plan(transport, from_query, ip)

    def _exchanged(
        self, request: RequestView, plan: _Plan, exchanged: Exchanged, session: Session
    ) -> AuthState:
        """A browser signed in by the exchange: its session, the cookies Wacht's SDKs write
        (``__auth_<scope>``, upstream ``Set-Cookie``, a renewed development session), and for
        a ``?__dev_session__=`` page request the clean URL to redirect to."""
        config = self.verifier.config
        now = config.clock()
        cookies = [
            session_cookie(
                self._cookie_name, exchanged.token, expires_at=exchanged.expires_at, now=now
            )
        ]
        cookies += exchanged.set_cookies
        if exchanged.dev_session:
            assert self.exchange is not None
            frontend = self.exchange.frontend_api_url
            cookies += dev_session_cookies(frontend, exchanged.dev_session, now=now)
        redirect = None
        if plan.from_query:
            url = self._public_url(request)
            redirect = without_dev_session(url) if url else None
        return AuthState(
            session,
            verifier=self.verifier,
            response_headers=tuple(("Set-Cookie", c) for c in cookies),
            redirect=redirect,
        )

    def _session_over(self, request: RequestView) -> AuthState:
        """The frontend API says the session ended: anonymous, and the stale ``__auth`` cookie
        goes (pages then redirect to sign-in rather than exchange again)."""
        gone = (("Set-Cookie", expired_session_cookie(self._cookie_name)),)
        return AuthState(verifier=self.verifier, response_headers=gone)

    def _public_url(self, request: RequestView) -> str | None:
        """The absolute URL of this request as the browser sees it, or None (no valid Host)."""
        origin = urlsplit(request.own_origin() or "")
        try:
            return public_url(
                scheme=origin.scheme or "http",
                host=origin.netloc or None,
                path=request.path,
                query=request.query(),
                peer=request.client_ip(),
                forwarded_for=request.header("x-forwarded-for"),
                forwarded_proto=request.header("x-forwarded-proto"),
                forwarded_host=request.header("x-forwarded-host"),
                trusted_proxies=self.trusted_proxies,
            )
        except ValueError:
            return None

    def sign_in_location(self, request: RequestView) -> str | None:
        """The sign-in page for a visitor of this page, with ``redirect_uri`` back to it
        (``sign_in_url``, else the accounts portal derived from the frontend host); None
        when the request has no valid public URL (answer the 401 then)."""
        config = self.verifier.config
        url = self._public_url(request)
        if url is None or not config.frontend_api_url:
            return None
        return sign_in_url(
            config.frontend_api_url, sign_in_url=config.sign_in_url, redirect_uri=url
        )

    def _kind(self, source: TokenSource) -> CredentialKind:
        """Which credential a bearer is (DESIGN.md §9): a session token of a configured
        deployment never goes to the gateway, and its failure stands (``token_expired`` must
        still tell the front end to refresh); a bearer that is no JWT is an API key, a JWT of
        another issuer an OAuth access token; only kinds the app accepts are tried."""
        if self.gateway is None or source.from_cookie:
            return "session_token"
        token = source.token
        if not looks_like_jws(token):
            return "api_key" if "api_key" in self.accept else "session_token"
        if "oauth_token" in self.accept and peek_issuer(token) not in self._issuers:
            return "oauth_token"
        return "session_token"

    @staticmethod
    def _about(request: RequestView, required_permissions: Collection[str]) -> dict[str, Any]:
        """What the gateway is told of the request besides the credential."""
        return {
            "resource": request.path,
            "method": request.method,
            "client_ip": request.client_ip(),
            "user_agent": request.header("user-agent"),
            "required_permissions": tuple(required_permissions),
        }

    def _checked(self, checked: Checked) -> AuthState:
        return AuthState(
            error=checked.error,
            token_presented=True,
            verifier=self.verifier,
            credential=checked.credential,
            response_headers=checked.headers,
        )

    def _refused(self) -> AuthState:
        """A session token where the app accepts only API keys or OAuth tokens."""
        error = CredentialInvalidError("this app does not accept session tokens")
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
    ) -> WachtAuthError | Redirect | None:
        """Under ``protect_all``, the answer a request gets instead of its route: an error, or
        for a page (``page_paths``) a :class:`Redirect` (the sign-in page for a visitor who is
        not signed in, the clean URL after a ``?__dev_session__=`` exchange); None lets it
        through. A 503 (keys, gateway or frontend API down) stays a 503 on pages too: a
        redirect to a sign-in page that may be down as well could loop or sign people out."""
        if not self.protect_all:
            return None
        page = bool(self.page_paths) and request.path in self.page_paths
        if page and state.redirect is not None:
            return Redirect(state.redirect)
        if state.session is not None or state.credential is not None:
            return None
        if self.is_open(request, public_route=public_route):
            return None
        return self.page_answer(request, state.error or TokenMissingError(), page=page)

    def page_answer(
        self, request: RequestView, error: WachtAuthError, *, page: bool = True
    ) -> WachtAuthError | Redirect:
        """``error``, or for a page and a 401 the redirect to the sign-in page."""
        if page and error.status == 401:
            location = self.sign_in_location(request)
            if location is not None:
                return Redirect(location)
        return error

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


def _kinds(value: Iterable[str], setting: str) -> tuple[CredentialKind, ...]:
    """A validated tuple of credential kinds (``accept``)."""
    kinds = (value,) if isinstance(value, str) else tuple(value)
    for kind in kinds:
        if kind not in CREDENTIAL_KINDS:
            raise ConfigurationError(f"{setting} takes {', '.join(CREDENTIAL_KINDS)}; got {kind!r}")
    if not kinds:
        raise ConfigurationError(f"{setting} must name at least one credential kind")
    return cast("tuple[CredentialKind, ...]", tuple(dict.fromkeys(kinds)))


def _log_prefetch(error: WachtAuthError) -> None:
    from ._events import LOGGER

    LOGGER.warning("wacht_auth: key prefetch at start-up failed: %s", error)


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a route requires of its caller; ``check`` returns the caller or raises.

    Attributes:
        permissions: permissions to hold (any one of them, or all with ``require_all``).
        scope: ``"organization"``/``"workspace"`` to look in one place only; None for either.
        require_all: require every permission instead of any one.
        organization: True for "some active organization", or a specific organization id.
        workspace: True for "some active workspace", or a specific workspace id.
        accept: the credential kinds this route takes (None: every kind the app accepts).
        redirect: a page: a visitor who is not signed in is sent to the sign-in page (302)
            instead of getting a 401, like Django's ``login_required``.
    """

    permissions: tuple[str, ...] = ()
    scope: PermissionScope | None = None
    require_all: bool = False
    organization: bool | str = False
    workspace: bool | str = False
    accept: tuple[str, ...] | None = None
    redirect: bool = False

    def __post_init__(self) -> None:
        if self.accept is not None:
            object.__setattr__(self, "accept", _kinds(self.accept, "accept"))
        if self.scope not in (None, "organization", "workspace"):
            raise ValueError(f"scope must be 'organization', 'workspace' or None: {self.scope!r}")
        for permission in self.permissions:
            if not isinstance(permission, str) or not permission:
                raise ValueError(f"permissions must be non-empty strings: {permission!r}")

    def check(self, state: AuthState) -> Caller:
        """Return the caller (a session, or a gateway-checked credential) when it meets this
        requirement, else raise the error of DESIGN.md §5 (401 when not authenticated, or
        authenticated with a kind this route does not take; 403 when not allowed)."""
        session = state.require()
        if self.accept is not None and state.token_type not in self.accept:
            raise CredentialInvalidError(
                f"this endpoint does not accept {state.token_type} credentials; it takes "
                f"{', '.join(self.accept)}"
            )
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
        state: the request's :class:`AuthState` (sync views), given the permissions the
            route requires (sent to the gateway when this call is what checks an API key).
        astate: the same, awaited (async views).
        refuse: the native answer for a failed requirement; may be awaitable (websockets).
        redirect: the native 302 to a location, with the state's response headers (pages).
        sign_in: the sign-in page for a request (``Authenticator.sign_in_location``).
        find: given a view, a function from its call's ``(args, kwargs)`` to the request
            (default :func:`request_argument`; Flask's views take none and read a global).
        is_async: whether a view is a coroutine function.
    """

    def __init__(
        self,
        *,
        state: Callable[[R, tuple[str, ...]], AuthState],
        astate: Callable[[R, tuple[str, ...]], Awaitable[AuthState]],
        refuse: Callable[[R, WachtAuthError, AuthState], Any],
        redirect: Callable[[R, str, AuthState], Any] | None = None,
        sign_in: Callable[[R], str | None] | None = None,
        find: Callable[[Callable[..., Any]], Callable[[tuple[Any, ...], dict[str, Any]], R]] = (
            request_argument
        ),
        is_async: Callable[[Any], bool] = inspect.iscoroutinefunction,
    ) -> None:
        self._state, self._astate, self._refuse = state, astate, refuse
        self._redirect, self._sign_in = redirect, sign_in
        self._find, self._is_async = find, is_async

    def guard(self, requirement: Requirement) -> Callable[[Callable[P, T]], Callable[P, T]]:
        """A decorator refusing callers who do not meet ``requirement``."""
        # require_auth asks for a session and nothing more: a signed-in caller needs no check.
        signed_in_only = requirement == _SIGNED_IN
        state_of, astate_of = self._state, self._astate
        needs = requirement.permissions
        if requirement.redirect and (self._redirect is None or self._sign_in is None):
            raise TypeError("this framework's guards cannot redirect to a sign-in page")
        answer = self._answer

        def decorate(view: Callable[P, T]) -> Callable[P, T]:
            request_of = self._find(view)
            if self._is_async(view):

                @functools.wraps(view)
                async def async_view(*args: P.args, **kwargs: P.kwargs) -> Any:
                    request = request_of(args, kwargs)
                    state = await astate_of(request, needs)
                    if state.session is None or not signed_in_only or state.redirect:
                        refusal = answer(requirement, request, state)
                        if refusal is not _PASS:
                            return await refusal if inspect.isawaitable(refusal) else refusal
                    return await view(*args, **kwargs)  # type: ignore[misc]

                return cast("Callable[P, T]", async_view)

            @functools.wraps(view)
            def sync_view(*args: P.args, **kwargs: P.kwargs) -> Any:
                request = request_of(args, kwargs)
                state = state_of(request, needs)
                if state.session is None or not signed_in_only or state.redirect:
                    refusal = answer(requirement, request, state)
                    if refusal is not _PASS:
                        return refusal
                return view(*args, **kwargs)

            return cast("Callable[P, T]", sync_view)

        return decorate

    def _answer(self, requirement: Requirement, request: R, state: AuthState) -> Any:
        """The native answer when ``requirement`` refuses, or ``_PASS``: the error, or for a
        page the redirect (to the clean URL after a ``?__dev_session__=`` exchange, or to the
        sign-in page instead of a 401)."""
        page = requirement.redirect
        if page and state.redirect is not None:
            assert self._redirect is not None
            return self._redirect(request, state.redirect, state)
        try:
            requirement.check(state)
        except WachtAuthError as error:
            if page and error.status == 401:
                assert self._redirect is not None and self._sign_in is not None
                location = self._sign_in(request)
                if location is not None:
                    return self._redirect(request, location, state)
            return self._refuse(request, error, state)
        return _PASS

    @overload
    def require_auth(self, view: Callable[P, T], *, accept: None = None) -> Callable[P, T]: ...

    @overload
    def require_auth(
        self,
        view: None = None,
        *,
        accept: Iterable[str] | None = None,
        redirect: bool = False,
    ) -> Callable[[Callable[P, T]], Callable[P, T]]: ...

    def require_auth(
        self,
        view: Callable[P, T] | None = None,
        *,
        accept: Iterable[str] | None = None,
        redirect: bool = False,
    ) -> Callable[P, T] | Callable[[Callable[P, T]], Callable[P, T]]:
        """Decorator: 401 with the precise code (``token_expired`` …) unless the caller is
        authenticated; ``@require_auth(accept=("api_key",))`` narrows the kinds this route
        takes (401 ``credential_invalid`` for others); ``@require_auth(redirect=True)`` makes
        it a page: visitors who are not signed in go to the sign-in page instead."""
        if view is None:
            return self.guard(Requirement(accept=_accept(accept), redirect=redirect))
        if not callable(view) or accept is not None or redirect:
            raise TypeError("write @require_auth, or @require_auth(accept=..., redirect=...)")
        return self.guard(_SIGNED_IN)(view)

    def require_permission(
        self,
        *permissions: str,
        scope: PermissionScope | None = None,
        require_all: bool = False,
        accept: Iterable[str] | None = None,
        redirect: bool = False,
    ) -> Callable[[Callable[P, T]], Callable[P, T]]:
        """Decorator: 403 ``permission_denied`` unless the caller holds one of
        ``permissions`` (every one with ``require_all``), in ``scope`` (None: either); with an
        API key or OAuth token, the gateway is asked for them too."""
        if not permissions or any(callable(p) for p in permissions):
            raise TypeError('write @require_permission("name", ...) with at least one permission')
        return self.guard(
            Requirement(
                tuple(permissions), scope, require_all, accept=_accept(accept), redirect=redirect
            )
        )

    def require_organization(
        self, organization_id: str | None = None, *, accept: Iterable[str] | None = None
    ) -> Callable[[Callable[P, T]], Callable[P, T]]:
        """Decorator: 403 ``organization_required`` without an active (or this) organization."""
        if callable(organization_id):
            raise TypeError("write @require_organization() with parentheses")
        return self.guard(Requirement(organization=organization_id or True, accept=_accept(accept)))

    def require_workspace(
        self, workspace_id: str | None = None, *, accept: Iterable[str] | None = None
    ) -> Callable[[Callable[P, T]], Callable[P, T]]:
        """Decorator: 403 ``workspace_required`` without an active (or this) workspace."""
        if callable(workspace_id):
            raise TypeError("write @require_workspace() with parentheses")
        return self.guard(Requirement(workspace=workspace_id or True, accept=_accept(accept)))


_PASS: Any = object()  # the guard's "no refusal": the view runs


def _accept(accept: Iterable[str] | None) -> tuple[CredentialKind, ...] | None:
    return None if accept is None else _kinds(accept, "accept")


def error_response(
    error: WachtAuthError, *, token_presented: bool = True
) -> tuple[int, dict[str, str], bytes]:
    """The HTTP answer for ``error``: status, headers (``Content-Type`` included), JSON body."""
    headers = {"Content-Type": "application/json"}
    headers.update(error.response_headers(token_presented=token_presented))
    return error.status, headers, error.to_json()
