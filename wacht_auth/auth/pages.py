"""The page handshake: signing a browser in from Wacht's session cookies.

A page gets cookies, not a bearer. :class:`Handshake` is the whole handshake of one app, which
the decider calls once per request that has no usable session token: it finds the transport
token (``__session``, the development session, or ``?__dev_session__=`` on a page URL),
applies the CSRF rule to a cookie, asks for the exchange and the verification of the token it
yields (as :mod:`~wacht_auth.auth.steps`, so the sync and async loops share it), and answers
with the cookies Wacht's own server SDKs write and, after a ``?__dev_session__=`` exchange, the
clean URL. It also finds the sign-in page for a visitor who is not signed in. The cookie and
URL helpers below are framework-free and public.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from ..config import Config, cookie_name_for
from ..errors import ConfigurationError, TokenInvalidError
from ..exchange import DEV_SESSION_PARAM, TRANSPORT_COOKIE, SessionExchange, cookie_value
from ..proxies import _PATH_SAFE, _QUERY_SAFE, TrustedProxies, _is_ip, client_ip, public_url
from ..session import Session
from .steps import Exchange, Step, Verify, VerifyTransport

if TYPE_CHECKING:
    from .view import RequestView

__all__ = [
    "PRIVATE",
    "Handshake",
    "SignedIn",
    "Transport",
    "dev_session_cookie_name",
    "dev_session_cookies",
    "dev_session_in_query",
    "dev_session_updated_at_cookie_name",
    "expired_session_cookie",
    "merged_header",
    "session_cookie",
    "sign_in_url",
    "transport_from_cookies",
    "without_dev_session",
]

#: The headers of every response to a request signed in from a cookie and of every response
#: that sets one of our cookies: no shared cache (Django's cache middleware, a CDN) may store
#: one visitor's page or ``__auth_<scope>`` and serve it to another (RFC 9111 §5.2.2.7,
#: §5.2.2.5; RFC 9110 §12.5.5: the answer depends on the ``Cookie`` header).
PRIVATE: tuple[tuple[str, str], ...] = (("Vary", "Cookie"), ("Cache-Control", "private, no-store"))

# RFC 6265 §4.1.1: a cookie name is an RFC 2616 token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


# --------------------------------------------------------------------------- cookies


def _scope(frontend_api_url: str) -> str:
    return cookie_name_for(frontend_api_url)[len("__auth_") :]


def dev_session_cookie_name(frontend_api_url: str) -> str:
    """``__dev_session___<scope>``: the development session of this deployment."""
    return f"{DEV_SESSION_PARAM}_{_scope(frontend_api_url)}"


def dev_session_updated_at_cookie_name(frontend_api_url: str) -> str:
    """``__dev_session_updated_at_<scope>``: when the development session was last renewed."""
    return f"__dev_session_updated_at_{_scope(frontend_api_url)}"


def _cookie_name(name: str) -> str:
    if not _TOKEN.match(name):
        raise ValueError(f"{name!r} is not a valid cookie name (RFC 6265 §4.1.1)")
    return name


def session_cookie(name: str, token: str, *, expires_at: float, now: float) -> str:
    """The ``Set-Cookie`` value that stores a session token in ``__auth_<scope>`` (``name``).

    ``HttpOnly`` (page scripts never read it), ``Secure`` (browsers treat ``http://localhost``
    as secure, so development works), ``SameSite=Lax`` (sent on top-level navigations, such as
    the redirect back from the sign-in page, not on cross-site subrequests), ``Path=/``, and
    ``Max-Age`` = whole seconds until ``expires_at`` minus 2, never negative (RFC 6265 §5.2.2:
    0 or less deletes the cookie), as Wacht's SDKs set it so the browser drops the cookie
    before the token expires.
    """
    max_age = max(0, math.floor(expires_at - now) - 2)
    return (
        f"{_cookie_name(name)}={cookie_value(token)}; Path=/; Max-Age={max_age}; "
        "HttpOnly; Secure; SameSite=Lax"
    )


def expired_session_cookie(name: str) -> str:
    """The ``Set-Cookie`` value that deletes ``__auth_<scope>`` (``name``): the session is over.

    Same ``Path`` and attributes as :func:`session_cookie` (a cookie is replaced only by one
    with the same name, domain and path, RFC 6265 §5.3 step 11), ``Max-Age=0``.
    """
    return f"{_cookie_name(name)}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"


def dev_session_cookies(frontend_api_url: str, dev_session: str, *, now: float) -> tuple[str, str]:
    """The two ``Set-Cookie`` values that store a renewed development session.

    ``__dev_session___<scope>`` = the session and ``__dev_session_updated_at_<scope>`` = ``now``
    in Unix milliseconds. Not ``HttpOnly``: Wacht's browser SDK reads and renews them. Session
    cookies (no ``Max-Age``), ``Path=/; Secure; SameSite=Lax``, as Wacht's Next.js SDK writes.
    """
    attributes = "Path=/; Secure; SameSite=Lax"
    return (
        f"{dev_session_cookie_name(frontend_api_url)}={cookie_value(dev_session)}; {attributes}",
        f"{dev_session_updated_at_cookie_name(frontend_api_url)}={int(now * 1000)}; {attributes}",
    )


def merged_header(name: str, current: str | None, value: str) -> str:
    """The value of the response header ``name`` once the request layer's ``value`` is added
    to what the app set (``current``): ``Vary`` lists are united (RFC 9110 §12.5.5, ``*``
    kept); our ``Cache-Control`` replaces the app's (``private, no-store`` must win over a
    view's ``public, max-age``); any other header is ``value``. Adapters copy a state's
    ``response_headers`` through this (``Set-Cookie`` lines are added, never merged)."""
    if name.lower() != "vary" or not current:
        return value
    have = [v.strip() for v in current.split(",") if v.strip()]
    if "*" in have:
        return current
    known = {v.lower() for v in have}
    return ", ".join(have + [v for v in value.split(", ") if v.lower() not in known])


class Transport(NamedTuple):
    """A transport token found on a request: the value, and whether it is a development one."""

    value: str
    dev: bool = False

    def __repr__(self) -> str:
        return f"Transport(dev={self.dev})"  # never the value


def transport_from_cookies(
    cookie: Callable[[str], str | None], frontend_api_url: str
) -> Transport | None:
    """The transport token to exchange, from a request's cookies: ``__session`` first, else the
    development session ``__dev_session___<scope>``; None when neither is there.

    ``cookie`` looks a cookie up by name (``RequestView.cookie``); values are percent-decoded,
    as Wacht's SDKs decode them.
    """
    value = cookie(TRANSPORT_COOKIE)
    if value:
        return Transport(unquote(value), dev=False)
    value = cookie(dev_session_cookie_name(frontend_api_url))
    if value:
        return Transport(unquote(value), dev=True)
    return None


# --------------------------------------------------------------------------- URLs


def dev_session_in_query(query: str) -> str | None:
    """The ``__dev_session__`` parameter of a raw query string, or None (the first one wins)."""
    if DEV_SESSION_PARAM not in query:
        return None
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == DEV_SESSION_PARAM:
            return value or None
    return None


def without_dev_session(url: str) -> str:
    """``url`` without any ``__dev_session__`` parameter, the rest of it untouched.

    The target of the 302 after a ``?__dev_session__=`` page request has been exchanged: the
    development token must not stay in the address bar, history or ``Referer``.
    """
    parts = urlsplit(url)
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and unquote(pair.partition("=")[0].replace("+", " ")) != DEV_SESSION_PARAM
    ]
    return urlunsplit(parts._replace(query="&".join(kept)))


def sign_in_url(frontend_api_url: str, *, sign_in_url: str | None, redirect_uri: str) -> str:
    """Where to send a visitor who is not signed in, with ``redirect_uri`` back to the page.

    ``sign_in_url`` when configured (its own query kept, any ``redirect_uri`` in it replaced).
    Else Wacht's accounts portal, derived from the frontend API host as Wacht's SDKs do: a
    first label ``frontend`` becomes ``accounts`` (``frontend.acme.com`` →
    ``accounts.acme.com``); else a second label ``fapi`` becomes ``accounts``
    (``x.fapi.wacht.services`` → ``x.accounts.wacht.services``); else ``accounts`` is inserted
    as the second label (``acme.wacht.dev`` → ``acme.accounts.wacht.dev``). A host of fewer
    than three labels, or an IP address, has no portal host to derive: ``{frontend
    origin}/sign-in``. The scheme and port of the frontend API are kept; the path is
    ``/sign-in``.
    """
    if sign_in_url:
        target = urlsplit(sign_in_url.strip())
        if target.scheme not in ("https", "http") or not target.hostname:
            raise ConfigurationError(
                f"sign_in_url must be an absolute http(s) URL, got {sign_in_url!r}"
            )
    else:
        front = urlsplit(
            frontend_api_url if "://" in frontend_api_url else "https://" + frontend_api_url
        )
        host = (front.hostname or "").lower()
        if not host:
            raise ConfigurationError(f"frontend_api_url has no host: {frontend_api_url!r}")
        labels = host.split(".")
        if len(labels) >= 3 and not _is_ip(host):
            if labels[0] == "frontend":
                labels[0] = "accounts"
            elif labels[1] == "fapi":
                labels[1] = "accounts"
            else:
                labels.insert(1, "accounts")
            host = ".".join(labels)
        elif ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{front.port}" if front.port is not None else "")
        target = urlsplit(urlunsplit((front.scheme, netloc, "/sign-in", "", "")))
    query = [
        pair
        for pair in target.query.split("&")
        if pair and unquote(pair.partition("=")[0]) != "redirect_uri"
    ]
    query.append(urlencode({"redirect_uri": redirect_uri}, quote_via=quote))
    return urlunsplit(target._replace(query="&".join(query), fragment=""))


class SignedIn(NamedTuple):
    """What the handshake answers: the session it signed in (None: the session is over),
    the headers for the response (cookies) and, after a ``?__dev_session__=`` exchange, the
    clean URL to redirect to."""

    session: Session | None
    headers: tuple[tuple[str, str], ...]
    redirect: str | None = None

    def __repr__(self) -> str:
        names = [name for name, _ in self.headers]  # never the values: they hold the tokens
        return f"SignedIn(session={self.session!r}, headers={names!r}, redirect={self.redirect!r})"


class Handshake:
    """Wacht's session handshake for the pages of one app (framework-free).

    Args:
        config: the verifier's configuration (frontend API, cookie name, ``sign_in_url``,
            ``exchange_timeout``, clock, events).
        trusted_proxies: the proxies in front of the app; only then are forwarded headers read.
        csrf: the CSRF rule for a cookie on an unsafe request (raises
            :class:`~wacht_auth.errors.CsrfFailedError`).
    """

    __slots__ = ("_config", "_csrf", "cookie_name", "exchange", "trusted_proxies")

    def __init__(
        self,
        config: Config,
        *,
        trusted_proxies: TrustedProxies,
        csrf: Callable[[RequestView], None],
    ) -> None:
        self._config, self._csrf, self.trusted_proxies = config, csrf, trusted_proxies
        self.cookie_name = config.cookie_name or ""
        # A browser without a usable session token is signed in from its session cookie at
        # the frontend API: whenever cookies are read and the frontend API is known.
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

    def flow(self, request: RequestView) -> Generator[Step, Any, SignedIn | None]:
        """Sign the browser of ``request`` in: None when it has nothing to exchange (or no
        exchange is configured). Raises the exchange's or the verification's
        :class:`~wacht_auth.WachtAuthError`, or ``csrf_failed`` for a cookie on a foreign
        unsafe request."""
        exchange = self.exchange
        if exchange is None:
            return None
        transport, from_query = self._dev_link(request), True
        if transport is None:  # a development-session link first: it is always made clean
            transport, from_query = self._transport(request), False
        if transport is None:
            return None
        if not from_query:  # a cookie: the browser sends it cross-site too
            self._csrf(request)
        if not transport.dev:
            # A JWT of the deployment: checked here first, so junk never costs an exchange
            # and a cookie of another deployment (an app mounted inside another) never goes
            # to this deployment's frontend API. The development session is opaque.
            try:
                claims = yield VerifyTransport(transport.value)
            except TokenInvalidError:
                return None
            if claims.get("iss") != self._config.issuer:
                return None
        peer, forwarded = request.client_ip(), request.header("x-forwarded-for")
        ip = client_ip(peer, forwarded, self.trusted_proxies)
        exchanged = yield Exchange(transport.value, transport.dev, ip)
        if exchanged is None:  # the session ended: the stale __auth cookie goes
            gone = ("Set-Cookie", expired_session_cookie(self.cookie_name))
            return SignedIn(None, (*PRIVATE, gone), self._clean(request) if from_query else None)
        session = yield Verify(exchanged.token)
        now = self._config.clock()
        cookies = [
            session_cookie(
                self.cookie_name, exchanged.token, expires_at=exchanged.expires_at, now=now
            ),
            *exchanged.set_cookies,
        ]
        if exchanged.dev_session:
            cookies += dev_session_cookies(
                exchange.frontend_api_url, exchanged.dev_session, now=now
            )
        headers = (*PRIVATE, *(("Set-Cookie", c) for c in cookies))
        return SignedIn(session, headers, self._clean(request) if from_query else None)

    def dev_link(self, method: str, query: str) -> bool:
        """Whether a request (its ``method`` and raw ``query``) carries a
        ``?__dev_session__=`` link this handshake exchanges (and then redirects to the clean
        URL, on any route): a substring test first, no view needed, so adapters that resolve
        lazily may ask on every request."""
        return (
            self.exchange is not None
            and DEV_SESSION_PARAM in query
            and method in ("GET", "HEAD")
            and dev_session_in_query(query) is not None
        )

    @staticmethod
    def _dev_link(request: RequestView) -> Transport | None:
        if request.method not in ("GET", "HEAD"):
            return None
        dev = dev_session_in_query(request.query())
        return Transport(dev, dev=True) if dev is not None else None

    def _transport(self, request: RequestView) -> Transport | None:
        assert self.exchange is not None
        return transport_from_cookies(request.cookie, self.exchange.frontend_api_url)

    def _clean(self, request: RequestView) -> str:
        """The request's URL without its development session: absolute when the Host is
        valid, else relative to the URL the browser asked for (a redirect never goes to a
        Host the one rule refuses)."""
        url = self.public_url(request)
        if url is None:
            path = "/" + quote(request.path, safe=_PATH_SAFE).lstrip("/")
            url = urlunsplit(("", "", path, quote(request.query(), safe=_QUERY_SAFE), ""))
        return without_dev_session(url)

    def public_url(self, request: RequestView) -> str | None:
        """The absolute URL of this request as the browser sees it, or None (no valid Host)."""
        try:
            return public_url(
                scheme=request.scheme,
                host=request.host(),
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
        config = self._config
        url = self.public_url(request)
        if url is None or not config.frontend_api_url:
            return None
        return sign_in_url(
            config.frontend_api_url, sign_in_url=config.sign_in_url, redirect_uri=url
        )
