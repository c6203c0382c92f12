"""An httpx transport whose every socket operation ends by one deadline for the whole call.

httpx's sync timeouts bound each operation (connect, each write, each read), not the call: a
server that drips its answer one byte at a time, a little faster than the read timeout, holds
a sync call for as long as it likes (the gateway's was seen at ~5x its ``timeout``). The
async shell wraps the call in ``asyncio.timeout``; threads have no such thing. So the sync
gateway client runs on an httpcore pool whose network streams shorten every read, write,
connect and TLS handshake to the time left before the deadline the caller set in
:data:`DEADLINE` (a context variable: each thread or task has its own), and fail once it has
passed, exactly as ``keyset``'s key fetch bounds its reads.

Only :mod:`wacht_auth.gateway` imports this module, and only when an app accepts gateway
credentials: ``httpx`` (and its ``httpcore``) are needed here and nowhere else.
"""

from __future__ import annotations

import contextvars
import ssl
import time
import typing
from collections.abc import Iterable, Iterator

import httpcore
import httpx

__all__ = ["DEADLINE", "DeadlineTransport"]

#: The ``time.monotonic()`` by which the current call must end (None: no deadline).
DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "wacht_auth_http_deadline", default=None
)


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` shortened to the time left before :data:`DEADLINE`; ``error`` once past."""
    deadline = DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the call's deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A network stream whose operations end by the deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wait = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, wait))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """httpcore's own sync backend, its streams wrapped in :class:`_Stream`."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        wait = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_tcp(host, port, wait, local_address, socket_options))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:  # pragma: no cover - the gateway is reached over TCP
        wait = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, wait, socket_options))

    def sleep(self, seconds: float) -> None:  # pragma: no cover - no retries configured
        self._inner.sleep(seconds)


class _Body(httpx.SyncByteStream):
    """httpcore's response body as httpx reads it; closing it returns the connection."""

    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        yield from self._inner

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


class DeadlineTransport(httpx.BaseTransport):
    """A keep-alive pool (httpcore's) whose calls end by :data:`DEADLINE`.

    Args:
        max_keepalive_connections, keepalive_expiry: as ``httpx.Limits``.
    """

    def __init__(self, *, max_keepalive_connections: int, keepalive_expiry: float) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
            network_backend=_Backend(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        answer = self._pool.handle_request(
            httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
                ),
                headers=request.headers.raw,
                content=typing.cast(Iterable[bytes], request.stream),
                extensions=request.extensions,
            )
        )
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(typing.cast(Iterable[bytes], answer.stream)),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self._pool.close()
