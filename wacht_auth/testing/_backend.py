"""A fake Wacht Backend API for tests: a real HTTP server on 127.0.0.1 (``wacht_auth.testing``).

:class:`FakeBackendAPI` serves every operation of Wacht's API description (the table the
Backend API client is generated from). Each request is routed to its operation by method and
path template and recorded; the answer is, by default, a value built from the operation's
response schema (every member filled, so a ``UserDetails`` has all its fields). A test sets an
answer, an error (Wacht's ``{"error": {"code", "message", "status"}}`` envelope) or a handler
per operation, by the name the client's method has (``"get_user_details"``). Requests must
carry ``Authorization: Bearer <secret key>`` (or a user's session token, for ``as_user()``
clients), as the real API requires; anything else is answered 401.

It needs nothing beyond the standard library to run; the clients that talk to it need the
``backend`` extra (httpx).
"""

from __future__ import annotations

import copy
import difflib
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..backend._operation import Operation
from ..backend._operations import OPERATIONS
from ._server import _MAX_RECORDED, _Answer, _Handler, _Loopback, _send

if TYPE_CHECKING:  # the clients need httpx; this module does not
    from ..backend import AsyncBackendClient, BackendClient

__all__ = ["BackendAnswer", "BackendRequest", "FakeBackendAPI"]

#: The secret key a :class:`FakeBackendAPI` accepts unless told another.
FAKE_SECRET_KEY = "sk_test_wacht_fake_backend"
#: The error ``code`` the fake sends for a status when :meth:`FakeBackendAPI.set_error` names
#: none (the codes Wacht's Backend API uses; the client maps statuses to its exceptions).
ERROR_CODES: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "unprocessable_entity",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


@dataclass(frozen=True)
class BackendRequest:
    """A request :class:`FakeBackendAPI` received.

    Attributes:
        operation: the client's name for the operation it reached (``"get_user_details"``),
            or ``None`` when no operation has that method and path (answered 404).
        method: the HTTP method.
        path: the path, percent-decoded, without the query string.
        path_params: the path template's parameters (``{"user_id": "42"}``).
        query: the query parameters, each with every value given.
        headers: the request headers, names lowercased.
        body: the raw body.
    """

    operation: str | None
    method: str
    path: str
    path_params: Mapping[str, str]
    query: Mapping[str, list[str]]
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)

    def json(self) -> Any:
        """The body decoded as JSON (``ValueError`` when it is not JSON)."""
        return json.loads(self.body)

    def param(self, name: str) -> str | None:
        """The last value of query parameter ``name``, or ``None``."""
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(frozen=True)
class BackendAnswer:
    """An answer a handler set with :meth:`FakeBackendAPI.set_handler` may return.

    ``body`` is sent as JSON (``None``: an empty body); ``headers`` are added.
    """

    body: Any = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


#: What :meth:`FakeBackendAPI.set_handler` takes: a function of the request, returning a
#: :class:`BackendAnswer` or the JSON value to answer with status 200.
Handler = Callable[[BackendRequest], Any]


@cache
def _table() -> dict[str, Any]:
    text = resources.files("wacht_auth.backend").joinpath("_table.json").read_text("utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


@cache
def _responses() -> dict[str, Any]:
    return {op["id"]: op.get("response", {}) for op in _table()["operations"]}


def _example(schema: Any, name: str = "", depth: int = 0) -> Any:
    """A value valid against ``schema`` with every member filled near the top (required
    members only further down, so recursive schemas end)."""
    if not isinstance(schema, dict) or not schema or depth > 12:
        return {} if depth <= 12 else None
    if "$ref" in schema:
        return _example(_table()["schemas"][schema["$ref"].rsplit("/", 1)[1]], name, depth)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s != {"type": "null"}] or schema[key]
            return _example(options[0], name, depth)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = _example(part, name, depth)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return next((v for v in schema["enum"] if v is not None), None)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "string":
        return _string(schema.get("format"), name)
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    if kind == "array":
        return [_example(schema.get("items", {}), name, depth + 1)] if depth < 3 else []
    properties = schema.get("properties") or {}
    required = set(schema.get("required", ()))
    return {
        member: _example(sub, member, depth + 1)
        for member, sub in properties.items()
        if depth < 3 or member in required
    }


def _string(format_: str | None, name: str) -> str:
    if format_ == "date-time":
        return "2026-01-01T00:00:00Z"
    if format_ == "date":
        return "2026-01-01"
    if format_ == "binary":
        return ""
    if name == "id" or name.endswith("_id"):
        return "1"  # Wacht's ids are decimal strings
    if "email" in name:
        return "user@example.com"
    if name.endswith(("_url", "_uri")) or name in ("url", "uri"):
        return "https://example.com/"
    return name or "text"


def _compile(op: Operation) -> re.Pattern[str]:
    pattern = re.escape(op.path)
    for param in op.path_params:
        pattern = pattern.replace(re.escape("{" + param + "}"), f"(?P<{param}>[^/]+)")
    return re.compile(f"^{pattern}$")


@cache
def _routes() -> tuple[tuple[str, re.Pattern[str], Operation], ...]:
    # Literal paths before templates (/users/invitations before /users/{user_id}).
    ops = sorted(OPERATIONS.values(), key=lambda op: (len(op.path_params), op.path))
    return tuple((op.method, _compile(op), op) for op in ops)


@cache
def _by_name() -> dict[str, Operation]:
    named = {op.name: op for op in OPERATIONS.values()}
    named.update({op.id: op for op in OPERATIONS.values()})
    return named


def _operation(name: str) -> Operation:
    """The operation the client's method ``name`` calls (or an ``operationId``)."""
    op = _by_name().get(name)
    if op is None:
        close = difflib.get_close_matches(name, [o.name for o in OPERATIONS.values()], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"no Backend API operation is named {name!r}{hint}")
    return op


def _error_body(status: int, code: str | None, message: str | None) -> dict[str, Any]:
    code = code or ERROR_CODES.get(status, "error")
    return {"error": {"code": code, "message": message or code.replace("_", " "), "status": status}}


class FakeBackendAPI(_Loopback):
    """A fake Wacht Backend API on a loopback port, for tests of code that calls it.

    Use it as a context manager (or :meth:`start` / :meth:`stop`); point the code under test
    at it with :meth:`client`, :meth:`async_client` or :attr:`env`. Every operation answers a value
    built from its response schema (:meth:`example`) until a test sets another with
    :meth:`set_answer`, :meth:`set_error` or :meth:`set_handler`; :meth:`restore` undoes them.
    :attr:`requests` records what reached it.

    Args:
        secret_key: the secret key it accepts as ``Authorization: Bearer`` (a session token,
            three dot-separated parts, is accepted too: ``as_user()`` clients send one).
        host: the loopback address to listen on.
        port: the port; 0 picks a free one.

    Its :attr:`url` is the base URL of the API (``http://127.0.0.1:<port>``).
    """

    _kind = "fake Backend API"
    _protocol = "HTTP/1.1"
    _methods = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})

    def __init__(
        self, *, secret_key: str = FAKE_SECRET_KEY, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(host=host, port=port)
        self.secret_key: str = secret_key
        self._lock = threading.Lock()
        self._answers: dict[str, Handler] = {}
        self._requests: list[BackendRequest] = []
        self._serial = 0

    # -- where it is (start, stop, url, port, host: see _Loopback) ----------------------------

    @property
    def env(self) -> dict[str, str]:
        """The environment variables ``BackendClient.from_env()`` reads, pointing at it."""
        return {"WACHT_SECRET_KEY": self.secret_key, "WACHT_BACKEND_API_URL": self.url}

    def client(self, **kwargs: Any) -> BackendClient:
        """A :class:`~wacht_auth.backend.BackendClient` for it (close it, or use ``with``);
        ``kwargs`` go to the client."""
        from ..backend import BackendClient

        kwargs.setdefault("secret_key", self.secret_key)
        kwargs.setdefault("base_url", self.url)
        return BackendClient(**kwargs)

    def async_client(self, **kwargs: Any) -> AsyncBackendClient:
        """An :class:`~wacht_auth.backend.AsyncBackendClient` for it; ``kwargs`` go to it."""
        from ..backend import AsyncBackendClient

        kwargs.setdefault("secret_key", self.secret_key)
        kwargs.setdefault("base_url", self.url)
        return AsyncBackendClient(**kwargs)

    # -- answers ------------------------------------------------------------------------------

    def example(self, operation: str) -> Any:
        """A fresh copy of what ``operation`` answers by default: a value built from its
        response schema, every member filled (ids ``"1"``, times ``2026-01-01T00:00:00Z``,
        other strings their member's name, booleans ``False``, one item per list)."""
        op = _operation(operation)
        return copy.deepcopy(_example(_responses()[op.id]))

    def set_answer(
        self,
        operation: str,
        body: Any,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer ``operation`` with ``body`` as JSON (``None``: no body) from now on."""
        answer = BackendAnswer(copy.deepcopy(body), status, dict(headers or {}))
        self.set_handler(operation, lambda request: answer)

    def set_error(
        self,
        operation: str,
        status: int,
        code: str | None = None,
        message: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer ``operation`` with Wacht's error envelope ``{"error": {"code", "message",
        "status"}}`` (``code`` defaults to the status's usual one, :data:`ERROR_CODES`);
        ``headers`` are added, e.g. ``{"Retry-After": "1"}`` with a 429."""
        body = _error_body(status, code, message)
        self.set_answer(operation, body, status=status, headers=headers)

    def set_handler(self, operation: str, handler: Handler) -> None:
        """Answer ``operation`` with ``handler(request)``: a :class:`BackendAnswer`, or the
        JSON value to send with status 200. It runs in a server thread."""
        op = _operation(operation)
        with self._lock:
            self._answers[op.id] = handler

    def restore(self, operation: str | None = None) -> None:
        """Answer ``operation`` (default: every operation) from its schema again."""
        with self._lock:
            if operation is None:
                self._answers.clear()
            else:
                self._answers.pop(_operation(operation).id, None)

    # -- what it received ---------------------------------------------------------------------

    @property
    def requests(self) -> tuple[BackendRequest, ...]:
        """The requests received (the last 1,000), oldest first."""
        with self._lock:
            return tuple(self._requests)

    def requests_for(self, operation: str) -> tuple[BackendRequest, ...]:
        """The requests that reached ``operation``, oldest first."""
        name = _operation(operation).name
        return tuple(r for r in self.requests if r.operation == name)

    def reset(self) -> None:
        """Forget the recorded requests and every answer set (one fake for many tests)."""
        with self._lock:
            self._requests.clear()
            self._answers.clear()

    # -- serving ------------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        body = handler.read_body()
        headers = {k.lower(): v for k, v in handler.headers.items()}
        status, payload, extra = self._answer(handler.command, handler.path, headers, body)
        data = b"" if payload is None else json.dumps(payload).encode()
        _send(handler, _Answer(status, data, headers=tuple(extra.items())))

    def _answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(target)
        path = parts.path
        found: Operation | None = None
        params: dict[str, str] = {}
        for route_method, pattern, op in _routes():
            match = pattern.match(path) if route_method == method else None
            if match is not None:
                found = op
                params = {k: unquote(v) for k, v in match.groupdict().items()}
                break
        request = BackendRequest(
            operation=found.name if found is not None else None,
            method=method,
            path=unquote(path),
            path_params=params,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            body=body,
        )
        with self._lock:
            self._serial += 1
            extra = {"X-Request-Id": f"req_fake_{self._serial}"}
            self._requests.append(request)
            del self._requests[:-_MAX_RECORDED]
            handler = self._answers.get(found.id) if found is not None else None
        if not self._authorized(headers.get("authorization", "")):
            return 401, _error_body(401, "unauthorized", "invalid or missing secret key"), extra
        if found is None:
            return 404, _error_body(404, "not_found", f"no route for {method} {path}"), extra
        if handler is None:
            return 200, _example(_responses()[found.id]), extra
        try:
            answer = handler(request)
        except Exception as error:  # the test's handler failed: say so, as a 500
            message = f"the handler set for {found.name} raised {error!r}"
            return 500, _error_body(500, "fake_handler_error", message), extra
        if not isinstance(answer, BackendAnswer):
            answer = BackendAnswer(answer)
        return answer.status, answer.body, {**extra, **answer.headers}

    def _authorized(self, authorization: str) -> bool:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential:
            return False
        return credential == self.secret_key or credential.count(".") == 2

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "not started"
        return f"FakeBackendAPI({where})"


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional at runtime
    pass
else:

    @pytest.fixture
    def wacht_backend() -> Iterator[FakeBackendAPI]:
        """A started :class:`FakeBackendAPI`, stopped after the test."""
        with FakeBackendAPI() as fake:
            yield fake
