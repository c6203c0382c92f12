"""How the request layer reads a request: the view an adapter implements, where a token comes
from, the request's own origin and the one CSRF rule.

Each adapter implements :class:`RequestView` over its framework's request; everything that
interprets what the view returns (the ``Authorization`` scheme, cookies, the Host rule, which
origins may send a cookie on an unsafe request) is here, once, for every framework. As in
Django's ``middleware/csrf.py``, the origin rule lives in one place with its reasons.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import NamedTuple, Protocol
from urllib.parse import urlsplit

from ..errors import CsrfFailedError
from ..proxies import authority

__all__ = [
    "SAFE_METHODS",
    "RequestView",
    "TokenSource",
    "bearer_token",
    "check_csrf",
    "cookie_reader",
    "is_preflight",
    "origin",
    "origin_of",
]

#: Methods that must not change state (RFC 9110 §9.2.1); cookies are trusted on these alone.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

# RFC 6750 §2.1: the scheme is case-insensitive (RFC 9110 §11.1); one or more spaces follow.
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +(.*)\Z", re.DOTALL)
_WEB_SCHEMES = {"ws": "http", "wss": "https"}


class RequestView(Protocol):
    """What the request layer reads of a request; each adapter implements it over its own.

    ``method`` is the HTTP method in upper case; a websocket handshake reports
    ``"WEBSOCKET"``: browsers send it cross-site with cookies, so for the CSRF rule it is an
    unsafe request (cross-site websocket hijacking). ``path`` is the path the app routes on;
    ``scheme`` the scheme the server received the request with (``http``, ``https``, ``ws``,
    ``wss``).
    """

    @property
    def method(self) -> str:
        """The request method, upper case (``"WEBSOCKET"`` for a websocket handshake)."""
        ...

    @property
    def path(self) -> str:
        """The path the app routes on."""
        ...

    @property
    def scheme(self) -> str:
        """The scheme the request reached the server with."""
        ...

    def header(self, name: str) -> str | None:
        """The header ``name`` (given in lower case) as one field value: every line of a
        repeated header joined with ``", "`` in order (RFC 9110 §5.3), or None."""
        ...

    def cookie(self, name: str) -> str | None:
        """The value of the cookie ``name``, or None."""
        ...

    def host(self) -> str | None:
        """The ``Host`` the framework accepted for this request (None when it refused it)."""
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


def origin(request: RequestView) -> str | None:
    """The app's own origin as this request reached it (``scheme://host[:port]``), or None
    when its Host is not a host and an optional port (the one Host rule, for every adapter:
    ``evil.example/@app`` is no host)."""
    host = request.host()
    scheme = request.scheme.lower()
    scheme = _WEB_SCHEMES.get(scheme, scheme)
    where = authority(host, scheme) if host else None
    return f"{scheme}://{where}" if where else None


def check_csrf(request: RequestView, trusted: Collection[str]) -> None:
    """Refuse a cookie-borne credential on an unsafe method from a foreign sender.

    Browsers attach cookies to cross-site requests; the ``Authorization`` header they
    never add on their own, so bearer tokens are exempt (the caller checks this only for
    cookies). When ``Origin`` is present it alone decides, and the opaque origin ``null`` is
    foreign (RFC 6454 §7.3: sandboxed frames, redirects across origins); ``Referer`` counts
    only when ``Origin`` is absent. A request with neither is refused. ``trusted`` are the
    origins allowed besides the app's own (``authorized_parties``).

    Raises:
        CsrfFailedError: the sender is foreign or unknown.
    """
    if request.method in SAFE_METHODS:
        return
    sent = request.header("origin")
    sender = origin_of(sent) if sent is not None else origin_of(request.header("referer"))
    if sender is None or (sender not in trusted and sender != origin(request)):
        raise CsrfFailedError(
            "a session cookie was sent on an unsafe request from a foreign or unknown "
            "origin; send the token in the Authorization header or add the origin to "
            "authorized_parties"
        )


def is_preflight(request: RequestView) -> bool:
    """Whether the request is a CORS preflight: ``OPTIONS`` with
    ``Access-Control-Request-Method`` (Fetch standard, "CORS-preflight request"). Browsers
    never send credentials on it, so refusing it would break CORS; a plain ``OPTIONS`` is an
    ordinary request and needs a caller like any other."""
    return request.method == "OPTIONS" and (
        request.header("access-control-request-method") is not None
    )
