"""Server-rendered pages: Wacht's session-cookie handshake and sign-in redirects (DESIGN.md §10).

A page gets cookies, not a bearer. Everything here is framework-free and decides nothing about
routes; the request layer calls it:

* :class:`SessionExchange` trades the long-lived transport cookie (``__session``, or the
  development session) for a short-lived session token at ``GET {frontend}/session/token``,
  one upstream request per transport value however many threads and tasks ask at once, the
  answer reused until the token expires, failures remembered for a short time.
* :func:`session_cookie`, :func:`expired_session_cookie` and :func:`dev_session_cookies` write
  the ``Set-Cookie`` values Wacht's own server SDKs write.
* :func:`sign_in_url` finds the sign-in page (the accounts portal derived from the frontend
  host unless configured) and :func:`public_url` the ``redirect_uri`` back to the page.
* :class:`TrustedProxies`, :func:`client_ip` and :func:`public_url` read ``X-Forwarded-*``
  headers only when the app says it sits behind proxies, so no client can choose the host a
  redirect goes to or the IP the frontend API rate-limits.

The exchanged token is *not* verified here: the caller verifies it like any other token (the
frontend API is trusted for the channel only, and the transport token itself is never a
session: it has no ``sub``).
"""

from __future__ import annotations

import email.utils
import hashlib
import ipaddress
import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from ._events import emit
from ._flight import Flight
from ._http import FetchError, HTTPAnswer, http_get
from .config import EventHandler, cookie_name_for, is_loopback_host
from .errors import ConfigurationError, SessionExchangeUnavailableError

__all__ = [
    "DEFAULT_EXCHANGE_TIMEOUT",
    "DEV_SESSION_HEADER",
    "DEV_SESSION_PARAM",
    "EXCHANGE_PATH",
    "FORWARDED_FOR_HEADER",
    "TRANSPORT_COOKIE",
    "Exchanged",
    "PagePaths",
    "SessionExchange",
    "Transport",
    "TrustedProxies",
    "client_ip",
    "dev_session_cookie_name",
    "dev_session_cookies",
    "dev_session_in_query",
    "dev_session_updated_at_cookie_name",
    "expired_session_cookie",
    "public_url",
    "session_cookie",
    "sign_in_url",
    "transport_from_cookies",
    "without_dev_session",
]

#: The production transport cookie, set by the frontend API on its own host; read only.
TRANSPORT_COOKIE = "__session"
#: The query parameter that carries a development session (to the app and to the exchange).
DEV_SESSION_PARAM = "__dev_session__"
#: The answer header of the exchange that carries a renewed development session.
DEV_SESSION_HEADER = "x-development-session"
#: The request header that tells the frontend API whose IP its per-IP limits apply to.
FORWARDED_FOR_HEADER = "X-Wacht-Forwarded-For"
#: Where the frontend API exchanges a transport token for a session token.
EXCHANGE_PATH = "/session/token"
#: Seconds one exchange may take, all included (``exchange_timeout``).
DEFAULT_EXCHANGE_TIMEOUT = 5.0

# Wacht's SDKs write cookie values with encodeURIComponent; these are the characters it keeps.
_URI_COMPONENT_SAFE = "-_.!~*'()"
# RFC 6265 §4.1.1: a cookie name is an RFC 2616 token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# RFC 3986 §3.2.2 reg-name (without percent-encoding, which no real Host uses) and a port.
_REG_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._~-]*[A-Za-z0-9_~-])?\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")
# RFC 3986 §3.3 pchar plus "/" and "%": anything else in a path or query is percent-encoded,
# so CR, LF, spaces or "#" can never leak into a Location header or change a URL's meaning.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# The body of an exchange answer is a small JSON object; anything larger is not Wacht's.
_MAX_BODY = 64 * 1024
# Seconds a waiter gives an exchange beyond its deadline (parsing and publishing the answer).
_GRACE = 0.5


# --------------------------------------------------------------------------- cookies


def _scope(frontend_api_url: str) -> str:
    return cookie_name_for(frontend_api_url)[len("__auth_") :]


def dev_session_cookie_name(frontend_api_url: str) -> str:
    """``__dev_session___<scope>``: the development session of this deployment."""
    return f"{DEV_SESSION_PARAM}_{_scope(frontend_api_url)}"


def dev_session_updated_at_cookie_name(frontend_api_url: str) -> str:
    """``__dev_session_updated_at_<scope>``: when the development session was last renewed."""
    return f"__dev_session_updated_at_{_scope(frontend_api_url)}"


def _cookie_value(value: str) -> str:
    # As Wacht's SDKs write it (encodeURIComponent): every octet outside RFC 6265's
    # cookie-octet (and more) is percent-encoded, so no value can add an attribute.
    return quote(value, safe=_URI_COMPONENT_SAFE)


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
        f"{_cookie_name(name)}={_cookie_value(token)}; Path=/; Max-Age={max_age}; "
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
        f"{dev_session_cookie_name(frontend_api_url)}={_cookie_value(dev_session)}; {attributes}",
        f"{dev_session_updated_at_cookie_name(frontend_api_url)}={int(now * 1000)}; {attributes}",
    )


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


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address of an ``X-Forwarded-For`` entry or a socket peer (``[v6]:port`` and
    ``v4:port`` forms tolerated), or None when it is not one."""
    text = value.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedProxies:
    """Which proxies in front of the app may speak for the client (``trusted_proxies``).

    Two ways to say it, as deployments know it:

    * ``hops`` = the number of reverse proxies every request passes (``1`` behind one load
      balancer). Each appends the address it received the request from to
      ``X-Forwarded-For``, so the client is the ``hops``-th entry from the right.
    * ``networks`` = the proxies' addresses (CIDRs or single IPs). The socket peer must be one
      of them for any forwarded header to count; ``X-Forwarded-For`` is then read from the
      right, skipping trusted addresses: the first untrusted one is the client.

    Without either (the default) no forwarded header is read: the client is the socket peer
    and the public URL is the request's own scheme and ``Host``. Build one with :meth:`parse`.
    """

    hops: int = 0
    networks: tuple[_Network, ...] = ()

    @classmethod
    def parse(cls, value: TrustedProxies | int | str | Iterable[str] | None) -> TrustedProxies:
        """Read the ``trusted_proxies`` setting: None/0/"" (none), an int or a string of
        digits (hops), or CIDRs/IPs as a list or a comma-separated string.

        Raises:
            ConfigurationError: naming ``trusted_proxies`` and the entry to fix.
        """
        if isinstance(value, TrustedProxies):
            return value
        if value is None:
            return cls()
        if isinstance(value, bool):
            raise ConfigurationError("trusted_proxies must be a number of hops or CIDRs")
        if isinstance(value, int):
            if value < 0:
                raise ConfigurationError(f"trusted_proxies must be >= 0 hops, got {value}")
            return cls(hops=value)
        if isinstance(value, str):
            text = value.strip()
            if text.isdigit():
                return cls(hops=int(text))
            items: Iterable[str] = text.split(",") if text else ()
        else:
            items = value
        networks: list[_Network] = []
        for item in items:
            if not isinstance(item, str) or not item.strip():
                raise ConfigurationError(f"trusted_proxies: {item!r} is not a CIDR or an IP")
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError as exc:
                raise ConfigurationError(
                    f"trusted_proxies: {item!r} is not a CIDR or an IP ({exc})"
                ) from exc
        return cls(networks=tuple(networks))

    def __bool__(self) -> bool:
        return bool(self.hops or self.networks)

    def _trusts(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> tuple[str | None, int]:
        """``(client IP, number of trusted proxies it passed)`` for a request.

        The client IP is None when the entry found is not an IP address.
        """
        if not self:
            return _normal(peer), 0
        entries = [e for e in (forwarded_for or "").split(",") if e.strip()]
        if self.hops:
            if not entries:
                return _normal(peer), 0  # not through the proxies (a health check, say)
            # Fewer entries than hops: some proxy overwrote the header rather than append;
            # whatever is left was written by a trusted one, never by the client.
            return _normal(entries[max(0, len(entries) - self.hops)]), self.hops
        peer_ip = _ip(peer) if peer else None
        if peer_ip is None or not self._trusts(peer_ip):
            return _normal(peer), 0
        hops = 1
        for entry in reversed(entries):
            address = _ip(entry)
            if address is None:
                return None, hops
            if not self._trusts(address):
                return str(address), hops
            hops += 1
        # Every address is a trusted proxy: the left-most is as close to the client as known.
        return (_normal(entries[0]) if entries else _normal(peer)), hops


def _normal(value: str | None) -> str | None:
    address = _ip(value) if value else None
    return str(address) if address is not None else None


def client_ip(
    peer: str | None,
    forwarded_for: str | None = None,
    trusted_proxies: TrustedProxies | None = None,
) -> str | None:
    """The client's IP, for ``X-Wacht-Forwarded-For``: the socket ``peer``, or with
    ``trusted_proxies`` the entry of ``X-Forwarded-For`` (RFC 7239 §5.2's de-facto predecessor)
    that the trusted proxies vouch for (:class:`TrustedProxies`). None when unknown."""
    return (trusted_proxies or _NO_PROXIES).resolve(peer, forwarded_for)[0]


_NO_PROXIES = TrustedProxies()


def _forwarded_value(header: str | None, hops: int) -> str | None:
    """The value of an ``X-Forwarded-Proto``/``-Host`` list that the outermost trusted proxy
    wrote: each proxy appends (or overwrites), so it is ``hops`` entries from the right."""
    if not header or hops <= 0:
        return None
    values = [v.strip() for v in header.split(",") if v.strip()]
    if not values:
        return None
    return values[max(0, len(values) - hops)]


def _authority(host: str, scheme: str) -> str | None:
    """A Host value as ``host[:port]`` (lower case, default port dropped), or None when it is
    not a host (RFC 9110 §7.2, RFC 3986 §3.2.2): no userinfo, path, query or spaces."""
    host = host.strip()
    if host.startswith("["):
        literal, _, rest = host[1:].partition("]")
        try:
            name = f"[{ipaddress.IPv6Address(literal).compressed}]"
        except ValueError:
            return None
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            return None
    else:
        name, colon, port_text = host.partition(":")
        port = port_text if colon else None
        if not _REG_NAME.match(name):
            return None
        name = name.lower()
    if port is not None:
        if not _PORT.match(port) or not 0 < int(port) < 65536:
            return None
        if int(port) != _DEFAULT_PORTS.get(scheme):
            name += f":{int(port)}"
    return name


def public_url(
    *,
    scheme: str,
    host: str | None,
    path: str,
    query: str = "",
    peer: str | None = None,
    forwarded_for: str | None = None,
    forwarded_proto: str | None = None,
    forwarded_host: str | None = None,
    trusted_proxies: TrustedProxies | None = None,
) -> str:
    """The absolute URL the browser asked for: the ``redirect_uri`` back to this page.

    The scheme and host are the request's own (``Host`` is what the browser sent, so it may
    name whatever the browser reached; a redirect there goes nowhere the browser did not
    already go). ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` replace them only when
    ``trusted_proxies`` trusts the proxies this request passed (``peer`` and
    ``forwarded_for`` decide, see :class:`TrustedProxies`); otherwise any client could name a
    foreign host. Invalid forwarded values are ignored. ``path`` (as routed) and ``query``
    (raw) are percent-encoded where RFC 3986 requires, so the URL can go into a ``Location``
    header as it is.

    Raises:
        ValueError: ``host`` is missing or not a host name (answer 400).
    """
    scheme = {"ws": "http", "wss": "https"}.get(scheme.lower(), scheme.lower())
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"unsupported scheme {scheme!r}")
    _, hops = (trusted_proxies or _NO_PROXIES).resolve(peer, forwarded_for)
    proto = (_forwarded_value(forwarded_proto, hops) or "").lower()
    if proto in _DEFAULT_PORTS:
        scheme = proto
    authority = None
    proxied_host = _forwarded_value(forwarded_host, hops)
    if proxied_host is not None:
        authority = _authority(proxied_host, scheme)
    if authority is None:
        authority = _authority(host, scheme) if host else None
    if authority is None:
        raise ValueError("the request has no valid Host")
    path = "/" + quote(path, safe=_PATH_SAFE).lstrip("/")  # never "//": a path, not a host
    query = quote(query, safe=_QUERY_SAFE)
    return urlunsplit((scheme, authority, path, query, ""))


class PagePaths:
    """Path prefixes served as pages (``page_paths``): anonymous visitors are redirected to
    sign in there instead of getting a 401.

    A prefix matches itself and what lies below it on a segment boundary: ``/app`` matches
    ``/app``, ``/app/`` and ``/app/x``, not ``/application``; ``/`` matches every path.
    """

    __slots__ = ("_prefixes",)

    def __init__(self, prefixes: Iterable[str] = ()) -> None:
        items = (prefixes,) if isinstance(prefixes, str) else tuple(prefixes)
        for prefix in items:
            if not isinstance(prefix, str) or not prefix.startswith("/"):
                raise ConfigurationError(f"page_paths entries must start with '/': {prefix!r}")
        self._prefixes = tuple(p.rstrip("/") for p in items)

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        return any(path == prefix or path.startswith(prefix + "/") for prefix in self._prefixes)

    def __bool__(self) -> bool:
        return bool(self._prefixes)

    def __iter__(self) -> Iterator[str]:
        return iter(p or "/" for p in self._prefixes)

    def __repr__(self) -> str:
        return f"PagePaths({list(self)!r})"


# --------------------------------------------------------------------------- the exchange


@dataclass(frozen=True)
class Exchanged:
    """A transport token exchanged for a session token (immutable; shared by the requests of
    one browser while it is reused).

    Attributes:
        token: the session token (a JWT the caller still verifies).
        expires_at: when it expires, POSIX seconds (the answer's ``expires`` is milliseconds).
        set_cookies: the frontend API's ``Set-Cookie`` values, to pass on to the browser.
        dev_session: a renewed development session (``x-development-session``), or None.
    """

    token: str = field(repr=False)
    expires_at: float
    set_cookies: tuple[str, ...] = field(default=(), repr=False)
    dev_session: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class _Memo:
    """A remembered outcome for one transport value: a result, or a rate limit (429)."""

    result: Exchanged | None
    until: float
    retry_after: bool = False


#: What an exchange ends with: a token, None (the session is over), or ``(retry_after,)``
#: when the frontend API is unavailable.
_Outcome = Exchanged | tuple[int] | None


class _Plan(NamedTuple):
    memo: _Memo | None = None
    down: int = 0  # > 0: the frontend API is remembered as unavailable for this long
    flight: Flight[_Outcome] | None = None
    own: bool = False


class SessionExchange:
    """Exchanges transport tokens at one deployment's frontend API (one per deployment).

    ``GET {frontend}/session/token`` with ``Cookie: __session=<transport>`` (production) or
    ``?__dev_session__=<transport>`` and no cookie (development sessions), and
    ``X-Wacht-Forwarded-For: <client IP>`` so the frontend API's per-IP limits (about 10
    exchanges a minute) count the user, not this server.

    * **Single flight**: concurrent calls with one transport value (threads and asyncio tasks
      alike, on any loop) make one upstream request and share its outcome.
    * **Reuse**: a token is reused until ``reuse_margin`` seconds before it expires, in a
      bounded cache (``max_entries``) keyed by the SHA-256 of the transport value, never the
      value itself.
    * **Failure memory**: a session that is over (401/403, other 4xx) is remembered for
      ``over_memory`` seconds; a 429 for that transport value until its ``Retry-After``; a
      frontend API that is down (5xx, timeout, unreachable, a malformed answer) for everyone,
      until its ``Retry-After`` or ``failure_memory`` seconds, at most ``max_retry_after``.
      Meanwhile calls raise at once instead of piling onto a server that cannot answer.
    * **One deadline**: ``timeout`` bounds the whole GET (lookup, connect, TLS, headers,
      body); an async caller runs it in a worker thread and never blocks its event loop.

    Args:
        frontend_api_url: the frontend API origin (https; http for loopback only).
        timeout: ``exchange_timeout``, seconds for one whole exchange.
        clock: POSIX seconds (injectable for tests); the deadline uses the monotonic clock.
        on_event: ``Config.on_event``; events carry a hash prefix, never a token.
    """

    def __init__(
        self,
        frontend_api_url: str,
        *,
        timeout: float = DEFAULT_EXCHANGE_TIMEOUT,
        clock: Callable[[], float] = time.time,
        max_entries: int = 4096,
        reuse_margin: float = 5.0,
        failure_memory: float = 5.0,
        over_memory: float = 60.0,
        max_retry_after: float = 60.0,
        on_event: EventHandler | None = None,
    ) -> None:
        parts = urlsplit(frontend_api_url.strip())
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigurationError(
                f"frontend_api_url must be an https URL, got {frontend_api_url!r}"
            )
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ConfigurationError(
                "frontend_api_url must use https (plain http only for loopback hosts): "
                "the exchange sends the session cookie"
            )
        if not (isinstance(timeout, (int, float)) and 0 < timeout <= 60):
            raise ConfigurationError(f"exchange_timeout must be in (0, 60] seconds: {timeout!r}")
        if max_entries < 1:
            raise ConfigurationError("the exchange cache needs at least one entry")
        self.frontend_api_url = f"{parts.scheme}://{parts.netloc}"
        self.endpoint = self.frontend_api_url + EXCHANGE_PATH
        self.timeout = float(timeout)
        self.clock = clock
        self.max_entries = max_entries
        self.reuse_margin = reuse_margin
        self.failure_memory = failure_memory
        self.over_memory = over_memory
        self.max_retry_after = max_retry_after
        self.on_event = on_event
        self._lock = threading.Lock()
        self._memos: OrderedDict[bytes, _Memo] = OrderedDict()
        self._flights: dict[bytes, Flight[_Outcome]] = {}
        self._down_until = -math.inf
        self._wait_for = self.timeout + _GRACE

    def __repr__(self) -> str:
        return f"SessionExchange({self.endpoint!r}, cached={len(self._memos)})"

    # ---------------------------------------------------------------- public

    def exchange(
        self, transport: str, *, dev: bool = False, client_ip: str | None = None
    ) -> Exchanged | None:
        """Exchange ``transport`` for a session token.

        Returns:
            The session token and cookies, or None when the session is over (anonymous: a
            page redirects to sign in).

        Raises:
            SessionExchangeUnavailableError: the frontend API is down, slow, failing or rate
                limiting (503 with ``Retry-After``; never a sign-out).
        """
        if not transport:
            return None  # nothing to exchange: anonymous, without asking anyone
        key = self._key(transport, dev)
        plan = self._plan(key)
        if plan.flight is None:
            return self._answer(plan)
        if plan.own:
            self._run(key, plan.flight, transport, dev, client_ip)
        else:
            plan.flight.wait()
        return self._outcome(plan.flight)

    async def aexchange(
        self, transport: str, *, dev: bool = False, client_ip: str | None = None
    ) -> Exchanged | None:
        """:meth:`exchange` for asyncio: the GET runs in a worker thread, never on the loop."""
        if not transport:
            return None
        key = self._key(transport, dev)
        plan = self._plan(key)
        if plan.flight is None:
            return self._answer(plan)
        if plan.own:
            # A daemon thread of its own, not the loop's executor (as KeySet does): the
            # exchange must finish and wake every waiter, on every loop, even if this task is
            # cancelled or the executor is busy with the app's own blocking work.
            worker = threading.Thread(
                target=self._run,
                args=(key, plan.flight, transport, dev, client_ip),
                name="wacht-auth-session-exchange",
                daemon=True,
            )
            try:
                worker.start()
            except RuntimeError:
                self._finish(key, plan.flight, (1,))
        await plan.flight.await_()
        return self._outcome(plan.flight)

    def forget(self) -> None:
        """Drop every remembered exchange and failure (operators; tests)."""
        with self._lock:
            self._memos.clear()
            self._down_until = -math.inf

    # ---------------------------------------------------------------- internals

    @staticmethod
    def _key(transport: str, dev: bool) -> bytes:
        # A hash, so the cache never holds a credential: a memory dump or a debugger shows
        # digests. The mode is part of the key: one value may not stand for both.
        return hashlib.sha256((b"d:" if dev else b"p:") + transport.encode("utf-8")).digest()

    def _plan(self, key: bytes) -> _Plan:
        now = self.clock()
        with self._lock:
            memo = self._memos.get(key)
            if memo is not None:
                if now < memo.until:
                    return _Plan(memo=memo)
                del self._memos[key]
            if now < self._down_until:
                return _Plan(down=max(1, math.ceil(self._down_until - now)))
            flight = self._flights.get(key)
            if flight is not None and (flight.done or time.monotonic() > flight.until + 1):
                flight = None  # finished or stuck: a new one
            if flight is not None:
                return _Plan(flight=flight)
            flight = self._flights[key] = Flight[_Outcome](self._wait_for, (1,))
            return _Plan(flight=flight, own=True)

    def _answer(self, plan: _Plan) -> Exchanged | None:
        if plan.memo is not None:
            if plan.memo.retry_after:
                retry = max(1, math.ceil(plan.memo.until - self.clock()))
                raise SessionExchangeUnavailableError(
                    "the frontend API is rate limiting session exchanges", retry_after=retry
                )
            return plan.memo.result
        raise SessionExchangeUnavailableError(
            "the frontend API could not exchange the session recently", retry_after=plan.down
        )

    @staticmethod
    def _outcome(flight: Flight[_Outcome]) -> Exchanged | None:
        outcome = flight.result
        if not flight.done or isinstance(outcome, tuple):
            retry = outcome[0] if isinstance(outcome, tuple) else 1
            raise SessionExchangeUnavailableError(
                "the frontend API cannot exchange the session cookie now", retry_after=retry
            )
        return outcome

    def _run(
        self, key: bytes, flight: Flight[_Outcome], transport: str, dev: bool, client_ip: str | None
    ) -> None:
        """Perform the exchange of ``flight``, remember and publish its outcome. Never raises."""
        started = time.perf_counter()
        outcome: _Outcome = (1,)
        fields: dict[str, Any] = {"url": self.endpoint, "session": key.hex()[:12], "dev": dev}
        try:
            try:
                answer = http_get(
                    self._url(transport, dev),
                    timeout=self.timeout,
                    max_bytes=_MAX_BODY,
                    headers=self._headers(transport, dev, client_ip),
                )
            except FetchError as exc:
                # Only the outcome word: a detail could quote the URL, which holds a dev token.
                fields.update(outcome=exc.outcome)
                outcome = self._down(self.failure_memory)
            else:
                fields["status"] = answer.status
                outcome = self._interpret(key, answer, fields)
        except Exception as exc:  # a bug: still just an unavailable frontend API
            fields.update(outcome="error", error=type(exc).__name__)
            outcome = self._down(self.failure_memory)
        finally:
            self._finish(key, flight, outcome)
        fields["duration_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
        failed = isinstance(outcome, tuple)
        emit(
            self.on_event,
            "session_exchange",
            fields,
            level=logging.WARNING if failed else logging.INFO,
            message="session exchange at %(url)s (session %(session)s): %(outcome)s "
            "in %(duration_ms).1f ms",
        )

    def _finish(self, key: bytes, flight: Flight[_Outcome], outcome: _Outcome) -> None:
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.finish(outcome)

    def _url(self, transport: str, dev: bool) -> str:
        if not dev:
            return self.endpoint
        return f"{self.endpoint}?{DEV_SESSION_PARAM}={quote(transport, safe='')}"

    @staticmethod
    def _headers(transport: str, dev: bool, client_ip: str | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if not dev:
            headers["Cookie"] = f"{TRANSPORT_COOKIE}={_cookie_value(transport)}"
        address = _ip(client_ip) if client_ip else None
        if address is not None:  # only an address: a header value from a request never passes
            headers[FORWARDED_FOR_HEADER] = str(address)
        return headers

    def _interpret(self, key: bytes, answer: HTTPAnswer, fields: dict[str, Any]) -> _Outcome:
        status = answer.status
        now = self.clock()
        if 200 <= status < 300:
            exchanged = _parse(answer)
            if exchanged is None:
                # A 2xx we cannot read is a broken frontend API, not a sign-out: anonymous
                # would send the visitor to a sign-in page served by that same API (a loop).
                fields["outcome"] = "bad_answer"
                return self._down(self.failure_memory)
            fields["outcome"] = "ok"
            until = exchanged.expires_at - self.reuse_margin
            if until > now:
                self._remember(key, _Memo(exchanged, until))
            return exchanged
        if status == 429:
            # Wacht limits exchanges per IP and per session: one browser's limit, not an
            # outage, so it is remembered for this transport value only.
            retry = self._retry_after(answer, now)
            fields["outcome"] = "rate_limited"
            self._remember(key, _Memo(None, now + retry, retry_after=True))
            return (retry,)
        if 400 <= status < 500 and status != 408:
            # 401/403: the session is over (signed out, revoked, expired). A dead transport
            # value never comes back to life, so it is remembered a while.
            fields["outcome"] = "session_over"
            self._remember(key, _Memo(None, now + self.over_memory))
            return None
        # 5xx, 408, a redirect (never followed), 1xx: the frontend API is not answering.
        fields["outcome"] = "unavailable"
        return self._down(self._retry_after(answer, now))

    def _retry_after(self, answer: HTTPAnswer, now: float) -> int:
        """``Retry-After`` in seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP-date), else
        ``failure_memory``; between 1 and ``max_retry_after``."""
        value = (answer.header("Retry-After") or "").strip()
        seconds: float = self.failure_memory
        if value.isdigit():
            seconds = int(value)
        elif value:
            try:
                when = email.utils.parsedate_to_datetime(value)
                seconds = when.timestamp() - now
            except (TypeError, ValueError, IndexError, OverflowError):
                pass
        return max(1, min(math.ceil(seconds), math.ceil(self.max_retry_after)))

    def _down(self, seconds: float) -> tuple[int]:
        retry = max(1, min(math.ceil(seconds), math.ceil(self.max_retry_after)))
        with self._lock:
            self._down_until = max(self._down_until, self.clock() + retry)
        return (retry,)

    def _remember(self, key: bytes, memo: _Memo) -> None:
        now = self.clock()
        with self._lock:
            memos = self._memos
            memos.pop(key, None)
            if len(memos) >= self.max_entries:
                for old in [k for k, m in memos.items() if m.until <= now]:
                    del memos[old]
                while len(memos) >= self.max_entries:
                    memos.popitem(last=False)  # the oldest entry
            memos[key] = memo


def _parse(answer: HTTPAnswer) -> Exchanged | None:
    """``{"data": {"token": "<jwt>", "expires": <unix ms>}}`` into :class:`Exchanged`."""
    try:
        body = json.loads(answer.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return None
    token, expires = data.get("token"), data.get("expires")
    if not isinstance(token, str) or not token or any(c.isspace() for c in token):
        return None
    if isinstance(expires, bool) or not isinstance(expires, (int, float)):
        return None
    if not math.isfinite(expires):
        return None
    dev = (answer.header(DEV_SESSION_HEADER) or "").strip() or None
    return Exchanged(
        token=token,
        expires_at=expires / 1000.0,
        set_cookies=answer.header_all("Set-Cookie"),
        dev_session=dev,
    )
