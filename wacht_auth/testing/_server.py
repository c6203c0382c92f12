"""The HTTP server under :class:`~wacht_auth.testing.Issuer`: a threaded loopback server whose
handler hands every request to its issuer, and canned answers."""

from __future__ import annotations

import logging
import socket
import sys
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._issuer import Issuer

logger = logging.getLogger("wacht_auth.testing")

#: How many requests an issuer remembers for its ``requests`` properties.
_MAX_RECORDED = 1000


@dataclass(frozen=True)
class _Answer:
    """A canned answer of the key server."""

    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


class _Handler(BaseHTTPRequestHandler):
    """Routes every request to the owning :class:`Issuer`."""

    server: _Server
    server_version = "wacht-auth-testing"
    sys_version = ""
    # HTTP/1.0: one request per connection, so down() really cuts every client off.
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self.server.issuer._handle(self)

    do_POST = do_GET  # the issuer answers by method too (the frontend API's sign-out)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # Tests open many connections at once (cold-cache stampedes): a deep accept queue keeps
    # the kernel from dropping SYNs, which would add one-second client retries.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], issuer: Issuer) -> None:
        self.issuer = issuer
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-answer (timeouts, body caps) are part of the tests: quiet.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        logger.warning("key server error for %s", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


def _send(handler: _Handler, answer: _Answer) -> None:
    handler.send_response(answer.status)
    handler.send_header("Content-Type", answer.content_type)
    handler.send_header("Content-Length", str(len(answer.body)))
    for name, value in answer.headers:
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(answer.body)
