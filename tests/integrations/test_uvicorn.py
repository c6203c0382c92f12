"""The Starlette example on a real uvicorn server on 127.0.0.1, called over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from examples import fastapi_app, starlette_app
from tests.integrations.contract import USER
from wacht_auth.testing import Issuer

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 15.0
# The sans-I/O websockets implementation (uvicorn 0.35+) avoids the legacy one's warnings.
WS = "websockets-sansio" if "websockets-sansio" in uvicorn.config.WS_PROTOCOLS else "auto"


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` on uvicorn in a thread, on a socket bound here (no port race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", ws=WS)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped during start-up"
            assert time.monotonic() < deadline, "uvicorn did not start in time"
            time.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not stop"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_starlette_example_on_uvicorn() -> None:
    with Issuer() as issuer, serve(starlette_app.create_app(issuer.config())) as address:
        assert issuer.fetch_count == 1  # keys prefetched by the lifespan start-up
        with httpx.Client(base_url=f"http://{address}", timeout=10) as http:
            answer = http.get("/protected", headers=bearer(issuer.token(user_id=USER)))
            assert answer.status_code == 200
            assert answer.json()["user_id"] == USER

            answer = http.get("/protected")
            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "token_missing"
            assert answer.headers["www-authenticate"] == 'Bearer realm="wacht"'

            answer = http.get("/protected", headers=bearer(issuer.expired_token(user_id=USER)))
            assert (answer.status_code, answer.json()["error"]["code"]) == (401, "token_expired")
            assert 'error="invalid_token"' in answer.headers["www-authenticate"]

            answer = http.get("/protected", headers=bearer(issuer.forged_token(user_id=USER)))
            assert answer.json()["error"]["code"] == "signature_invalid"

            answer = http.get("/admin", headers=bearer(issuer.token(user_id=USER)))
            assert (answer.status_code, answer.json()["error"]["code"]) == (
                403,
                "permission_denied",
            )
            assert http.get("/public").json() == {"user_id": None}
        assert issuer.fetch_count == 1  # every request verified from the cached keys

        url = f"ws://{address}/ws"
        with connect(url, additional_headers=bearer(issuer.token(user_id=USER))) as ws:
            assert ws.recv(timeout=10) == f'{{"user_id":"{USER}"}}'
        with pytest.raises(InvalidStatus) as caught:  # closed before accept: HTTP 403
            connect(url, open_timeout=10)
        assert caught.value.response.status_code == 403


def test_fastapi_example_on_uvicorn() -> None:
    with Issuer() as issuer, serve(fastapi_app.create_app(issuer.config())) as address:
        with httpx.Client(base_url=f"http://{address}", timeout=10) as http:
            token = issuer.token(
                user_id=USER, organization_id="77", permissions={"organization": ["invoices:write"]}
            )
            assert http.get("/admin", headers=bearer(token)).json()["user_id"] == USER
            answer = http.get("/org", headers=bearer(issuer.expired_token(user_id=USER)))
            assert (answer.status_code, answer.json()["error"]["code"]) == (401, "token_expired")
            assert (
                "WachtBearer" in http.get("/openapi.json").json()["components"]["securitySchemes"]
            )


def test_starlette_example_run_directly_reads_the_environment() -> None:
    """``python examples/starlette_app.py`` builds its config from WACHT_* variables."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Issuer() as issuer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WACHT_")}
        env.update(WACHT_FRONTEND_API_URL=issuer.url, PORT=str(port), PYTHONPATH=str(ROOT))
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / "starlette_app.py")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            answer = None
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while answer is None:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "the example did not start in time"
                try:
                    answer = httpx.get(
                        f"http://127.0.0.1:{port}/protected",
                        headers=bearer(issuer.token(user_id=USER)),
                        timeout=5,
                    )
                except httpx.TransportError:
                    time.sleep(0.05)
            assert answer.status_code == 200
            assert answer.json()["user_id"] == USER
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                process.kill()
                process.wait(timeout=10)
