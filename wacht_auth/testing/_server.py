"""The loopback HTTP server under every fake of the kit, and canned answers.

:class:`_Loopback` is what :class:`~wacht_auth.testing.Issuer` (and so ``FrontendAPI``),
``FakeGateway``, ``FakeBackendAPI``, ``OAuthServer`` and the CLI's development issuer share: a
threaded HTTP server on a loopback address whose handler hands every request to the fake's
``_handle``; :meth:`~_Loopback.start` and :meth:`~_Loopback.stop` that are idempotent and
bounded in time and release the port; a context manager; ``url``, ``port`` and ``host``. A
fake keeps only its routes and answers.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from ..config import is_loopback_host

logger = logging.getLogger("wacht_auth.testing")

#: How many requests a fake remembers for its ``requests`` properties.
_MAX_RECORDED = 1000
#: Upper bound of every wait a fake is told to make before answering, so a forgotten delay
#: cannot hang a test run.
MAX_DELAY = 30.0
#: How long :meth:`_Loopback.stop` waits for the serving thread.
_JOIN_TIMEOUT = 5.0

_L = TypeVar("_L", bound="_Loopback")


@dataclass(frozen=True)
class _Answer:
    """A canned answer of a fake (``content_type=None`` sends no ``Content-Type``)."""

    status: int
    body: bytes
    content_type: str | None = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the owning fake's ``_handle``."""

    server: _Server
    server_version = "wacht-auth-testing"
    sys_version = ""
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
    # holds the body until the client's delayed ACK (~40 ms per keep-alive request).
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        owner = self.server.owner
        self.protocol_version = owner._protocol
        owner._connected()

    def _dispatch(self) -> None:
        owner = self.server.owner
        if self.command not in owner._methods:
            # What BaseHTTPRequestHandler answers for a method it has no do_ for.
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})")
            return
        owner._handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    def read_body(self) -> bytes:
        """The request body (``Content-Length`` bytes; empty without one)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # Tests open many connections at once (cold-cache stampedes): a deep accept queue keeps
    # the kernel from dropping SYNs, which would add one-second client retries.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: _Loopback) -> None:
        self.owner = owner
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-answer (timeouts, body caps) are part of the tests: quiet.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        logger.warning("fake server error for %s", client_address, exc_info=True)


class _Loopback:
    """A threaded HTTP server on a loopback port that answers through :meth:`_handle`.

    A fake subclasses it, calls ``super().__init__(host=..., port=...)`` and implements
    :meth:`_handle`. ``port=0`` picks a free port at the first :meth:`start`; the port is kept
    from then on, so :meth:`start` after :meth:`stop` listens on it again.
    """

    #: ``HTTP/1.0`` answers one request per connection (closing the socket cuts every client
    #: off); ``HTTP/1.1`` keeps connections alive.
    _protocol: ClassVar[str] = "HTTP/1.0"
    #: The methods :meth:`_handle` answers; others get 501.
    _methods: ClassVar[frozenset[str]] = frozenset({"GET"})
    #: What the fake is called in its thread's name and its errors.
    _kind: ClassVar[str] = "fake server"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if not is_loopback_host(host):
            # The kit serves keys and mints tokens: never to another machine.
            raise ValueError(f"host must be a loopback address (127.0.0.1, ::1), got {host!r}")
        self.host: str = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()  # set by stop(): cuts every pending wait short
        self._started = False
        self._lifecycle = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self: _L) -> _L:
        """Listen and serve in a daemon thread; returns ``self``. Idempotent."""
        with self._lifecycle:
            if not self._started:
                self._listen()
                self._started = True
        return self

    def stop(self) -> None:
        """Stop serving and release the port (within a few seconds). Idempotent."""
        with self._lifecycle:
            self._started = False
            self._close()

    def __enter__(self: _L) -> _L:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port it listens on (known once started, or when given)."""
        if not self._port:
            name = type(self).__name__
            raise RuntimeError(
                f"the {self._kind} has no port yet: start it first (.start() or "
                f"`with {name}() as ...:`)"
            )
        return self._port

    @property
    def url(self) -> str:
        """Its origin, ``http://127.0.0.1:<port>`` (``http://[::1]:<port>`` on IPv6)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- for the fakes ------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        """Answer one request (runs in a server thread)."""
        raise NotImplementedError

    def _connected(self) -> None:
        """A client opened a connection (runs in a server thread)."""

    def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` (at most :data:`MAX_DELAY`) before answering; :meth:`stop` cuts it
        short."""
        if seconds > 0:
            self._wake.wait(min(seconds, MAX_DELAY))

    def _bind(self) -> _Server:
        """Open the listening socket (``OSError`` when the port is taken); no-op when open."""
        if self._server is None:
            self._server = _Server((self.host, self._port), self)
            self._port = self._server.server_address[1]
        return self._server

    def _listen(self) -> None:
        """Bind if needed and serve in a daemon thread."""
        try:
            server = self._bind()
        except OSError as exc:
            raise RuntimeError(f"cannot listen on {self.host}:{self._port}: {exc}") from exc
        if self._thread is None:
            self._wake.clear()
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.01},  # how fast stop() returns
                name=f"wacht-{self._kind.replace(' ', '-')}-{self._port}",
                daemon=True,
            )
            self._thread.start()

    def _close(self) -> None:
        """Stop the serving thread and close the listening socket."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        self._wake.set()
        if server is not None:
            if thread is not None:  # shutdown() waits for serve_forever(): only if it runs
                server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=_JOIN_TIMEOUT)


def _send(handler: _Handler, answer: _Answer) -> None:
    handler.send_response(answer.status)
    if answer.content_type is not None:
        handler.send_header("Content-Type", answer.content_type)
    handler.send_header("Content-Length", str(len(answer.body)))
    for name, value in answer.headers:
        handler.send_header(name, value)
    handler.end_headers()
    try:
        handler.wfile.write(answer.body)
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True  # the client gave up (a timeout test)
