"""Backend API errors: one exception tree, parsed from every body shape Wacht sends.

Pure code (no I/O): :func:`error_from_response` turns a status, headers and body into the
right :class:`BackendAPIError` subclass. The documented envelope is
``{"error": {"code", "message", "status"}}``; deployed servers also send
``{"errors": [{"message", "code"}]}`` (``docs/backend.md``, "Errors"). Proxies in front of the
API answer with HTML or plain text; those become errors too, with a code derived from the
status.

Every failure of a Backend API method is one of these::

    BackendAPIError                 code: the server's, or derived (always a string)
    ├── InvalidArgumentError        also a ValueError: nothing was sent
    ├── ClientClosedError           also a RuntimeError: the client (or its parent) is closed
    ├── TransportError              no answer: connection_error, timeout
    ├── BadRequestError             400
    ├── AuthenticationError         401
    ├── BackendForbiddenError       403
    ├── NotFoundError               404
    ├── ConflictError               409
    ├── UnprocessableEntityError    422
    ├── RateLimitError              429, with retry_after
    └── ServerError                 5xx
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "AuthenticationError",
    "BackendAPIError",
    "BackendForbiddenError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "InvalidArgumentError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "TransportError",
    "UnprocessableEntityError",
    "error_from_response",
]

#: Longest server message kept (a proxy's HTML page is not a message).
_MAX_MESSAGE = 300


class BackendAPIError(Exception):
    """A Backend API call failed.

    Attributes:
        code: machine-readable code, always a string: the server's when it sent one, otherwise
            derived from the status (``not_found``, ``rate_limited``, ``server_error`` …).
        message: the server's human message (secrets redacted), or a description of the failure.
        status: the HTTP status, or ``None`` when no response arrived (:class:`TransportError`).
        request_id: the ``X-Request-Id`` the server sent, when it sent one.
        attempts: how many times the request was sent before giving up.
        method: the HTTP method of the failed call.
        path: the path of the failed call (without the query string).
    """

    default_code = "backend_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        attempts: int = 1,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.message: str = message
        self.code: str = code or self.default_code
        self.status: int | None = status
        self.request_id: str | None = request_id
        self.attempts: int = attempts
        self.method: str | None = method
        self.path: str | None = path
        super().__init__(message)

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.method and self.path else ""
        details = [f"code={self.code}"]
        if self.status is not None:
            details.append(f"status={self.status}")
        if self.request_id:
            details.append(f"request_id={self.request_id}")
        details.append(f"after {self.attempts} attempt{'' if self.attempts == 1 else 's'}")
        return f"{where}{self.message} ({', '.join(details)})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, "
            f"request_id={self.request_id!r}, attempts={self.attempts})"
        )


class InvalidArgumentError(BackendAPIError, ValueError):
    """A method was called with arguments it cannot send; nothing went over the wire.

    Also a :class:`ValueError`, as before these calls raised one.
    """

    default_code = "invalid_argument"


class ClientClosedError(BackendAPIError, RuntimeError):
    """The client (or the client an ``as_user()`` client came from) is closed."""

    default_code = "client_closed"


class BadRequestError(BackendAPIError):
    """The Backend API rejected the request as malformed (HTTP 400)."""

    default_code = "bad_request"


class AuthenticationError(BackendAPIError):
    """The secret key (or the forwarded user token) was refused (HTTP 401)."""

    default_code = "unauthorized"


class BackendForbiddenError(BackendAPIError):
    """The credentials are valid but not allowed to do this (HTTP 403)."""

    default_code = "forbidden"


class NotFoundError(BackendAPIError):
    """The resource does not exist (HTTP 404)."""

    default_code = "not_found"


class ConflictError(BackendAPIError):
    """The request conflicts with the resource's state (HTTP 409)."""

    default_code = "conflict"


class UnprocessableEntityError(BackendAPIError):
    """The request was well-formed but its values were refused (HTTP 422)."""

    default_code = "unprocessable_entity"


class RateLimitError(BackendAPIError):
    """Too many requests (HTTP 429), still refused after the permitted retries.

    Attributes:
        retry_after: seconds the server asked to wait, when it said so.
    """

    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after: float | None = retry_after


class ServerError(BackendAPIError):
    """The Backend API (or a proxy in front of it) failed (HTTP 5xx)."""

    default_code = "server_error"


class TransportError(BackendAPIError):
    """No response arrived: connection refused or reset, DNS failure, or a timeout."""

    default_code = "transport_error"


_BY_STATUS: dict[int, type[BackendAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: BackendForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_class(status: int) -> type[BackendAPIError]:
    """The exception class for an HTTP error status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, BackendAPIError)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def parse_error_body(body: bytes) -> tuple[str | None, str | None, str | None]:
    """``(code, message, request_id)`` from an error body of any shape; ``None`` when absent."""
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        text = body.decode("utf-8", "replace").strip() if body else ""
        if text.lstrip().startswith("<"):  # an HTML error page says nothing useful
            return None, None, None
        return None, (" ".join(text.split()) or None), None
    code: str | None = None
    message: str | None = None
    envelope = data.get("error")
    if isinstance(envelope, dict):  # documented: {"error": {"code", "message", "status"}}
        code, message = _text(envelope.get("code")), _text(envelope.get("message"))
    elif isinstance(data.get("errors"), list):  # deployed servers: {"errors": [{...}, ...]}
        entries = [e for e in data["errors"] if isinstance(e, dict)]
        codes = [c for c in (_text(e.get("code")) for e in entries) if c]
        messages = [m for m in (_text(e.get("message")) for e in entries) if m]
        code = codes[0] if codes else None
        message = "; ".join(messages) or None
    elif isinstance(envelope, str):  # OAuth style: {"error": "...", "error_description": ...}
        code = _text(envelope)
        message = _text(data.get("error_description")) or _text(data.get("message"))
    else:
        code, message = _text(data.get("code")), _text(data.get("message"))
    return code, message, _text(data.get("request_id"))


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    method: str,
    path: str,
    attempts: int = 1,
    redact: Callable[[str], str] = lambda s: s,
    retry_after: float | None = None,
) -> BackendAPIError:
    """Build the error for a non-2xx response; ``headers`` lookups must be case-insensitive.

    The class follows the HTTP status (a body's own ``status`` is informative only); the
    message is passed through ``redact`` so a server echoing credentials cannot leak them.
    """
    code, message, body_request_id = parse_error_body(body)
    if message is not None:
        # Redact before cutting: a cut through a secret would leave a prefix no rule finds.
        message = redact(message)
        if len(message) > _MAX_MESSAGE:
            message = message[:_MAX_MESSAGE] + "…"
    cls = error_class(status)
    if message is None:
        message = f"the Backend API answered HTTP {status}"
    request_id = headers.get("x-request-id") or body_request_id
    kw: dict[str, Any] = {
        "code": redact(code)
        if code
        else (cls.default_code if cls is not BackendAPIError else f"http_{status}"),
        "status": status,
        "request_id": redact(request_id) if request_id else None,
        "attempts": attempts,
        "method": method,
        "path": path,
    }
    if cls is RateLimitError:
        kw["retry_after"] = retry_after
    return cls(message, **kw)
