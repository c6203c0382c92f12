"""The request layer's view of a WSGI environ: Django's ``request.META`` and Flask's
``request.environ`` carry a request the same way (PEP 3333), so one view reads both.

Django's ASGI handler builds ``META`` with the same keys. An adapter gives the path it routes
on, and may override :meth:`EnvironView.cookie` (the framework's parsed cookies, read only
when asked), :meth:`EnvironView.host` and
:attr:`EnvironView.scheme` with what the framework validated (Django's ``ALLOWED_HOSTS`` and
``SECURE_PROXY_SSL_HEADER``, Werkzeug's trusted hosts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..auth import cookie_reader

__all__ = ["EnvironView"]


class EnvironView:
    """A :class:`~wacht_auth.auth.RequestView` over a WSGI environ."""

    __slots__ = ("environ", "method", "path")

    def __init__(self, environ: Mapping[str, Any], path: str) -> None:
        self.environ, self.path = environ, path
        self.method = str(environ.get("REQUEST_METHOD") or "GET").upper()

    @property
    def scheme(self) -> str:
        """``wsgi.url_scheme``."""
        return str(self.environ.get("wsgi.url_scheme", "http"))

    def header(self, name: str) -> str | None:
        """``HTTP_<NAME>``: the server joined repeated lines into one field (PEP 3333)."""
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"))

    def cookie(self, name: str) -> str | None:
        """A cookie of ``HTTP_COOKIE`` (adapters read the framework's parsed cookies)."""
        raw = self.environ.get("HTTP_COOKIE")
        return cookie_reader(raw)(name) if raw else None

    def host(self) -> str | None:
        """``Host``, else the server's name and port."""
        environ = self.environ
        host = environ.get("HTTP_HOST")
        if host is None and environ.get("SERVER_NAME"):
            host = f"{environ['SERVER_NAME']}:{environ.get('SERVER_PORT', '80')}"
        return host

    def client_ip(self) -> str | None:
        """``REMOTE_ADDR``: the socket peer."""
        return self.environ.get("REMOTE_ADDR")

    def query(self) -> str:
        """``QUERY_STRING``."""
        return str(self.environ.get("QUERY_STRING", ""))
