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
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from importlib import metadata
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit

import httpx

from .._events import emit
from ..config import DEFAULT_BACKEND_API_URL, Config, EventHandler, is_loopback_host
from ..errors import ConfigurationError, TokenMissingError
from ._errors import (
    BackendAPIError,
    InvalidArgumentError,
    TransportError,
    error_from_response,
    parse_error_body,
)
from ._operation import Operation, PageInfo
from ._redact import Learned, record_hook, redact_text

#: RFC 9110 §9.2.2: methods whose repetition has the same effect as one request.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Statuses worth another try: rate limited, or a gateway/upstream that may recover.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Wacht's 429 without a header says "Retry after N seconds" in the message (DESIGN.md §2).
_RETRY_AFTER_TEXT = re.compile(r"retry\s+after\s+(\d+(?:\.\d+)?)", re.IGNORECASE)
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


def _query_value(value: Any) -> str | int | float:
    """A query value as httpx sends it: booleans as ``true``/``false`` (httpx says ``True``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return value
    raise InvalidArgumentError(f"a query value must be a string or a number, got {value!r}")


def _clean_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Drop ``None`` values; booleans as ``true``/``false``; sequences repeat the name."""
    out: dict[str, Any] = {}
    if params is not None and not isinstance(params, Mapping):
        raise InvalidArgumentError("params must be a mapping of query parameters")
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            out[str(key)] = [_query_value(v) for v in value]
        else:
            out[str(key)] = _query_value(value)
    return out


def _form_value(value: Any) -> str:
    """A ``multipart/form-data`` text field: objects and arrays as JSON, booleans lower case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return _json(value).decode()


def _file(value: Any, field: str) -> tuple[str, bytes, str]:
    """``(filename, content, content type)`` for a :data:`FileInput`, read once (retries and
    the sync/async twins may send it more than once)."""
    name, content_type = field, "application/octet-stream"
    if isinstance(value, tuple) and len(value) in (2, 3):
        if len(value) == 3:
            content_type = str(value[2])
            if not content_type or not _HEADER_VALUE.fullmatch(content_type):
                raise InvalidArgumentError(f"{field}: the content type is not a header value")
        name, value = value[0], value[1]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return str(name), bytes(value), content_type
    read = getattr(value, "read", None)
    if callable(read):
        data = read()
        if isinstance(data, (bytes, bytearray)):
            return str(name), bytes(data), content_type
    raise InvalidArgumentError(
        f"{field} must be bytes, a binary file, or (filename, bytes or file[, content type])"
    )


def _quote(text: str) -> str:
    """A ``name``/``filename`` parameter of a form part (RFC 7578 §4.2: escape quote, CR, LF)."""
    for char, escaped in (("\\", "\\\\"), ('"', "%22"), ("\r", "%0D"), ("\n", "%0A")):
        text = text.replace(char, escaped)
    return text


def _multipart(
    form: Mapping[str, str], files: Mapping[str, tuple[str, bytes, str]]
) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body (RFC 7578) and its content type, built once so every
    try sends the same bytes; text fields first, then files."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in form.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'
        parts.append(head.encode() + value.encode() + b"\r\n")
    for name, (filename, data, content_type) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"; '
            f'filename="{_quote(filename)}"\r\nContent-Type: {content_type}\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _json(value: Any) -> bytes:
    try:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"the request body cannot be sent as JSON: {exc}") from None


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
#: RFC 9110 §5.5 field values, ASCII only (httpx encodes headers as ASCII).
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
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
            if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
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
            content = _json(json_body)
            headers["Content-Type"] = "application/json"
        call = self._call(method.upper(), path, _clean_params(params), headers, content, opts)
        return call if unwrap else dataclasses.replace(call, unwrap=False)

    def build_operation(
        self,
        op: Operation,
        path_args: Sequence[Any],
        query: Sequence[Any] | Mapping[str, Any] | None,
        body: Any,
        files: Sequence[Any] | None,
        options: Mapping[str, Any],
    ) -> Call:
        """The call for one operation of the table, from the generated method's arguments.

        ``query``, ``body`` and ``files`` are the values in the order of ``op.query``,
        ``op.body_fields`` and ``op.files`` (``body`` is the value itself for a body that is not
        an object). ``None`` leaves a parameter out, except a required body field (sent as null).
        """
        if len(path_args) != len(op.path_params):
            raise InvalidArgumentError(f"{op.name}() takes {len(op.path_params)} path arguments")
        values = iter(path_args)
        path = _PARAM.sub(lambda m: segment(next(values), m.group(1)), op.path)
        if isinstance(query, Mapping):
            params = dict(query)
        else:
            params = dict(zip(op.query, query or (), strict=True))
        opts = Options.parse(options)
        headers = self._headers(opts)
        content = None
        if op.body == "json_value":
            content = _json(body)
            headers["Content-Type"] = "application/json"
        elif op.body is not None:
            given = dict(zip(op.body_fields, body or (), strict=True))
            for name in op.path_in_body:  # the description repeats it in the body: same value
                if given.get(name) is None:
                    value = path_args[op.path_params.index(name)]
                    given[name] = _as_int(value) if name in op.path_in_body_int else value
            fields = {
                name: value
                for name, value in given.items()
                if value is not None or name in op.required_body
            }
            if op.body == "multipart":
                form = {k: _form_value(v) for k, v in fields.items() if v is not None}
                uploads = {
                    name: _file(value, name)
                    for name, value in zip(op.files, files or (), strict=True)
                    if value is not None
                }
                content, headers["Content-Type"] = _multipart(form, uploads)
            else:
                content = _json(fields)
                headers["Content-Type"] = "application/json"
        call = self._call(op.method, path, _clean_params(params), headers, content, opts)
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


#: Pages a walker fetches at most, unless told otherwise.
DEFAULT_MAX_PAGES = 1000


def _integer(value: Any) -> int | None:
    """An offset as an integer: an ``int`` or a string of digits; ``None`` for a cursor."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _cursor(value: Any) -> str | None:
    return value if isinstance(value, str) and value and not value.isdigit() else None


def page_items(body: Any, page: PageInfo) -> list[Any]:
    """The items of one page (a bare JSON array counts as a single, last page)."""
    if isinstance(body, list):
        return body
    items = body.get(page.items) if isinstance(body, Mapping) else None
    return items if isinstance(items, list) else []


def check_walk(query: Mapping[str, Any], max_pages: Any) -> None:
    """A walk's bounds, checked before any request: ``limit`` ≥ 1, ``max_pages`` ≥ 1, an
    ``offset`` that is an integer ≥ 0 or a string cursor."""
    if isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1:
        raise InvalidArgumentError(f"max_pages must be an integer >= 1, got {max_pages!r}")
    limit = query.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidArgumentError(f"limit must be an integer >= 1, got {limit!r}")
    offset = query.get("offset")
    if offset is not None and not (
        (isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0)
        or (isinstance(offset, str) and offset)
    ):
        raise InvalidArgumentError(f"offset must be an integer >= 0 or a cursor, got {offset!r}")


def next_query(query: Mapping[str, Any], body: Any, page: PageInfo) -> dict[str, Any] | None:
    """The query for the page after the answer ``body``, or ``None`` when it was the last.

    The walk ends on ``has_more: false``, on an empty (or missing) item list, and on an answer
    that is not an object. A ``next_cursor`` is followed as ``cursor`` (operations that take
    one) or as ``offset`` (the prose docs' string cursors). Without one, an integer offset
    advances by the items received, until ``total`` is reached or, when the server says
    nothing of more pages, a page comes back shorter than ``limit``; a string offset (the
    prose docs' form) advances to the answer's own string ``offset`` when it moved, else to
    the last item's ``id``. A cursor that does not move ends the walk.
    """
    if not isinstance(body, Mapping):
        return None
    items = body.get(page.items)
    if not isinstance(items, list) or not items or body.get("has_more") is False:
        return None
    has_more = body.get("has_more") is True
    sent = query.get("offset")
    following = body.get("next_cursor")
    if isinstance(following, str) and following:
        name = "cursor" if page.cursor else "offset"
        if query.get(name) == following:
            return None
        out = {**query, name: following}
        if name == "cursor":
            out.pop("offset", None)
        return out
    if not page.offset:
        return None  # pages by cursor only, and the answer gave none: the last page
    if _cursor(sent) is not None or _cursor(body.get("offset")) is not None:
        following = _cursor(body.get("offset"))
        if following is None or following == sent:
            last = items[-1]
            following = str(last.get("id")) if isinstance(last, Mapping) else None
        if not following or following == sent:
            return None
        return {**query, "offset": following}
    start = _integer(body.get("offset"))
    if start is None:
        start = _integer(sent) or 0
    after = start + len(items)
    total = _integer(body.get("total"))
    if total is not None and after >= total:
        return None
    if not has_more:
        limit = _integer(body.get("limit")) or _integer(query.get("limit"))
        if limit is None or len(items) < limit:
            return None
    return {**query, "offset": after}


def too_many_pages(op_path: str, max_pages: int) -> BackendAPIError:
    """The error that ends a walk which would go past ``max_pages``."""
    return BackendAPIError(
        f"more than max_pages={max_pages} pages; raise max_pages or narrow the query",
        code="too_many_pages",
        method="GET",
        path=op_path,
    )
