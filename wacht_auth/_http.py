"""The package's one blocking HTTP GET: one deadline over the whole exchange, no redirects.

:func:`http_get` is shared by the key fetch (:func:`wacht_auth.keyset.fetch_jwks`) and the
session exchange of server-rendered pages (``pages.py``). It uses ``urllib`` (no extra
dependency) and keeps to https (http only for loopback, which :class:`~wacht_auth.Config`
already enforces). A socket timeout bounds each system call, not a fetch, so every socket it
opens re-arms its timeout with the time left to one deadline before each read and write; name
lookup, connect, TLS handshake, status line, headers and body all share it. Redirects are
answered, never followed; at most ``max_bytes + 1`` bytes of a body are read; loopback URLs
never go through an environment proxy.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import math
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .config import is_loopback_host

__all__ = ["FetchError", "HTTPAnswer", "http_get"]

_CHUNK = 64 * 1024


class FetchError(Exception):
    """A key fetch failed; ``outcome`` is a short stable word for logs and metrics."""

    def __init__(self, outcome: str, detail: str = "") -> None:
        super().__init__(detail or outcome)
        self.outcome = outcome
        self.detail = detail or outcome


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse every redirect: keys come only from the configured URL (a 3xx fails the fetch)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _time_left(deadline: float) -> float:
    """Seconds until ``deadline`` (monotonic); :class:`TimeoutError` once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the key fetch deadline passed")
    return left


class _DeadlineSocket(socket.socket):
    """A TCP socket whose every read and write may only take the time left to one deadline.

    A socket timeout bounds each system call, not the fetch: a server that drips its status
    line one byte at a time never lets a single ``recv`` time out. Re-arming the timeout with
    the time left before each call turns it into one deadline for the whole exchange.
    ``http.client`` reads through ``makefile()``, whose raw reader calls :meth:`recv_into`.
    """

    __slots__ = ("deadline",)
    deadline: float

    def arm(self) -> None:
        self.settimeout(_time_left(self.deadline))

    def recv_into(self, *args: Any) -> int:
        self.arm()
        return super().recv_into(*args)

    def recv(self, *args: Any) -> bytes:
        self.arm()
        return super().recv(*args)

    def sendall(self, *args: Any) -> None:
        self.arm()  # since Python 3.5 the timeout bounds the whole sendall
        super().sendall(*args)


class _DeadlineSSLSocket(ssl.SSLSocket):
    """:class:`_DeadlineSocket` for TLS (installed through ``SSLContext.sslsocket_class``)."""

    deadline = math.inf

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        self.settimeout(_time_left(self.deadline))
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        self.settimeout(_time_left(self.deadline))
        return super().recv(buflen, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        self.settimeout(_time_left(self.deadline))
        super().sendall(data, flags)


def _lookup(host: str, port: int, deadline: float) -> list[Any]:
    """``getaddrinfo`` within the deadline.

    A name lookup cannot be interrupted, so unless ``host`` is an IP literal it runs in a
    daemon thread of its own and the fetch stops waiting for it at the deadline; an abandoned
    lookup holds no socket and ends when the system resolver gives up.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    answer: list[Any] = []
    failure: list[OSError] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            answer.extend(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
        except OSError as exc:
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name="wacht-auth-jwks-resolve", daemon=True).start()
    if not done.wait(_time_left(deadline)):
        raise TimeoutError(f"resolving {host!r} took longer than the key fetch deadline")
    if failure:
        raise failure[0]
    return answer


def _connect(
    address: tuple[str, int],
    timeout: float | None = None,
    source_address: tuple[str, int] | None = None,
    *,
    deadline: float,
) -> socket.socket:
    """``socket.create_connection`` within the deadline (``timeout`` is ignored for it)."""
    host, port = address
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in _lookup(host, port, deadline):
        sock = _DeadlineSocket(family, kind, proto)
        sock.deadline = deadline
        try:
            sock.arm()
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            error = exc
            if isinstance(exc, TimeoutError):
                break  # no time left for another address
            continue
        return sock
    raise error or OSError(f"no address found for {host!r}")


class _Connection(http.client.HTTPConnection):
    """An ``http.client`` connection whose connect, request and response share one deadline.

    A proxy tunnel (``CONNECT``) runs over the same socket, so it is bounded too.
    """

    def __init__(self, host: str, *, deadline: float = math.inf, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._create_connection = functools.partial(_connect, deadline=deadline)


class _TLSConnection(http.client.HTTPSConnection):
    """:class:`_Connection` over TLS; every TLS read and write gets the time left too."""

    def __init__(self, host: str, *, deadline: float = math.inf, **kwargs: Any) -> None:
        # The context http.client would make (the default one, offering http/1.1 by ALPN),
        # except that it builds sockets that re-arm their timeout before every call.
        tls = ssl._create_default_https_context()
        tls.set_alpn_protocols(["http/1.1"])
        tls.sslsocket_class = _DeadlineSSLSocket
        super().__init__(host, context=tls, **kwargs)
        self.deadline = deadline
        self._tls = tls
        self._create_connection = functools.partial(_connect, deadline=deadline)

    def connect(self) -> None:
        # HTTPSConnection.connect, re-arming the socket just before the handshake: the ssl
        # module bounds the whole handshake by the socket timeout it starts with.
        http.client.HTTPConnection.connect(self)
        plain = self.sock
        assert isinstance(plain, _DeadlineSocket)
        plain.arm()
        host = getattr(self, "_tunnel_host", None) or self.host
        sock = self._tls.wrap_socket(plain, server_hostname=host)
        if isinstance(sock, _DeadlineSSLSocket):
            sock.deadline = self.deadline
        self.sock = sock


class _Request(urllib.request.Request):
    """A key request carrying its fetch deadline to the connection."""

    def __init__(self, url: str, deadline: float, method: str = "GET") -> None:
        headers = {"User-Agent": _user_agent(), "Accept": "application/json"}
        data = b"" if method == "POST" else None  # an empty body: Content-Length: 0
        super().__init__(url, data=data, headers=headers, method=method)
        self.deadline = deadline


def _deadline_of(request: urllib.request.Request) -> float:
    if isinstance(request, _Request):
        return request.deadline
    return time.monotonic() + (request.timeout or 5.0)


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_Connection, req, deadline=_deadline_of(req))


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_TLSConnection, req, deadline=_deadline_of(req))


class _EveryStatus(urllib.request.HTTPErrorProcessor):
    """Hand every status to the caller as an answer: no ``HTTPError``, no redirect handling
    (redirects are answered by the caller, which never follows them)."""

    def http_response(
        self, request: urllib.request.Request, response: http.client.HTTPResponse
    ) -> http.client.HTTPResponse:
        return response

    https_response = http_response


_OPENER = urllib.request.build_opener(_NoRedirect, _HTTPHandler, _HTTPSHandler, _EveryStatus)
# Loopback URLs never go through an environment proxy (tests and local development).
_LOCAL_OPENER = urllib.request.build_opener(
    _NoRedirect, _HTTPHandler, _HTTPSHandler, _EveryStatus, urllib.request.ProxyHandler({})
)


def _user_agent() -> str:
    from . import __version__

    return f"wacht-auth/{__version__}"


@dataclass(frozen=True)
class HTTPAnswer:
    """What :func:`http_get` received: status, every header as sent, and the body.

    Attributes:
        status: the HTTP status code (3xx included: redirects are never followed).
        headers: ``(name, value)`` pairs in the order received; repeated headers (every
            ``Set-Cookie``) are all kept.
        body: the body of a 2xx answer (at most ``max_bytes``); ``b""`` for any other status,
            whose body is never read.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of the header ``name`` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def header_all(self, name: str) -> tuple[str, ...]:
        """Every value of the header ``name`` (case-insensitive), in order."""
        name = name.lower()
        return tuple(value for key, value in self.headers if key.lower() == name)


def http_get(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    method: str = "GET",
) -> HTTPAnswer:
    """GET ``url`` with one deadline over the whole exchange; raise :class:`FetchError` only
    when no answer arrives (``timeout``, ``unreachable``, ``bad_response``, ``too_large``).

    Any status is returned as an answer, redirects included (never followed). ``timeout``
    bounds name lookup, connect, TLS handshake, status line, headers and a 2xx body together;
    at most ``max_bytes + 1`` bytes of a body are read. ``headers`` are added to the request
    (``User-Agent`` and ``Accept: application/json`` are sent by default). Loopback URLs never
    go through an environment proxy. ``method="POST"`` sends an empty body (the frontend
    API's sign-out).
    """
    deadline = time.monotonic() + timeout
    request = _Request(url, deadline, method)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    opener = _LOCAL_OPENER if is_loopback_host(urlsplit(url).hostname) else _OPENER
    try:
        response: http.client.HTTPResponse = opener.open(request, timeout=timeout)
    except http.client.HTTPException as exc:
        raise FetchError("bad_response", f"the server answered badly: {exc!r}") from None
    except (TimeoutError, urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
            raise FetchError("timeout", "the server did not answer in time") from None
        raise FetchError("unreachable", f"the server is unreachable: {reason}") from None
    with response:
        status = response.status
        answer_headers = tuple((k, v) for k, v in response.headers.items())
        if not 200 <= status < 300:
            return HTTPAnswer(status, answer_headers, b"")
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise FetchError("too_large", f"the answer is larger than {max_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            while size <= max_bytes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FetchError("timeout", "the server did not answer in time")
                chunk = response.read1(min(_CHUNK, max_bytes + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except FetchError:
            raise
        except http.client.HTTPException as exc:
            raise FetchError("bad_response", f"reading the answer failed: {exc!r}") from None
        except (TimeoutError, OSError, ValueError) as exc:
            if isinstance(exc, TimeoutError):
                raise FetchError("timeout", "the server did not answer in time") from None
            raise FetchError("unreachable", f"reading the answer failed: {exc}") from None
        if size > max_bytes:
            raise FetchError("too_large", f"the answer is larger than {max_bytes} bytes")
        return HTTPAnswer(status, answer_headers, b"".join(chunks))
