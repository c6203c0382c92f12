"""The end-to-end demo: a local issuer, an example app on uvicorn, real HTTP requests.

``wacht-auth demo`` (and ``make demo``) starts :class:`~wacht_auth.testing.Issuer` on a loopback
port, serves an example ASGI app (by default ``examples.starlette_app:create_app`` from a
checkout) with uvicorn on another, sends a request per case and prints each status and body.
The exit code is 0 only when every answer is the expected one.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TextIO

from .testing import Issuer

__all__ = ["DEFAULT_APP", "run_demo"]

DEFAULT_APP = "examples.starlette_app:create_app"
_STARTUP_SECONDS = 15.0


def _load_factory(spec: str) -> Callable[[Any], Any]:
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # the examples live in a checkout, not in the package
    module = importlib.import_module(module_name)
    factory = getattr(module, attr or "create_app")
    if not callable(factory):
        raise TypeError(f"{spec} is not callable")
    return factory  # type: ignore[no-any-return]


def _get(url: str, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def run_demo(out: TextIO, app_spec: str = DEFAULT_APP) -> int:
    """Run the demo against the app that ``app_spec`` (``module:factory``) builds; exit code."""
    try:
        import uvicorn
    except ImportError:
        out.write("the demo needs uvicorn: pip install 'wacht-auth[starlette]' uvicorn\n")
        return 2
    try:
        factory = _load_factory(app_spec)
    except (ImportError, AttributeError, TypeError) as error:
        out.write(f"cannot load the demo app {app_spec!r} ({error}); run it from a checkout\n")
        return 2

    with Issuer(algorithms=("ES256", "RS256")) as issuer:
        app = factory(issuer.config())
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True
        )
        thread.start()
        deadline = time.monotonic() + _STARTUP_SECONDS
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not server.started:
            out.write("the example app did not start in time\n")
            server.should_exit = True
            return 1
        base = f"http://127.0.0.1:{port}"
        out.write(f"issuer {issuer.url}, example app {base} ({app_spec})\n\n")
        rs256 = issuer.key_for("RS256")
        cases: list[tuple[str, str, str | None, int, str | None]] = [
            ("valid ES256 token", "/protected", issuer.token(user_id="2741"), 200, None),
            ("valid RS256 token", "/protected", issuer.token(user_id="2741", key=rs256), 200, None),
            ("no token", "/protected", None, 401, "token_missing"),
            ("expired token", "/protected", issuer.expired_token(), 401, "token_expired"),
            ("forged token", "/protected", issuer.forged_token(), 401, "signature_invalid"),
            ("token lacking a permission", "/admin", issuer.token(), 403, "permission_denied"),
            (
                "token holding the permission",
                "/admin",
                issuer.token(permissions=["invoices:write"]),
                200,
                None,
            ),
        ]
        failures = 0
        try:
            for name, path, token, want_status, want_code in cases:
                status, body = _get(base + path, token)
                try:
                    code = json.loads(body).get("error", {}).get("code")
                except (ValueError, AttributeError):
                    code = None
                ok = status == want_status and code == want_code
                failures += not ok
                out.write(f"{'ok  ' if ok else 'FAIL'} {name:<30} GET {path:<11} -> {status}\n")
                out.write(f"     {body}\n")
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    total = len(cases)
    out.write(f"\n{total - failures} passed, {failures} failed\n")
    return 1 if failures else 0
