"""The shared, I/O-free core of the Backend API clients.

Everything that decides lives here and is the same for :class:`~wacht_auth.backend.BackendClient`
and :class:`~wacht_auth.backend.AsyncBackendClient`: settings and their validation, building a
request (URL, headers, body), decoding a response, turning a failure into the right exception,
and the retry policy (what is retried, how long to wait, when to give up). The two clients only
own the send loop: ``httpx.Client.send`` + ``time.sleep`` or their ``await``-ed twins.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from importlib import metadata
from typing import Any, Generic, NoReturn, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from .._events import emit
from ..config import DEFAULT_BACKEND_API_URL, Config, EventHandler, is_loopback_host
from ..errors import ConfigurationError, TokenMissingError
from ._errors import BackendAPIError, TransportError, error_from_response, parse_error_body
from ._models import Page

R = TypeVar("R")

#: RFC 9110 §9.2.2: methods whose repetition has the same effect as one request.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Statuses worth another try: rate limited, or a gateway/upstream that may recover.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Wacht's 429 without a header says "Retry after N seconds" in the message (DESIGN.md §2).
_RETRY_AFTER_TEXT = re.compile(r"retry\s+after\s+(\d+(?:\.\d+)?)", re.IGNORECASE)
#: Header-safe opaque credentials (RFC 6750 §2.1 b64token, plus a few common extras).
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~+/=:-]+")
_REDACTED = "[redacted]"


def _user_agent() -> str:
    try:
        version = metadata.version("wacht-auth")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    return f"wacht-auth/{version} python/{sys.version_info[0]}.{sys.version_info[1]}"


USER_AGENT = _user_agent()


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """When and how the clients retry a failed call.

    429, 502, 503 and 504 answers and transport failures (connection refused or reset,
    timeouts) are retried for idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE), and for
    POST/PATCH only when an idempotency key is sent. The wait is the server's ``Retry-After``
    (seconds or an HTTP date) or the "Retry after N seconds" of a 429 message; otherwise
    exponential backoff with full jitter: ``uniform(0, min(backoff_max, backoff_base * 2**n))``.

    Attributes:
        max_attempts: total tries per call, the first included (1 turns retries off).
        deadline: seconds from the first try after which no new try starts.
        backoff_base: the first backoff ceiling, seconds.
        backoff_max: the largest backoff ceiling, seconds.
        max_retry_after: the longest server-requested wait honoured; a longer one gives up at
            once (the error carries ``retry_after`` so the caller can schedule a later try).
        random: returns a float in [0, 1); injectable for deterministic tests.
    """

    max_attempts: int = 3
    deadline: float = 30.0
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ConfigurationError("max_attempts must be an integer >= 1")
        if not 1 <= self.max_attempts <= 20:
            raise ConfigurationError("max_attempts must be between 1 and 20")
        for name in ("deadline", "backoff_base", "backoff_max", "max_retry_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ConfigurationError(f"{name} must be a number >= 0, got {value!r}")
            if math.isinf(value) and name != "max_retry_after":
                raise ConfigurationError(f"{name} must be finite")
        if not self.deadline > 0:
            raise ConfigurationError("deadline must be more than 0 seconds")

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff after try number ``attempt`` (1-based)."""
        ceiling = min(self.backoff_max, math.ldexp(self.backoff_base, min(attempt - 1, 30)))
        return float(self.random()) * ceiling


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP date (RFC 9110
    §10.2.3). ``now`` is POSIX seconds; a date in the past means "now" (0)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        return max(0.0, when.timestamp() - now)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def retry_after_from_message(message: str | None) -> float | None:
    """The N of "Retry after N seconds" in a 429 message, when the header is missing."""
    match = _RETRY_AFTER_TEXT.search(message or "")
    return float(match.group(1)) if match else None


def segment(value: str | int, what: str) -> str:
    """One path segment from an id, percent-encoded so it cannot change the path."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"{what} must be a string id, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise ValueError(f"{what} must be a non-empty id")
    return quote(text, safe="")


def _check_token(value: object, what: str) -> str:
    """A credential must be header-safe; the message never repeats the value."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{what} must be a non-empty string")
    if not _TOKEN_CHARS.fullmatch(value):
        raise ConfigurationError(f"{what} contains spaces or characters not allowed in a header")
    return value


def _check_base_url(url: object) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError("base_url must be the Backend API URL, e.g. https://api.wacht.dev")
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url  # local development and tests only: the secret key travels in clear
    raise ConfigurationError(
        f"base_url (WACHT_BACKEND_API_URL) must be an https:// URL (plain http only for "
        f"loopback hosts), got {url!r}"
    )


def _clean_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Drop ``None`` values; booleans as ``true``/``false`` (httpx would send ``True``)."""
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


@dataclass(frozen=True)
class Call:
    """One logical API call: what to send, and whether it may be sent more than once."""

    method: str
    path: str
    params: Mapping[str, Any]
    headers: Mapping[str, str] = field(repr=False)
    content: bytes | None = field(repr=False)
    retryable: bool


@dataclass(frozen=True)
class Op(Generic[R]):
    """A typed endpoint: the request to make and how to read its answer."""

    method: str
    path: str
    parse: Callable[[Any], R]
    params: Mapping[str, Any] | None = None
    json: Any = None
    idempotency_key: str | None = None


@dataclass(frozen=True, kw_only=True)
class Core:
    """Validated settings plus every decision the clients make (no I/O).

    ``token`` is the credential sent as ``Authorization: Bearer``: the secret key, or a user's
    session JWT for a client returned by ``as_user()``. It never appears in a ``repr``.
    """

    base_url: str
    token: str = field(repr=False)
    acting_as_user: bool = False
    deployment_id: str | None = None
    timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    user_agent: str = USER_AGENT
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    wall_clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    secrets: tuple[str, ...] = field(default=(), repr=False, compare=False)
    on_event: EventHandler | None = field(default=None, repr=False, compare=False)

    @classmethod
    def create(
        cls,
        config: Config | None,
        *,
        secret_key: str | None,
        base_url: str | None,
        deployment_id: str | None,
        timeout: float | None,
        retry: RetryPolicy | None,
        clock: Callable[[], float] | None,
        on_event: EventHandler | None = None,
    ) -> Core:
        """Merge explicit arguments over ``config`` over defaults, and validate once."""
        if secret_key is None and config is not None:
            secret_key = config.secret_key
        if secret_key is None:
            raise ConfigurationError(
                "no Backend API secret key: pass secret_key=, set Config.secret_key, or set the "
                "environment variable WACHT_SECRET_KEY (or WACHT_API_KEY)"
            )
        token = _check_token(secret_key, "secret_key (WACHT_SECRET_KEY)")
        if base_url is None:
            base_url = config.backend_api_url if config is not None else DEFAULT_BACKEND_API_URL
        if deployment_id is None and config is not None:
            deployment_id = config.deployment_id
        if deployment_id is not None:
            deployment_id = _check_token(str(deployment_id), "deployment_id (WACHT_DEPLOYMENT_ID)")
        if timeout is None:
            timeout = config.backend_timeout if config is not None else 10.0
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds: {timeout!r}")
        return cls(
            base_url=_check_base_url(base_url),
            token=token,
            deployment_id=deployment_id,
            timeout=float(timeout),
            retry=retry if retry is not None else RetryPolicy(),
            clock=clock if clock is not None else time.monotonic,
            secrets=(token,),
            on_event=on_event if on_event is not None or config is None else config.on_event,
        )

    def for_user(self, session_or_token: object) -> Core:
        """The same settings, authenticating with the user's session JWT instead of the key."""
        token = getattr(session_or_token, "token", session_or_token)
        if token is None or token == "":
            raise TokenMissingError("as_user() needs a signed-in session or a session token")
        if not isinstance(token, str):
            raise TypeError("as_user() takes a wacht_auth.Session or a session token string")
        try:
            token = _check_token(token, "the session token")
        except ConfigurationError as exc:
            raise ValueError(exc.message) from None
        return dataclasses.replace(
            self, token=token, acting_as_user=True, secrets=(*self.secrets, token)
        )

    # -- requests ------------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """``text`` with every credential this client knows replaced by ``[redacted]``."""
        for secret in self.secrets:
            if secret and secret in text:
                text = text.replace(secret, _REDACTED)
        return text

    def build(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotency_key: str | None = None,
    ) -> Call:
        """Headers, URL and body for one call, and whether the retry policy may repeat it."""
        method = method.upper()
        if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
            # An absolute URL here would send the secret key to another host.
            raise ValueError(f"path must be relative to the Backend API and start with /: {path!r}")
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }
        if self.deployment_id is not None:
            headers["X-Deployment-ID"] = self.deployment_id
        content: bytes | None = None
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = _check_token(idempotency_key, "idempotency_key")
        retryable = method in IDEMPOTENT_METHODS or idempotency_key is not None
        return Call(method, path, _clean_params(params), headers, content, retryable)

    def to_httpx(self, call: Call, started: float) -> httpx.Request:
        """The request for one try; its timeout never reaches past the retry deadline."""
        remaining = self.retry.deadline - (self.clock() - started)
        timeout = max(0.001, min(self.timeout, remaining))
        return httpx.Request(
            call.method,
            self.base_url + call.path,
            params=call.params,
            headers=call.headers,
            content=call.content,
            extensions={"timeout": httpx.Timeout(timeout).as_dict()},
        )

    # -- responses -----------------------------------------------------------------------------

    def decode(self, call: Call, response: httpx.Response, attempt: int, started: float) -> Any:
        """The decoded JSON body of a 2xx answer (``None`` when empty)."""
        body = response.content
        request_id = response.headers.get("x-request-id")
        try:
            value = json.loads(body) if body.strip() else None
        except (ValueError, UnicodeDecodeError):
            self._fail(
                call,
                started,
                BackendAPIError(
                    f"the Backend API answered HTTP {response.status_code} with a non-JSON body",
                    code="invalid_response",
                    status=response.status_code,
                    request_id=request_id,
                    attempts=attempt,
                    method=call.method,
                    path=call.path,
                ),
            )
        self._report(call, started, "ok", response.status_code, attempt, request_id)
        return value

    def after_response(
        self, call: Call, response: httpx.Response, attempt: int, started: float
    ) -> float:
        """Seconds to wait before the next try, or raise the error for this answer."""
        headers = response.headers
        body = response.content
        status = response.status_code
        hint = parse_retry_after(headers.get("retry-after"), now=self.wall_clock())
        if hint is None and status == 429:
            hint = retry_after_from_message(parse_error_body(body)[1])
        error = error_from_response(
            status,
            headers,
            body,
            method=call.method,
            path=call.path,
            attempts=attempt,
            redact=self.redact,
            retry_after=hint,
        )
        if not call.retryable or status not in RETRY_STATUSES:
            self._fail(call, started, error)
        return self._next_delay(call, error, attempt, started, hint, f"http_{status}")

    def after_exception(
        self, call: Call, exc: httpx.RequestError, attempt: int, started: float
    ) -> float:
        """Seconds to wait before the next try, or raise :class:`TransportError`."""
        timed_out = isinstance(exc, httpx.TimeoutException)
        detail = self.redact(str(exc)) or type(exc).__name__
        error = TransportError(
            f"the request to the Backend API {'timed out' if timed_out else 'failed'}: {detail}",
            code="timeout" if timed_out else "connection_error",
            attempts=attempt,
            method=call.method,
            path=call.path,
        )
        error.__cause__ = exc
        if not call.retryable or not isinstance(exc, httpx.TransportError):
            self._fail(call, started, error)
        return self._next_delay(call, error, attempt, started, None, error.code)

    def _next_delay(
        self,
        call: Call,
        error: BackendAPIError,
        attempt: int,
        started: float,
        hint: float | None,
        reason: str,
    ) -> float:
        policy = self.retry
        if attempt >= policy.max_attempts:
            self._fail(call, started, error)
        if hint is not None and hint > policy.max_retry_after:
            error.message += f"; the server asked to wait {hint:g}s, more than max_retry_after"
            self._fail(call, started, error)
        delay = hint if hint is not None else policy.backoff(attempt)
        if self.clock() - started + delay >= policy.deadline:
            error.message += f"; gave up: the retry deadline of {policy.deadline:g}s would pass"
            self._fail(call, started, error)
        emit(
            self.on_event,
            "backend_retry",
            {
                "method": call.method,
                "path": call.path,
                "reason": reason,
                "delay": delay,
                "attempt": attempt,
                "max_attempts": policy.max_attempts,
            },
            message="Backend API %(method)s %(path)s: %(reason)s, retrying in %(delay).2fs "
            "(attempt %(attempt)d of %(max_attempts)d)",
        )
        return delay

    def _fail(self, call: Call, started: float, error: BackendAPIError) -> NoReturn:
        self._report(call, started, error.code, error.status, error.attempts, error.request_id)
        raise error

    def _report(
        self,
        call: Call,
        started: float,
        outcome: str,
        status: int | None,
        attempts: int,
        request_id: str | None,
    ) -> None:
        emit(
            self.on_event,
            "backend_request",
            {
                "method": call.method,
                "path": call.path,
                "outcome": outcome,
                "status": status,
                "attempts": attempts,
                "duration_ms": round((self.clock() - started) * 1000, 3),
                "request_id": request_id,
                "as_user": self.acting_as_user,
            },
            level=logging.DEBUG if outcome == "ok" else logging.INFO,
            message="Backend API %(method)s %(path)s: %(outcome)s (status %(status)s, "
            "%(attempts)d attempt(s), %(duration_ms).0f ms)",
        )


def next_page_params(params: Mapping[str, Any], page: Page[Any]) -> dict[str, Any] | None:
    """The query for the page after ``page``, or ``None`` when it was the last one.

    A ``next_cursor`` wins; otherwise offsets advance by the items received. Without
    ``has_more`` the page is the last when it is short or ``total`` is reached. An empty page
    always ends the walk, so a server that keeps saying ``has_more`` cannot loop us forever.
    """
    if not page.data or page.has_more is False:
        return None
    if page.next_cursor is not None:
        if params.get("cursor") == page.next_cursor:
            return None
        return {**{k: v for k, v in params.items() if k != "offset"}, "cursor": page.next_cursor}
    offset = page.offset if page.offset is not None else int(params.get("offset") or 0)
    following = offset + len(page.data)
    if page.total is not None and following >= page.total:
        return None
    if page.has_more is None:
        limit = page.limit if page.limit is not None else params.get("limit")
        if not isinstance(limit, int) or len(page.data) < limit:
            return None
    return {**params, "offset": following}
