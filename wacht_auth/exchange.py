"""The session exchange: a browser's transport cookie traded for a session token.

:class:`SessionExchange` trades the long-lived transport cookie (``__session``, or the
development session) for a short-lived session token at ``GET {frontend}/session/token``,
one upstream request per transport value however many threads and tasks ask at once, the
answer reused until the token expires, failures remembered for a short time. The exchanged
token is *not* verified here: the request layer verifies it like any other token (the frontend
API is trusted for the channel only).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

from ._events import emit
from ._flight import Flight
from ._http import FetchError, HTTPAnswer, http_get
from .config import EventHandler, is_loopback_host
from .errors import ConfigurationError, SessionExchangeUnavailableError
from .proxies import _ip

__all__ = [
    "DEFAULT_EXCHANGE_TIMEOUT",
    "DEV_SESSION_HEADER",
    "DEV_SESSION_PARAM",
    "EXCHANGE_PATH",
    "FORWARDED_FOR_HEADER",
    "SIGN_OUT_PATH",
    "TRANSPORT_COOKIE",
    "Exchanged",
    "SessionExchange",
]

#: The query parameter that carries a development session (to the app and to the exchange).
DEV_SESSION_PARAM = "__dev_session__"
#: The production transport cookie, set by the frontend API on its own host; read only.
TRANSPORT_COOKIE = "__session"
#: The answer header of the exchange that carries a renewed development session.
DEV_SESSION_HEADER = "x-development-session"
#: The request header that tells the frontend API whose IP its per-IP limits apply to.
FORWARDED_FOR_HEADER = "X-Wacht-Forwarded-For"
#: Where the frontend API exchanges a transport token for a session token.
EXCHANGE_PATH = "/session/token"
#: Where the frontend API ends the session of a transport token (``POST``), as Wacht's browser
#: SDK signs out.
SIGN_OUT_PATH = "/session/sign-out"
#: Seconds one exchange may take, all included (``exchange_timeout``).
DEFAULT_EXCHANGE_TIMEOUT = 5.0

# The body of an exchange answer is a small JSON object; anything larger is not Wacht's.
_MAX_BODY = 64 * 1024
# Wacht's SDKs write cookie values with encodeURIComponent; these are the characters it keeps.
_URI_COMPONENT_SAFE = "-_.!~*'()"
# Seconds a waiter gives an exchange beyond its deadline (parsing and publishing the answer).
_GRACE = 0.5


def cookie_value(value: str) -> str:
    """A cookie value as Wacht's SDKs write it (``encodeURIComponent``)."""
    return quote(value, safe=_URI_COMPONENT_SAFE)


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
    busy: bool = False  # max_concurrent exchanges are running already


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
    * **A bound**: at most ``max_concurrent`` exchanges run at once (threads and tasks
      together); a request for one more is answered at once with 503
      ``session_exchange_unavailable`` (``Retry-After: 1``), never queued behind a slow
      frontend API: no pile of threads, whatever a flood of distinct cookies asks.
    * **One deadline**: ``timeout`` bounds the whole GET (lookup, connect, TLS, headers,
      body); an async caller runs it in a worker thread and never blocks its event loop.

    Args:
        frontend_api_url: the frontend API origin (https; http for loopback only).
        timeout: ``exchange_timeout``, seconds for one whole exchange.
        max_concurrent: exchanges running at once, at most.
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
        max_concurrent: int = 16,
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
        if max_concurrent < 1:
            raise ConfigurationError("max_concurrent must allow at least one exchange")
        self.max_concurrent = max_concurrent
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

    def sign_out(
        self, transport: str, *, dev: bool = False, client_ip: str | None = None
    ) -> tuple[str, ...]:
        """End the session of ``transport`` at the frontend API (``POST /session/sign-out``,
        the transport sent as :meth:`exchange` sends it) and forget its exchange: a token
        exchanged for it is never reused. Best effort: returns the frontend API's
        ``Set-Cookie`` values to pass on, ``()`` when it could not be reached (the app's own
        cookies go anyway). Never raises."""
        key = self._key(transport, dev)
        self._remember(key, _Memo(None, self.clock() + self.over_memory))
        fields: dict[str, Any] = {"url": self.frontend_api_url + SIGN_OUT_PATH, "dev": dev}
        try:
            answer = http_get(
                self._url(transport, dev, SIGN_OUT_PATH),
                timeout=self.timeout,
                max_bytes=_MAX_BODY,
                headers=self._headers(transport, dev, client_ip),
                method="POST",
            )
        except FetchError as exc:
            fields["outcome"] = exc.outcome
            cookies: tuple[str, ...] = ()
        else:
            fields["outcome"], fields["status"] = "answered", answer.status
            cookies = answer.header_all("Set-Cookie") if answer.status < 400 else ()
        emit(self.on_event, "session_sign_out", fields, level=logging.INFO,
             message="session sign-out at %(url)s: %(outcome)s")  # fmt: skip
        return cookies

    async def asign_out(
        self, transport: str, *, dev: bool = False, client_ip: str | None = None
    ) -> tuple[str, ...]:
        """:meth:`sign_out` for asyncio: the POST runs in a worker thread."""
        return await asyncio.to_thread(self.sign_out, transport, dev=dev, client_ip=client_ip)

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
            # Every running exchange has its flight here until _finish (always called), so
            # the count is the bound's semaphore, taken and released under the same lock.
            if len(self._flights) >= self.max_concurrent:
                return _Plan(busy=True)
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
        if plan.busy:
            raise SessionExchangeUnavailableError(
                "too many session exchanges are running; try again", retry_after=1
            )
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

    def _url(self, transport: str, dev: bool, path: str = EXCHANGE_PATH) -> str:
        endpoint = self.frontend_api_url + path
        if not dev:
            return endpoint
        return f"{endpoint}?{DEV_SESSION_PARAM}={quote(transport, safe='')}"

    @staticmethod
    def _headers(transport: str, dev: bool, client_ip: str | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if not dev:
            headers["Cookie"] = f"{TRANSPORT_COOKIE}={cookie_value(transport)}"
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
