"""Signing a browser out of a server-rendered app, as Wacht's own SDKs do.

Wacht's browser SDK signs out with ``POST {frontend}/session/sign-out``, the session's
transport token riding along; the frontend API ends the session and clears ``__session``. A
server-rendered app does the same from the server (the browser's ``__session`` reaches it, as
the handshake reads it), passes the frontend API's ``Set-Cookie`` on, deletes the cookies the
handshake set (``__auth_<scope>`` and the development-session pair) and sends the browser on
with a 303. Each adapter's ``sign_out`` helper is this, translated (docs/pages.md, "Signing
out"). Best effort upstream: a frontend API that cannot be reached never keeps the app's own
cookies alive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from ..errors import CsrfFailedError, WachtAuthError
from ..proxies import client_ip
from .pages import (
    PRIVATE,
    Transport,
    dev_session_cookie_name,
    dev_session_updated_at_cookie_name,
    expired_session_cookie,
    transport_from_cookies,
)
from .view import check_csrf

if TYPE_CHECKING:
    from .decide import Authenticator
    from .view import RequestView

__all__ = ["SignedOut", "asign_out", "sign_out"]


class SignedOut(NamedTuple):
    """The answer of a sign-out: a redirect (``status``, ``location``) with ``headers`` (the
    deleted cookies, the frontend API's ``Set-Cookie``, ``Vary``/``Cache-Control``)."""

    location: str
    headers: tuple[tuple[str, str], ...]
    status: int = 303  # See Other: the browser follows a POST's answer with a GET


def _plan(layer: Authenticator, request: RequestView, next: str) -> Transport | None:
    """Check the request and ``next``; the transport token to end upstream, if any."""
    target = urlsplit(next)
    # Browsers drop tabs and newlines from a URL ("/\t/evil" is "//evil") and urlsplit drops
    # them before parsing; in a Location header CR/LF would start a header of its own.
    if any(c <= " " or c == "\x7f" for c in next):
        raise ValueError(f"next must not hold spaces or control characters, got {next!r}")
    if not (next.startswith("/") and not next.startswith("//") and "\\" not in next) and not (
        target.scheme in ("http", "https") and target.hostname
    ):
        raise ValueError(f"next must be a path or an absolute http(s) URL, got {next!r}")
    # A sign-out changes state: POST only, from the app's own pages (logout CSRF).
    if request.method != "POST":
        raise CsrfFailedError("sign out with a POST from the app's own pages")
    check_csrf(request, layer._trusted)
    exchange = layer.handshake.exchange
    if exchange is None:
        return None
    return transport_from_cookies(request.cookie, exchange.frontend_api_url)


def _answer(layer: Authenticator, next: str, upstream: tuple[str, ...]) -> SignedOut:
    config = layer.verifier.config
    gone = [expired_session_cookie(layer.handshake.cookie_name)]
    if config.frontend_api_url:
        attributes = "Path=/; Max-Age=0; Secure; SameSite=Lax"
        gone += [
            f"{dev_session_cookie_name(config.frontend_api_url)}=; {attributes}",
            f"{dev_session_updated_at_cookie_name(config.frontend_api_url)}=; {attributes}",
        ]
    cookies = (("Set-Cookie", value) for value in (*upstream, *gone))
    return SignedOut(next, (*PRIVATE, *cookies))


def _ours(layer: Authenticator, transport: Transport) -> bool:
    """Whether a production transport token is a live one of this deployment (checked
    locally, as before an exchange); a development session is opaque."""
    if transport.dev:
        return True
    try:
        claims = layer.verifier.verify_transport(transport.value)
    except WachtAuthError:  # junk, another deployment's, or no keys: nothing to end upstream
        return False
    return claims.get("iss") == layer.verifier.config.issuer


def _ip(layer: Authenticator, request: RequestView) -> str | None:
    forwarded = request.header("x-forwarded-for")
    return client_ip(request.client_ip(), forwarded, layer.trusted_proxies)


def sign_out(layer: Authenticator, request: RequestView, next: str = "/") -> SignedOut:
    """Sign the browser of ``request`` out: end its Wacht session at the frontend API, delete
    our cookies, redirect to ``next`` (a path, or an absolute URL such as the sign-in page).

    Raises:
        CsrfFailedError: not a POST from the app's own origin (or ``authorized_parties``).
        ValueError: ``next`` is neither a path nor an absolute http(s) URL.
    """
    transport = _plan(layer, request, next)
    upstream: tuple[str, ...] = ()
    exchange = layer.handshake.exchange
    if transport is not None and exchange is not None and _ours(layer, transport):
        ip = _ip(layer, request)
        upstream = exchange.sign_out(transport.value, dev=transport.dev, client_ip=ip)
    return _answer(layer, next, upstream)


async def asign_out(layer: Authenticator, request: RequestView, next: str = "/") -> SignedOut:
    """:func:`sign_out` for asyncio (the frontend API is called from a worker thread)."""
    transport = _plan(layer, request, next)
    upstream: tuple[str, ...] = ()
    exchange = layer.handshake.exchange
    if transport is not None and exchange is not None:
        ours = transport.dev
        if not ours:
            try:
                claims = await layer.verifier.averify_transport(transport.value)
                ours = claims.get("iss") == layer.verifier.config.issuer
            except WachtAuthError:
                ours = False
        if ours:
            ip = _ip(layer, request)
            upstream = await exchange.asign_out(transport.value, dev=transport.dev, client_ip=ip)
    return _answer(layer, next, upstream)
