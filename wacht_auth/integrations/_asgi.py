"""The ASGI protocol pieces every ASGI integration shares: the message types, the one writer
of our answers (:func:`answer`, and :class:`Refusal` for Starlette endpoints and FastAPI
exception handlers) and the wrapper that adds the state's headers to a response.

Starlette is optional: :func:`answer` speaks raw ASGI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

from ..auth import Redirect, error_response
from ..errors import WachtAuthError

if TYPE_CHECKING:
    from starlette.responses import Response
else:
    try:
        from starlette.responses import Response
    except ImportError:  # a plain ASGI app without Starlette
        Response = object

__all__ = ["ASGIApp", "Message", "Receive", "Refusal", "Scope", "Send", "adding", "answer"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _raw(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def answer(
    scope: Scope,
    send: Send,
    refusal: WachtAuthError | Redirect,
    *,
    token_presented: bool = True,
    headers: tuple[tuple[str, str], ...] = (),
) -> None:
    """The one writer of our ASGI answers: a websocket handshake closed with 1008 and the
    code (RFC 6455 §7.4.1: "policy violation"), a page's 302, or the JSON error of the error
    table; ``headers`` (the state's cookies, rate-limit state) go on an HTTP answer."""
    if scope["type"] == "websocket":
        reason = refusal.code if isinstance(refusal, WachtAuthError) else "token_missing"
        await send({"type": "websocket.close", "code": 1008, "reason": reason})
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

    def __init__(self, refusal: WachtAuthError | Redirect, *, token_presented: bool = True):
        self.refusal, self.token_presented = refusal, token_presented

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await answer(scope, send, self.refusal, token_presented=self.token_presented)


def adding(send: Send, headers: tuple[tuple[str, str], ...]) -> Send:
    """``send`` that adds ``headers`` to the response's start message."""
    raw = _raw(headers)

    def adding(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *raw]}
        return send(message)

    return adding
