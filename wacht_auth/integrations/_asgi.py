"""The ASGI protocol pieces every ASGI integration shares: the message types, the request
layer's view of a scope (:class:`ScopeView`), the one writer of our answers (:func:`answer`,
and :class:`Refusal` for Starlette endpoints and FastAPI exception handlers) and the wrapper
that adds the state's headers to a response.

Starlette is optional: :func:`answer` speaks raw ASGI.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from ..auth import PageError, Redirect, cookie_reader, error_response
from ..auth.pages import merged_header
from ..errors import WachtAuthError

if TYPE_CHECKING:
    from starlette.responses import Response
else:
    try:
        from starlette.responses import Response
    except ImportError:  # a plain ASGI app without Starlette
        Response = object

__all__ = [
    "ASGIApp",
    "Message",
    "Receive",
    "Refusal",
    "Scope",
    "ScopeView",
    "Send",
    "adding",
    "answer",
    "page_error",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ScopeView:
    """The request layer's view of an ASGI scope (:class:`~wacht_auth.auth.RequestView`), for
    any ASGI framework: HTTP and websocket connections alike."""

    __slots__ = ("scope",)

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    @property
    def method(self) -> str:
        scope = self.scope
        return "WEBSOCKET" if scope["type"] == "websocket" else scope.get("method", "GET")

    @property
    def path(self) -> str:
        return str(self.scope.get("path", ""))

    @property
    def scheme(self) -> str:
        return str(self.scope.get("scheme", "http"))

    def header(self, name: str) -> str | None:
        # Every line of a repeated header, joined in order (RFC 9110 §5.3).
        key, found = name.encode("latin-1"), None
        for header, value in self.scope["headers"]:
            if header == key:
                found = value if found is None else found + b", " + value
        return None if found is None else found.decode("latin-1")

    def cookie(self, name: str) -> str | None:
        # HTTP/2 may split cookies over several fields (RFC 9113 §8.2.3).
        raw = b";".join(value for header, value in self.scope["headers"] if header == b"cookie")
        return cookie_reader(raw)(name) if raw else None

    def host(self) -> str | None:
        server = self.scope.get("server")
        return self.header("host") or (f"{server[0]}:{server[1]}" if server else None)

    def client_ip(self) -> str | None:
        client = self.scope.get("client")
        return str(client[0]) if client else None

    def query(self) -> str:
        return bytes(self.scope.get("query_string", b"")).decode("latin-1")


def _raw(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def answer(
    scope: Scope,
    send: Send,
    refusal: WachtAuthError | Redirect | PageError,
    *,
    token_presented: bool = True,
    headers: tuple[tuple[str, str], ...] = (),
    receive: Receive | None = None,
) -> None:
    """The one writer of our ASGI answers: a websocket handshake closed with 1008 and the
    code (RFC 6455 §7.4.1: "policy violation"), a page's 302, a page's refusal through the
    app's own error handler (:func:`page_error`), or the JSON error of the error table;
    ``headers`` (the state's cookies, rate-limit state) go on an HTTP answer."""
    if scope["type"] == "websocket":
        error = refusal.error if isinstance(refusal, PageError) else refusal
        reason = error.code if isinstance(error, WachtAuthError) else "token_missing"
        await send({"type": "websocket.close", "code": 1008, "reason": reason})
        return
    if isinstance(refusal, PageError):
        await page_error(scope, receive, adding(send, headers), refusal.error.status)
        return
    if isinstance(refusal, Redirect):
        status, fields, body = refusal.status, {"Location": refusal.location}, b""
    else:
        status, fields, body = error_response(refusal, token_presented=token_presented)
    raw = [*_raw(fields.items()), *_raw(headers)]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Refusal(Response):
    """:func:`answer` as a response object, for Starlette endpoints and FastAPI exception
    handlers (any ASGI app may stand for a response there)."""

    background = None

    def __init__(
        self, refusal: WachtAuthError | Redirect | PageError, *, token_presented: bool = True
    ):
        self.refusal, self.token_presented = refusal, token_presented

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        presented = self.token_presented
        await answer(scope, send, self.refusal, token_presented=presented, receive=receive)


async def page_error(scope: Scope, receive: Receive | None, send: Send, status: int) -> None:
    """A page's 403 (or 401) answered as the app's own ``HTTPException`` would be: its
    Starlette/FastAPI exception handler for that status or for ``HTTPException`` (the app's
    HTML error page), else Starlette's plain-text default. Our middleware runs outside the
    app's exception middleware, so it asks the app's handlers itself."""
    phrase = HTTPStatus(status).phrase
    handlers = getattr(scope.get("app"), "exception_handlers", None) or {}
    try:
        from starlette.exceptions import HTTPException
        from starlette.requests import Request
    except ImportError:  # plain ASGI: no handlers to ask
        handler = None
    else:
        handler = handlers.get(status) or handlers.get(HTTPException)
    if handler is not None and receive is not None:
        response = handler(Request(scope, receive), HTTPException(status, phrase))
        if inspect.isawaitable(response):
            response = await response
        await response(scope, receive, send)
        return
    body = phrase.encode()
    raw = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def adding(send: Send, headers: tuple[tuple[str, str], ...]) -> Send:
    """``send`` that adds ``headers`` to the response's start message: ``Set-Cookie`` lines
    added, the others merged with the app's (:func:`~wacht_auth.auth.pages.merged_header`)."""

    def adding(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            message = {**message, "headers": _merged(message.get("headers", ()), headers)}
        return send(message)

    return adding


def _merged(
    raw: Iterable[tuple[bytes, bytes]], headers: tuple[tuple[str, str], ...]
) -> list[tuple[bytes, bytes]]:
    lines = list(raw)
    for name, value in headers:
        key = name.lower().encode("latin-1")
        if key != b"set-cookie":
            have = [v.decode("latin-1") for k, v in lines if k.lower() == key]
            lines = [(k, v) for k, v in lines if k.lower() != key]
            value = merged_header(name, ", ".join(have) or None, value)
        lines.append((key, value.encode("latin-1")))
    return lines
