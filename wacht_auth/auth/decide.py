"""The decider: one app's request layer, answering every request with one :class:`AuthState`.

An adapter has one way in: :meth:`Authenticator.lookup` for the sync lookup of a presented
bearer token (a dictionary hit for a repeated one), and :meth:`Authenticator.resolve` /
:meth:`Authenticator.aresolve` for a whole request (reuse of an outer layer's state, the cache,
then the decision). The decision is written once, as :meth:`Authenticator._decide`, a
generator that yields the I/O it needs (:mod:`~wacht_auth.auth.steps`); :meth:`resolve` drives
it with the verifier's and the gateway's sync calls, :meth:`aresolve` with their async twins.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any, cast

from .._events import LOGGER
from ..errors import (
    AudienceInvalidError,
    ConfigurationError,
    CredentialInvalidError,
    IssuerInvalidError,
    TokenMissingError,
    WachtAuthError,
    shown,
)
from ..gateway import CREDENTIAL_KINDS, Checked, Credential, CredentialKind, Gateway
from ..proxies import TrustedProxies, client_ip
from ..tokens import looks_like_jws, peek_issuer
from .options import Paths, _credential_gateway, _oauth_verifier, _spell_env, _texts
from .pages import PRIVATE, Handshake
from .state import AuthState, PageError, Redirect
from .steps import Check, Flow, Step, Verify, VerifyOAuth, VerifyTransport
from .view import RequestView, TokenSource, bearer_token, check_csrf, is_preflight, origin_of

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..oauth import OAuthVerifier
    from ..verifier import Verifier
    from .options import Options

__all__ = ["Authenticator"]


class Authenticator:
    """The request layer of one app: a verifier and the app's options, deciding per request.

    Build it from settings with :func:`~wacht_auth.auth.options.configure` (what every adapter
    does), or directly with a verifier and the options of
    :class:`~wacht_auth.auth.options.Options`. ``gateway`` is a ready
    :class:`~wacht_auth.gateway.Gateway` (default: one for the config's ``gateway_url`` and
    ``deployment_id`` with the ``api_auth_apps`` and ``oauth_client_ids`` allow-lists, built
    when ``accept`` names API keys or OAuth tokens and the deployment is known); ``oauth`` a
    ready :class:`~wacht_auth.oauth.OAuthVerifier` (default: one for ``oauth_issuers``,
    sharing the deployment's clock, leeway and key-cache settings). ``spell`` names a setting
    in messages as the user writes it (``configure`` passes the environment's, Django's or
    Flask's spelling).

    Raises:
        ConfigurationError: an invalid option, or ``accept`` naming a kind that cannot be
            checked: API keys without ``deployment_id`` (Wacht's gateway finds a key in any
            deployment), OAuth tokens without ``deployment_id`` nor ``oauth_issuers``.
    """

    __slots__ = (
        "_anonymous",
        "_audiences",
        "_cookie",
        "_issuers",
        "_oauth_cached",
        "_oauth_issuers",
        "_routes",
        "_sessions",
        "_trusted",
        "accept",
        "gateway",
        "handshake",
        "oauth",
        "page_paths",
        "prefetch",
        "protect_all",
        "public_paths",
        "verifier",
    )

    def __init__(
        self,
        verifier: Verifier,
        *,
        gateway: Gateway | None = None,
        oauth: OAuthVerifier | None = None,
        spell: Callable[[str], str] = _spell_env,
        **options: Unpack[Options],
    ) -> None:
        config = verifier.config
        self.verifier = verifier
        accept = options.get("accept")
        self.accept: tuple[CredentialKind, ...] = _kinds(
            ("session_token",) if accept is None else accept, spell("accept")
        )
        self._sessions = "session_token" in self.accept
        self.oauth = oauth or _oauth_verifier(config, options, spell)
        self._audiences = frozenset(
            _texts(options.get("oauth_audiences"), spell, "oauth_audiences")
        )
        self.gateway = gateway or _credential_gateway(
            config, self.accept, self.oauth, options, spell
        )
        # Session tokens of these issuers are verified here and never sent anywhere; JWTs of
        # the OAuth issuers are verified here too, never at the gateway (it knows no JWT).
        self._issuers = frozenset(c.issuer for c in getattr(verifier, "configs", (config,)))
        self._oauth_issuers = frozenset(
            i.config.issuer for i in (self.oauth.issuers if self.oauth else ())
        )
        takes_oauth = self.oauth is not None and "oauth_token" in self.accept
        self._oauth_cached = self.oauth.cached if takes_oauth and self.oauth else None
        # A layer taking session tokens only keeps its one path: every bearer is verified as
        # a session token (docs/architecture.md, "Credential routing").
        self._routes = self.accept != ("session_token",) or self.oauth is not None
        self.protect_all = bool(options.get("protect_all", False))
        self.prefetch = bool(options.get("prefetch", False))
        self.public_paths = Paths.of(options.get("public_paths", ()), "public_paths")
        self.page_paths = Paths.of(options.get("page_paths", ()), "page_paths")
        self._cookie = config.cookie_name if config.read_cookies else None
        # Origins trusted to send a cookie-borne token on an unsafe method, besides the app's.
        self._trusted = frozenset(filter(None, map(origin_of, config.authorized_parties)))
        self.handshake = Handshake(
            config,
            trusted_proxies=TrustedProxies.parse(options.get("trusted_proxies")),
            csrf=functools.partial(check_csrf, trusted=self._trusted),
        )
        # Immutable: one serves every request.
        self._anonymous = AuthState(verifier=verifier, accept=self.accept)

    @classmethod
    def of(cls, verifier: Verifier | None, *, attached: object = None) -> Authenticator:
        """The layer that answers for ``verifier``: ``attached`` (an adapter's layer, e.g. the
        middleware's) when it runs on that verifier or none is named, else the default layer
        of ``verifier``, one per verifier and kept on it (so it lives as long as the verifier
        does and code given only a verifier shares one exchange cache and single flight).
        A state is only ever reused by the layer of the verifier that made it."""
        if isinstance(attached, cls) and (verifier is None or attached.verifier is verifier):
            return attached
        if verifier is None:
            raise ValueError("Authenticator.of needs a verifier or an attached layer")
        layer = getattr(verifier, "_default_layer", None)
        if not isinstance(layer, cls):
            layer = cls(verifier)
            verifier._default_layer = layer  # type: ignore[attr-defined]
        return layer

    def __repr__(self) -> str:
        return (
            f"Authenticator({self.verifier!r}, accept={self.accept!r}, "
            f"protect_all={self.protect_all}, oauth={self.oauth!r})"
        )

    @property
    def trusted_proxies(self) -> TrustedProxies:
        """The proxies in front of the app (forwarded headers are read only behind them)."""
        return self.handshake.trusted_proxies

    # ---------------------------------------------------------------- the one way in

    def lookup(self, authorization: str | None, prior: object = None) -> AuthState | None:
        """The state without I/O: ``prior`` (a state an outer layer attached) when it is this
        layer's answer too (:meth:`_reuses`), else the state of a repeated bearer token from
        the verifiers' caches (one lookup, no CSRF inputs: bearer headers are exempt).
        ``authorization`` is the raw header value; None on a miss, another scheme or no
        header (then :meth:`resolve` with ``looked_up=True``)."""
        if prior is not None and self._reuses(prior):
            return cast("AuthState", prior)
        # A cached token is a verified one, without spaces: this slice is exactly what
        # bearer_token() returns for it; any other shape misses and takes the full path.
        if authorization is None or not authorization.startswith("Bearer "):
            return None
        if self._sessions:  # a layer taking no session tokens takes no cached one either
            session = self.verifier.cached(authorization[7:])
            if session is not None:
                # Immutable, so one state serves every request carrying this token: built on
                # the first hit and kept on the (equally shared, read-only) Session.
                state = session._state
                if type(state) is not AuthState or state.verifier is not self.verifier:
                    state = session._state = AuthState(session, verifier=self.verifier)
                return state
        if self._oauth_cached is not None:  # a repeated OAuth JWT access token, the same way
            credential = self._oauth_cached(authorization[7:])
            if credential is not None:
                return self._credential_state(credential)
        return None

    def _credential_state(self, credential: Credential) -> AuthState:
        """The shared state of a verified OAuth JWT (memoised on its shared Credential)."""
        state = credential._state
        if type(state) is not AuthState or state.verifier is not self.verifier:
            state = credential._state = AuthState(verifier=self.verifier, credential=credential)
        return state

    def _reuses(self, prior: object) -> bool:
        """Whether ``prior`` (an outer layer's state) is this layer's answer too: made on this
        verifier, and either a caller of a kind this layer accepts, or no caller from a layer
        accepting the same kinds (an API key an outer layer refused may be one this layer
        takes, and one it accepted may be one this layer refuses)."""
        if type(prior) is not AuthState or prior.verifier is not self.verifier:
            return False
        kind = prior.token_type
        return kind in self.accept if kind is not None else prior.accept == self.accept

    def resolve(
        self,
        request: RequestView,
        prior: object = None,
        *,
        required_permissions: Collection[str] = (),
        looked_up: bool = False,
    ) -> AuthState:
        """The request's :class:`AuthState`. ``prior`` is a state attached earlier (an outer
        middleware's): reused only when it is this layer's answer too. Never raises a
        :class:`~wacht_auth.WachtAuthError`: failures are kept on the state.
        ``required_permissions`` are sent to the gateway with an API key or OAuth token.
        ``looked_up``: the adapter already asked :meth:`lookup` and missed (one lookup only).
        """
        if not looked_up:
            state = self.lookup(request.header("authorization"), prior)
            if state is not None:
                return state
        flow = self._decide(request, required_permissions)
        sent = _send(flow, None)
        while not isinstance(sent, AuthState):
            try:
                result = self._perform(sent)
            except WachtAuthError as error:
                sent = _throw(flow, error)
            else:
                sent = _send(flow, result)
        return sent

    async def aresolve(
        self,
        request: RequestView,
        prior: object = None,
        *,
        required_permissions: Collection[str] = (),
        looked_up: bool = False,
    ) -> AuthState:
        """:meth:`resolve` for asyncio: keys fetched, credentials checked and cookies
        exchanged without blocking the loop."""
        if not looked_up:
            state = self.lookup(request.header("authorization"), prior)
            if state is not None:
                return state
        flow = self._decide(request, required_permissions)
        sent = _send(flow, None)
        while not isinstance(sent, AuthState):
            try:
                result = await self._aperform(sent)
            except WachtAuthError as error:
                sent = _throw(flow, error)
            else:
                sent = _send(flow, result)
        return sent

    def _perform(self, step: Step) -> Any:
        if isinstance(step, Verify):
            return self.verifier.verify(step.token)
        if isinstance(step, VerifyTransport):
            return self.verifier.verify_transport(step.token)
        if isinstance(step, VerifyOAuth):
            assert self.oauth is not None  # _kind names an OAuth JWT only with a verifier
            return self.oauth.verify(step.token)
        if isinstance(step, Check):
            assert self.gateway is not None  # _kind names a gateway kind only with one
            return self.gateway.check(step.kind, step.token, **step.about)
        assert self.handshake.exchange is not None  # the handshake exchanges only with one
        return self.handshake.exchange.exchange(
            step.transport, dev=step.dev, client_ip=step.client_ip
        )

    async def _aperform(self, step: Step) -> Any:
        if isinstance(step, Verify):
            return await self.verifier.averify(step.token)
        if isinstance(step, VerifyTransport):
            return await self.verifier.averify_transport(step.token)
        if isinstance(step, VerifyOAuth):
            assert self.oauth is not None
            return await self.oauth.averify(step.token)
        if isinstance(step, Check):
            assert self.gateway is not None
            return await self.gateway.acheck(step.kind, step.token, **step.about)
        assert self.handshake.exchange is not None
        exchange = self.handshake.exchange
        return await exchange.aexchange(step.transport, dev=step.dev, client_ip=step.client_ip)

    # ---------------------------------------------------------------- the decision

    def _decide(self, request: RequestView, required_permissions: Collection[str]) -> Flow:
        """Find the request's credential and judge it: a session token here (CSRF rule for a
        cookie, then the verifier), an OAuth JWT access token here too, an API key or opaque
        OAuth token at the gateway, and, for a browser without a usable session token, the
        page handshake (see docs/architecture.md, "Request flow" and "Credential routing")."""
        source = self._source(request)
        if (
            source is not None
            and source.from_cookie
            and self.handshake.dev_link(request.method, request.query())
        ):
            source = None  # a development-session link is exchanged and made clean first
        stale: AuthState | None = None
        if source is not None:
            kind = self._kind(source)
            if kind != "session_token":
                return (
                    yield from self._credential(kind, source.token, request, required_permissions)
                )
            if not self._sessions:
                error = CredentialInvalidError("this app does not accept session tokens")
                return self._failed(error)
            try:
                if source.from_cookie:
                    check_csrf(request, self._trusted)
                session = yield Verify(source.token)
                headers = PRIVATE if source.from_cookie else ()
                return AuthState(
                    session, verifier=self.verifier, accept=self.accept, response_headers=headers
                )
            except WachtAuthError as error:
                stale = self._failed(error)
                if not source.from_cookie:
                    return stale
        try:
            signed = yield from self.handshake.flow(request)
        except WachtAuthError as error:
            return self._failed(error)
        if signed is None:
            return stale or self._anonymous
        return AuthState(
            signed.session,
            verifier=self.verifier,
            response_headers=signed.headers,
            redirect=signed.redirect,
            accept=self.accept,
        )

    def _credential(
        self, kind: str, token: str, request: RequestView, required_permissions: Collection[str]
    ) -> Flow:
        """Judge a bearer that is no session token: an OAuth JWT verified here, an API key or
        opaque OAuth token at the gateway (one call), anything else refused without I/O."""
        if kind == "foreign_jwt":
            issuer = shown(peek_issuer(token))
            return self._failed(
                IssuerInvalidError(
                    f"the token issuer {issuer} is neither this app's Wacht deployment nor one "
                    "of its OAuth issuers (oauth_issuers)"
                )
            )
        accepted = "oauth_token" if kind == "oauth_jwt" else kind
        if accepted not in self.accept:
            what = {"api_key": "API keys", "oauth_token": "OAuth access tokens"}[accepted]
            return self._failed(CredentialInvalidError(f"this app does not accept {what}"))
        if kind == "oauth_jwt":
            try:
                verified = yield VerifyOAuth(token)
            except WachtAuthError as failure:
                return self._failed(failure)
            return self._credential_state(verified)
        if self.gateway is None:  # OAuth tokens accepted in the JWT format only
            return self._failed(
                CredentialInvalidError(
                    "this app checks OAuth access tokens in the JWT format only; an opaque "
                    "token (oat_...) needs deployment_id to be checked at Wacht's gateway"
                )
            )
        # Wacht's gateway checks its own permissions of an API key; an OAuth token's
        # permissions are its scopes, checked here by the route's requirement.
        needed = required_permissions if kind == "api_key" else ()
        checked: Checked = yield Check(
            cast("CredentialKind", kind), token, self._about(request, needed)
        )
        found, refused = checked.credential, checked.error
        audiences = self._audiences if kind == "oauth_token" else ()  # a key has no resource
        if found is not None and audiences and found.resource not in audiences:
            message = "the OAuth grant's resource is not one of the accepted audiences"
            found, refused = None, AudienceInvalidError(message)
        return AuthState(
            error=refused,
            token_presented=True,
            verifier=self.verifier,
            credential=found,
            response_headers=checked.headers,
            accept=self.accept,
        )

    def _failed(self, error: WachtAuthError) -> AuthState:
        return AuthState(
            error=error, token_presented=True, verifier=self.verifier, accept=self.accept
        )

    def _source(self, request: RequestView) -> TokenSource | None:
        """``Authorization: Bearer`` first, then the session cookie ``__auth_<scope>``."""
        token = bearer_token(request.header("authorization"))
        if token is not None:
            return TokenSource(token)
        if self._cookie is not None:
            value = request.cookie(self._cookie)
            if value:
                return TokenSource(value, from_cookie=True)
        return None

    def _kind(self, source: TokenSource) -> str:
        """Which credential a bearer is, by Wacht's formats, first match: a JWT of this
        deployment is a session token (as is any bearer on a layer taking session tokens
        only, and the cookie); a JWT of an OAuth issuer an OAuth access token
        (``oauth_jwt``); any other JWT is ``foreign_jwt`` (refused, sent nowhere); another
        dotted value a damaged JWT (a session token, refused here: no key has a dot);
        ``oat_…`` an opaque OAuth token; anything else an API key. A JWT whose ``iss``
        cannot be read is verified as a session token, so the verifier names the fault
        precisely."""
        token = source.token
        if not self._routes or source.from_cookie:
            return "session_token"
        if looks_like_jws(token):
            iss = peek_issuer(token)
            if iss is None or iss in self._issuers:
                return "session_token"
            return "oauth_jwt" if iss in self._oauth_issuers else "foreign_jwt"
        if "." in token:  # no API key or oat_ token has a dot: a damaged JWT, never sent out
            return "session_token"
        return "oauth_token" if token.startswith("oat_") else "api_key"

    def _about(self, request: RequestView, required_permissions: Collection[str]) -> dict[str, Any]:
        """What the gateway is told of the request besides the credential; the client's IP
        is the one the session exchange uses (proxy headers only behind trusted proxies)."""
        return {
            "resource": request.path,
            "method": request.method,
            "client_ip": client_ip(
                request.client_ip(), request.header("x-forwarded-for"), self.trusted_proxies
            ),
            "user_agent": request.header("user-agent"),
            "required_permissions": tuple(required_permissions),
        }

    # ---------------------------------------------------------------- the route

    def is_open(self, request: RequestView, *, public_route: bool = False) -> bool:
        """Whether the route stays open under ``protect_all``: marked public by the adapter
        (``public_route``), under ``public_paths``, or a CORS preflight (one rule for every
        framework, :func:`~wacht_auth.auth.view.is_preflight`)."""
        return public_route or request.path in self.public_paths or is_preflight(request)

    def dev_link(self, method: str, query: str) -> bool:
        """Whether a request (its ``method`` and raw ``query``) carries a
        ``?__dev_session__=`` link: exchanged and redirected to the clean URL on any route,
        so an adapter that resolves lazily resolves this request before its route (a
        substring test; cheap on every request, no view needed)."""
        return self.handshake.dev_link(method, query)

    def refusal(
        self, request: RequestView, state: AuthState, *, public_route: bool = False
    ) -> WachtAuthError | Redirect | PageError | None:
        """The answer a request gets instead of its route: on any route, the redirect to the
        clean URL after a ``?__dev_session__=`` exchange; under ``protect_all``, an error, or
        for a page (``page_paths``) a :class:`Redirect` to the sign-in page for a visitor who
        is not signed in (a 403, or a 401 with no sign-in page, as a :class:`PageError`: the
        framework's own error page answers); None lets it through. A 503 (keys, gateway or
        frontend API down) stays a 503 on pages too: a redirect to a sign-in page that may be
        down as well could loop or sign people out."""
        if state.redirect is not None:
            return Redirect(state.redirect)
        if not self.protect_all:
            return None
        page = bool(self.page_paths) and request.path in self.page_paths
        if state.session is not None or state.credential is not None:
            return None
        if self.is_open(request, public_route=public_route):
            return None
        return self.page_answer(request, state.error or TokenMissingError(), page=page)

    def page_answer(
        self, request: RequestView, error: WachtAuthError, *, page: bool = True
    ) -> WachtAuthError | Redirect | PageError:
        """``error``; for a page and a 401 the redirect to the sign-in page; for a page's
        other 401 or 403 a :class:`PageError` (the framework's own error page answers)."""
        if page and error.status == 401:
            location = self.handshake.sign_in_location(request)
            if location is not None:
                return Redirect(location)
        return PageError(error) if page and error.status in (401, 403) else error

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


def _send(flow: Flow, result: Any) -> Step | AuthState:
    """The decision's next step after ``result``, or its answer."""
    try:
        return flow.send(result)
    except StopIteration as stop:
        return cast("AuthState", stop.value)


def _throw(flow: Flow, error: WachtAuthError) -> Step | AuthState:
    """The decision's next step after a step failed with ``error``, or its answer."""
    try:
        return flow.throw(error)
    except StopIteration as stop:
        return cast("AuthState", stop.value)


def _kinds(value: Iterable[str], setting: str) -> tuple[CredentialKind, ...]:
    """A validated tuple of credential kinds (``accept``)."""
    found = (value,) if isinstance(value, str) else tuple(value)
    for kind in found:
        if kind not in CREDENTIAL_KINDS:
            raise ConfigurationError(f"{setting} takes {', '.join(CREDENTIAL_KINDS)}; got {kind!r}")
    if not found:
        raise ConfigurationError(f"{setting} must name at least one credential kind")
    return cast("tuple[CredentialKind, ...]", tuple(dict.fromkeys(found)))


def _log_prefetch(error: WachtAuthError) -> None:
    LOGGER.warning("wacht_auth: key prefetch at start-up failed: %s", error)
