"""The shared, I/O-free core of the Backend API clients.

Everything that decides lives here and is the same for :class:`~wacht_auth.backend.BackendClient`
and :class:`~wacht_auth.backend.AsyncBackendClient`: settings and their validation, building a
request (URL, headers, body), decoding a response, turning a failure into the right exception,
and the retry decisions (what is retried, how long to wait, when to give up). The two clients
only own the send loop: ``httpx.Client.send`` + ``time.sleep`` or their ``await``-ed twins.
Request encoding (``_encode``), the retry policy (``_retry``) and paging (``_paging``) have
modules of their own.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit

import httpx

from .._events import emit
from ..config import DEFAULT_BACKEND_API_URL, Config, EventHandler, is_loopback_host
from ..errors import ConfigurationError, TokenMissingError
from ._encode import HEADER_VALUE, clean_params, file_part, form_value, multipart, to_json
from ._errors import (
    BackendAPIError,
    InvalidArgumentError,
    TransportError,
    error_from_response,
    parse_error_body,
)
from ._operation import Operation
from ._redact import Learned, record_hook, redact_text
from ._retry import (
    IDEMPOTENT_METHODS,
    RETRY_STATUSES,
    RetryPolicy,
    parse_retry_after,
    retry_after_from_message,
)

#: Header-safe opaque credentials (RFC 6750 §2.1 b64token, plus a few common extras).
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~+/=:-]+")


def _as_int(value: Any) -> int | None:
    """A path value copied into a body field typed integer: the integer a decimal string
    spells (Wacht's ids are decimal strings in paths), else ``None`` (the field is left out)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,20}", value.strip()):
        return int(value)
    return None


def _user_agent() -> str:
    try:
        version = metadata.version("wacht-auth")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    return f"wacht-auth/{version} python/{sys.version_info[0]}.{sys.version_info[1]}"


USER_AGENT = _user_agent()


def segment(value: object, what: str) -> str:
    """One path segment from an id, percent-encoded so it cannot change the path."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidArgumentError(f"{what} must be a string id, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise InvalidArgumentError(f"{what} must be a non-empty id")
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


@dataclass(frozen=True)
class Call:
    """One logical API call: what to send, and whether it may be sent more than once."""

    method: str
    path: str
    params: Mapping[str, Any]
    headers: Mapping[str, str] = field(repr=False)
    content: bytes | None = field(repr=False)
    retryable: bool
    max_attempts: int | None = None
    timeout: float | None = None
    unwrap: bool = True


#: The keyword arguments every operation method takes (``RequestOptions``).
OPTION_NAMES = frozenset({"timeout", "retries", "extra_headers", "idempotency_key"})
_PARAM = re.compile(r"\{([^{}]+)\}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2 token
_OWN_HEADERS = frozenset({"authorization", "x-deployment-id", "content-type", "content-length"})


@dataclass(frozen=True)
class Options:
    """Validated per-call options."""

    timeout: float | None = None
    max_attempts: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    idempotency_key: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> Options:
        """Check the per-call options; anything wrong is an :class:`InvalidArgumentError`."""
        unknown = set(options) - OPTION_NAMES
        if unknown:
            raise InvalidArgumentError(f"unknown keyword arguments: {', '.join(sorted(unknown))}")
        timeout = options.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout < math.inf
        ):
            raise InvalidArgumentError(f"timeout must be a positive number of seconds: {timeout!r}")
        retries = options.get("retries")
        if retries is not None and (
            isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 19
        ):
            raise InvalidArgumentError(f"retries must be an integer from 0 to 19: {retries!r}")
        headers: dict[str, str] = {}
        extra = options.get("extra_headers") or {}
        if not isinstance(extra, Mapping):
            raise InvalidArgumentError("extra_headers must be a mapping of header names to values")
        for name, value in extra.items():
            if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
                raise InvalidArgumentError(f"extra_headers: {name!r} is not a header name")
            if name.lower() in _OWN_HEADERS:
                raise InvalidArgumentError(f"extra_headers cannot set {name} (the client does)")
            if not isinstance(value, str) or not HEADER_VALUE.fullmatch(value):
                raise InvalidArgumentError(f"extra_headers: the value of {name} is not a header")
            headers[name] = value
        key = options.get("idempotency_key")
        if key is True:
            key = uuid.uuid4().hex
        elif key is False:
            key = None
        elif key is not None:
            if not isinstance(key, str) or not _TOKEN_CHARS.fullmatch(key):
                raise InvalidArgumentError("idempotency_key must be True or a header-safe string")
        return cls(
            timeout=None if timeout is None else float(timeout),
            max_attempts=None if retries is None else retries + 1,
            headers=headers,
            idempotency_key=key,
        )


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
    learned: Learned = field(default_factory=Learned, repr=False, compare=False)
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
            raise InvalidArgumentError(
                "as_user() takes a wacht_auth.Session or a session token string"
            )
        try:
            token = _check_token(token, "the session token")
        except ConfigurationError as exc:
            raise InvalidArgumentError(exc.message) from None
        return dataclasses.replace(
            self, token=token, acting_as_user=True, secrets=(*self.secrets, token)
        )

    # -- requests ------------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """``text`` without any credential this client knows, nor any piece of one."""
        return redact_text(text, (*self.secrets, *self.learned.values()))

    def _headers(self, options: Options) -> dict[str, str]:
        headers = {
            **options.headers,
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }
        if self.deployment_id is not None:
            headers["X-Deployment-ID"] = self.deployment_id
        if options.idempotency_key is not None:
            headers["Idempotency-Key"] = options.idempotency_key
        return headers

    def build(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        options: Mapping[str, Any] | None = None,
        unwrap: bool = True,
    ) -> Call:
        """Headers, URL and body for a :meth:`request` call; its ``{"data": …}`` is unwrapped."""
        if not isinstance(method, str) or not _HEADER_NAME.fullmatch(method):
            raise InvalidArgumentError(f"method must be an HTTP method, got {method!r}")
        if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
            # An absolute URL here would send the secret key to another host.
            raise InvalidArgumentError(
                f"path must be relative to the Backend API and start with /: {path!r}"
            )
        if any(c in path for c in "?#\r\n\0 "):
            raise InvalidArgumentError("path must not carry a query, fragment or spaces")
        opts = Options.parse(options or {})
        headers = self._headers(opts)
        content = None
        if json_body is not None:
            content = to_json(json_body)
            headers["Content-Type"] = "application/json"
        call = self._call(method.upper(), path, clean_params(params), headers, content, opts)
        return call if unwrap else dataclasses.replace(call, unwrap=False)

    def build_operation(
        self,
        op: Operation,
        *,
        path: Mapping[str, Any],
        query: Mapping[str, Any] | None,
        body: Any,
        files: Mapping[str, Any] | None,
        options: Mapping[str, Any],
    ) -> Call:
        """The call for one operation of the table, from the generated method's arguments.

        ``path``, ``query``, ``body`` and ``files`` map wire names (``op.path_params``,
        ``op.query``, ``op.body_fields``, ``op.files``) to values; ``body`` is the value itself
        for a body that is not an object. ``None`` leaves a parameter out, except a required
        body field (sent as null).
        """
        _expect(op, "path", path, op.path_params, exact=True)
        target = _PARAM.sub(lambda m: segment(path[m.group(1)], m.group(1)), op.path)
        params = dict(query or {})
        _expect(op, "query", params, op.query)
        opts = Options.parse(options)
        headers = self._headers(opts)
        content = None
        if op.body == "json_value":
            content = to_json(body)
            headers["Content-Type"] = "application/json"
        elif op.body is not None:
            given = dict(body or {})
            _expect(op, "body", given, op.body_fields)
            for name in op.path_in_body:  # the description repeats it in the body: same value
                if given.get(name) is None:
                    value = path[name]
                    given[name] = _as_int(value) if name in op.path_in_body_int else value
            fields = {
                name: value
                for name, value in given.items()
                if value is not None or name in op.required_body
            }
            if op.body == "multipart":
                form = {k: form_value(v) for k, v in fields.items() if v is not None}
                uploads = dict(files or {})
                _expect(op, "files", uploads, op.files)
                parts = {k: file_part(v, k) for k, v in uploads.items() if v is not None}
                content, headers["Content-Type"] = multipart(form, parts)
            else:
                content = to_json(fields)
                headers["Content-Type"] = "application/json"
        call = self._call(op.method, target, clean_params(params), headers, content, opts)
        return call if op.unwrap else dataclasses.replace(call, unwrap=False)

    def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        headers: dict[str, str],
        content: bytes | None,
        opts: Options,
    ) -> Call:
        retryable = method in IDEMPOTENT_METHODS or opts.idempotency_key is not None
        return Call(
            method,
            path,
            params,
            headers,
            content,
            retryable,
            max_attempts=opts.max_attempts,
            timeout=opts.timeout,
        )

    def to_httpx(self, call: Call, started: float) -> httpx.Request:
        """The request for one try; its timeout never reaches past the retry deadline."""
        remaining = self.retry.deadline - (self.clock() - started)
        timeout = max(0.001, min(call.timeout or self.timeout, remaining))
        extensions = {"timeout": httpx.Timeout(timeout).as_dict()}
        return httpx.Request(
            call.method,
            self.base_url + call.path,
            params=call.params,
            headers=call.headers,
            content=call.content,
            extensions=extensions,
        )

    # -- responses -----------------------------------------------------------------------------

    def decode(self, call: Call, response: httpx.Response, attempt: int, started: float) -> Any:
        """The decoded JSON body of a 2xx answer (``None`` when empty), its objects as
        :class:`Record` dicts, a ``{"data": …}`` envelope unwrapped when the call asks."""
        body = response.content
        request_id = response.headers.get("x-request-id")
        try:
            value = json.loads(body, object_pairs_hook=record_hook) if body.strip() else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            self._fail(
                call,
                started,
                BackendAPIError(
                    f"the Backend API answered HTTP {response.status_code} with a non-JSON body",
                    code="invalid_response",
                    status=response.status_code,
                    request_id=self.redact(request_id) if request_id else None,
                    attempts=attempt,
                    method=call.method,
                    path=call.path,
                ),
            )
        self._report(call, started, "ok", response.status_code, attempt, request_id)
        self.learned.learn(value)
        if call.unwrap and isinstance(value, dict) and len(value) == 1 and "data" in value:
            return value["data"]
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
        max_attempts = call.max_attempts or policy.max_attempts
        if attempt >= max_attempts:
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
                "max_attempts": max_attempts,
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


def _expect(
    op: Operation, what: str, given: Mapping[str, Any], names: Iterable[str], *, exact: bool = False
) -> None:
    """The generated method passes only (with ``exact``: every one of) ``op``'s names for
    ``what``; anything else is a mismatch between a method and the table."""
    known = set(names)
    if not set(given) <= known or (exact and set(given) != known):
        raise InvalidArgumentError(
            f"{op.name}() takes the {what} arguments {', '.join(sorted(known)) or 'none'}"
        )
