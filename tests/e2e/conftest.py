"""The browser for ``make e2e``: one headless Debian Chromium driven through chromedriver.

Nothing is downloaded: the browser and the driver are Debian's ``chromium`` and
``chromium-driver`` packages (``make e2e`` installs them when missing), and Selenium is told
where both are, so Selenium Manager never looks for its own.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

#: Seconds a page may take to load; every browser step is bounded by it.
PAGE_LOAD_TIMEOUT = 15


def _binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        f"{names[0]} is not installed: run `make e2e`, which installs Debian's chromium and "
        "chromium-driver packages"
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    """A headless Chromium for the whole session (cookies are cleared by each test)."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not fetch anything
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser")
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container: Chromium's sandbox needs user namespaces
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--window-size=1024,768",
    ):
        options.add_argument(argument)
    service = Service(executable_path=_binary("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
    driver.set_script_timeout(PAGE_LOAD_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


# -- servers on loopback, for tests that serve their own apps (test_cors.py) ---------------

#: Seconds a server may take to start or stop.
SERVER_TIMEOUT = 10


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_wsgi(app: Any) -> Iterator[int]:
    """Serve a WSGI ``app`` on 127.0.0.1 in a thread; yields the port, stops on exit."""
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=SERVER_TIMEOUT)


@contextmanager
def serve_asgi(app: Any) -> Iterator[int]:
    """Serve an ASGI ``app`` with uvicorn on 127.0.0.1 in a thread, on a socket bound here
    (no port race); yields the port, stops on exit."""
    import uvicorn  # the dev extra; imported here so the WSGI-only tests do not need it

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + SERVER_TIMEOUT
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped during start-up"
            assert time.monotonic() < deadline, "uvicorn did not start in time"
            time.sleep(0.02)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=SERVER_TIMEOUT)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not stop"
