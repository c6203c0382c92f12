"""The fake frontend API: an :class:`~wacht_auth.testing.Issuer` that also exchanges sessions
and signs visitors in, for tests of server-rendered pages."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from ..config import is_loopback_host
from ._issuer import MAX_DELAY, Issuer
from ._server import _MAX_RECORDED, _Answer, _Handler, _send
from ._signing import SigningKey, _json, _permissions

#: Where a Wacht frontend API exchanges a transport token for a session token.
SESSION_TOKEN_PATH = "/session/token"
#: The fake accounts portal's sign-in page.
SIGN_IN_PATH = "/sign-in"
#: Where a Wacht frontend API ends a session (``POST``).
SIGN_OUT_PATH = "/session/sign-out"


@dataclass(frozen=True)
class ExchangeRequest:
    """A request :class:`FrontendAPI` received at :data:`SESSION_TOKEN_PATH`.

    Attributes:
        path: the request target as sent, query string included.
        headers: the request headers, names lowercased.
        dev: whether it carried ``?__dev_session__=`` (a development-session exchange).
    """

    path: str
    headers: Mapping[str, str]
    dev: bool


@dataclass(frozen=True)
class _SignedIn:
    user_id: str
    session_id: str
    claims: Mapping[str, Any]
    dev: bool


class FrontendAPI(Issuer):
    """An :class:`Issuer` that also plays the rest of a Wacht frontend API for pages tests.

    Besides :data:`JWKS_PATH` (and every key-server control of :class:`Issuer`), it serves:

    * ``GET /session/token``: exchanges a transport token it minted (:meth:`sign_in`,
      :meth:`transport_token` or :meth:`dev_session`), sent as ``Cookie: __session=…`` or as
      ``?__dev_session__=…`` (no cookie), for ``{"data": {"token": <a fresh session token of
      this issuer>, "expires": <unix ms>}}``; a development exchange also answers a renewed
      session in ``x-development-session``, and :meth:`set_exchange_cookies` adds
      ``Set-Cookie`` headers. An unknown or ended session gets 401.
    * ``POST /session/sign-out``: ends the session of the transport token sent as the
      exchange sends it (its exchanges answer 401 from then on) and clears ``__session``;
      :attr:`sign_out_count` counts these requests.
    * ``GET /sign-in?redirect_uri=…``: the accounts portal. It signs ``sign_in_user`` in,
      sets ``__session`` (host-only, ``Path=/; HttpOnly; Secure; SameSite=Lax``) and answers
      302 to ``redirect_uri``; with ``dev_sign_in`` it appends ``__dev_session__=<token>`` to
      ``redirect_uri`` instead of setting a cookie, as development instances do. It redirects
      to loopback URLs only (400 otherwise).

    Switches (next request on): :meth:`fail_exchange` (any status, e.g. 500, 503, 429 with
    ``Retry-After``), :meth:`hang_exchange` (answer after a delay, cut short by
    :meth:`stop`/:meth:`down`), :meth:`end_session`/:meth:`end_all_sessions` (401, the
    session is over), :meth:`restore_exchange`. Counters: :attr:`exchange_count`,
    :attr:`exchange_requests`, :attr:`sign_in_count`.

    Args:
        session_lifetime: seconds an exchanged session token lives (Wacht: about 35).
        sign_in_user: the user :meth:`sign_in` and the sign-in page sign in by default.
        dev_sign_in: whether the sign-in page hands out a development session in the URL.
        **kwargs: the arguments of :class:`Issuer`.
    """

    _methods = frozenset({"GET", "POST"})  # POST: the sign-out

    def __init__(
        self,
        *,
        session_lifetime: float = 35,
        sign_in_user: str = "user_1",
        dev_sign_in: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.session_lifetime: float = session_lifetime
        self.sign_in_user: str = sign_in_user
        self.dev_sign_in: bool = dev_sign_in
        self._sessions: dict[str, _SignedIn] = {}
        self._exchange_count = 0
        self._exchange_requests: list[ExchangeRequest] = []
        self._sign_in_count = 0
        self._sign_out_count = 0
        self._exchange_failure: _Answer | None = None
        self._exchange_delay = 0.0
        self._exchange_cookies: tuple[str, ...] = ()
        self._serial = 0

    # -- sessions ---------------------------------------------------------------------------

    def sign_in(
        self,
        user_id: str | None = None,
        *,
        session_id: str | None = None,
        organization_id: str | None = None,
        workspace_id: str | None = None,
        permissions: Iterable[str] | Mapping[str, Iterable[str] | None] | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """Sign ``user_id`` (default :attr:`sign_in_user`) in: the ``__session`` transport
        token a browser would now hold. The exchanged session tokens carry
        ``organization_id``, ``workspace_id`` and ``permissions`` as :meth:`token` mints them,
        then ``claims`` (merged last; ``None`` deletes a claim)."""
        if organization_id is not None or workspace_id is not None or permissions is not None:
            ids = {"organization": organization_id, "workspace": workspace_id}
            given: dict[str, Any] = {k: v for k, v in ids.items() if v is not None}
            if permissions is not None:
                given["permissions"] = _permissions(permissions)
            claims = {**given, **(claims or {})}
        return self._register(user_id, session_id, claims, dev=False)

    def dev_session(
        self,
        user_id: str | None = None,
        *,
        session_id: str | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """Sign ``user_id`` in on a development instance: the ``__dev_session__`` value."""
        return self._register(user_id, session_id, claims, dev=True)

    def transport_token(
        self,
        *,
        session_id: str = "sess_1",
        lifetime: float = 30 * 24 * 3600,
        claims: Mapping[str, Any] | None = None,
        alg: str | None = None,
        key: SigningKey | None = None,
        include_kid: bool | None = None,
    ) -> str:
        """:meth:`Issuer.transport_token`, also exchangeable here (for :attr:`sign_in_user`)."""
        token = super().transport_token(
            session_id=session_id,
            lifetime=lifetime,
            claims=claims,
            alg=alg,
            key=key,
            include_kid=include_kid,
        )
        with self._lock:
            self._sessions[token] = _SignedIn(self.sign_in_user, session_id, {}, dev=False)
        return token

    def end_session(self, transport: str) -> None:
        """End the session of ``transport``: its exchanges answer 401 from now on."""
        with self._lock:
            self._sessions.pop(transport, None)

    def end_all_sessions(self) -> None:
        """End every session (a sign-out everywhere): every exchange answers 401."""
        with self._lock:
            self._sessions.clear()

    def _register(
        self,
        user_id: str | None,
        session_id: str | None,
        claims: Mapping[str, Any] | None,
        *,
        dev: bool,
    ) -> str:
        with self._lock:
            self._serial += 1
            serial = self._serial
        session = session_id or f"sess_{serial}"
        if dev:
            token = f"dvb_{secrets.token_urlsafe(24)}"  # opaque, as development sessions are
        else:
            token = Issuer.transport_token(self, session_id=session)
        with self._lock:
            self._sessions[token] = _SignedIn(
                user_id or self.sign_in_user, session, dict(claims or {}), dev
            )
        return token

    # -- switches and counters ----------------------------------------------------------------

    def fail_exchange(
        self,
        status: int | None = 503,
        *,
        retry_after: int | str | None = None,
        body: bytes = b'{"errors":[{"message":"unavailable","code":"unavailable"}]}',
    ) -> None:
        """Answer every exchange with ``status`` (and ``Retry-After``); ``None`` restores."""
        answer = None
        if status is not None:
            extra = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
            answer = _Answer(status, body, "application/json", extra)
        with self._lock:
            self._exchange_failure = answer

    def hang_exchange(self, seconds: float) -> None:
        """Wait ``seconds`` (at most :data:`MAX_DELAY`) before answering each exchange; 0
        restores. :meth:`stop` and :meth:`down` cut a pending wait short."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._exchange_delay = min(float(seconds), MAX_DELAY)

    def set_exchange_cookies(self, *values: str) -> None:
        """``Set-Cookie`` values every successful exchange answers with (none by default)."""
        with self._lock:
            self._exchange_cookies = tuple(values)

    def restore_exchange(self) -> None:
        """Undo :meth:`fail_exchange`, :meth:`hang_exchange` and :meth:`set_exchange_cookies`."""
        with self._lock:
            self._exchange_failure = None
            self._exchange_delay = 0.0
            self._exchange_cookies = ()

    @property
    def exchange_count(self) -> int:
        """Requests to :data:`SESSION_TOKEN_PATH` received so far, whatever the answer."""
        with self._lock:
            return self._exchange_count

    @property
    def exchange_requests(self) -> tuple[ExchangeRequest, ...]:
        """The last (up to 1,000) requests counted in :attr:`exchange_count`, oldest first."""
        with self._lock:
            return tuple(self._exchange_requests)

    @property
    def sign_out_count(self) -> int:
        """Requests to :data:`SIGN_OUT_PATH` received so far."""
        with self._lock:
            return self._sign_out_count

    @property
    def sign_in_count(self) -> int:
        """Requests to the sign-in page received so far."""
        with self._lock:
            return self._sign_in_count

    def reset_exchange_count(self) -> None:
        """Set :attr:`exchange_count` and :attr:`sign_in_count` back to 0."""
        with self._lock:
            self._exchange_count = self._sign_in_count = 0
            self._exchange_requests.clear()

    @property
    def sign_in_url(self) -> str:
        """``{url}/sign-in``: where :func:`wacht_auth.auth.pages.sign_in_url` sends visitors of a
        loopback frontend API."""
        return self.url + SIGN_IN_PATH

    # -- serving ----------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        path = urlsplit(handler.path).path
        if handler.command == "POST" and path == SIGN_OUT_PATH:
            self._sign_out(handler)
        elif handler.command != "GET":
            super()._handle(handler)
        elif path == SESSION_TOKEN_PATH:
            self._exchange(handler)
        elif path == SIGN_IN_PATH:
            self._sign_in_page(handler)
        else:
            super()._handle(handler)

    def _exchange(self, handler: _Handler) -> None:
        query = dict(parse_qsl(urlsplit(handler.path).query, keep_blank_values=True))
        dev_token = query.get("__dev_session__")
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self._exchange_count += 1
            self._exchange_requests.append(
                ExchangeRequest(handler.path, headers, dev_token is not None)
            )
            del self._exchange_requests[:-_MAX_RECORDED]
            delay = self._exchange_delay
            failure = self._exchange_failure
            cookies = self._exchange_cookies
        if delay > 0:
            self._wake.wait(delay)
        if failure is not None:
            _send(handler, failure)
            return
        if dev_token is not None:
            transport: str | None = dev_token
        else:
            transport = _cookie_from_header(headers.get("cookie", ""), "__session")
        with self._lock:
            signed_in = self._sessions.get(transport) if transport else None
        if signed_in is None or signed_in.dev != (dev_token is not None):
            _send(
                handler,
                _Answer(
                    401,
                    b'{"errors":[{"message":"unauthorized","code":"unauthorized"}]}',
                    "application/json",
                ),
            )
            return
        token = self.token(
            signed_in.user_id,
            session_id=signed_in.session_id,
            lifetime=self.session_lifetime,
            claims=signed_in.claims,
        )
        expires = int((int(self.clock()) + self.session_lifetime) * 1000)
        extra = [("Set-Cookie", value) for value in cookies]
        if signed_in.dev:
            renewed = self.dev_session(
                signed_in.user_id, session_id=signed_in.session_id, claims=signed_in.claims
            )
            extra.append(("x-development-session", renewed))
        body = _json({"data": {"token": token, "expires": expires}})
        _send(handler, _Answer(200, body, "application/json", tuple(extra)))

    def _sign_out(self, handler: _Handler) -> None:
        query = dict(parse_qsl(urlsplit(handler.path).query, keep_blank_values=True))
        cookie = _cookie_from_header(handler.headers.get("cookie", ""), "__session")
        transport = query.get("__dev_session__") or cookie
        with self._lock:
            self._sign_out_count += 1
            if transport:
                self._sessions.pop(transport, None)
        cleared = "__session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        body = _json({"data": {}})
        _send(handler, _Answer(200, body, "application/json", (("Set-Cookie", cleared),)))

    def _sign_in_page(self, handler: _Handler) -> None:
        query = dict(parse_qsl(urlsplit(handler.path).query, keep_blank_values=True))
        target = query.get("redirect_uri", "")
        with self._lock:
            self._sign_in_count += 1
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not is_loopback_host(parts.hostname):
            # The fake portal never redirects off this machine (no open redirect, even here).
            _send(handler, _Answer(400, b"redirect_uri must be a loopback URL", "text/plain"))
            return
        if self.dev_sign_in:
            token = self.dev_session()
            joiner = "&" if parts.query else ""
            location = parts._replace(
                query=parts.query + joiner + urlencode({"__dev_session__": token})
            ).geturl()
            _send(handler, _Answer(302, b"", "text/plain", (("Location", location),)))
            return
        token = self.sign_in()
        cookie = f"__session={token}; Path=/; HttpOnly; Secure; SameSite=Lax"
        _send(
            handler,
            _Answer(302, b"", "text/plain", (("Location", target), ("Set-Cookie", cookie))),
        )

    def __repr__(self) -> str:
        where = self.url if self._port else "not started"
        return f"FrontendAPI({where}, keys={[k.alg for k in self.keys]})"


def _cookie_from_header(header: str, name: str) -> str | None:
    """The first cookie ``name`` of a ``Cookie`` header (RFC 6265 §4.2), percent-decoded."""
    for chunk in header.split(";"):
        key, _, value = chunk.partition("=")
        if key.strip() == name:
            return unquote(value.strip().strip('"'))
    return None
