"""Cookie attributes in a real browser: what only Chromium can show (issue 11).

A tiny WSGI app (no adapter: it calls the framework-free page pieces of
``wacht_auth.auth.pages``, ``.proxies`` and ``.exchange`` directly)
signs visitors in through the fake frontend API of ``wacht_auth.testing``:

anonymous visit → 302 to the fake sign-in page → it sets ``__session`` and 302s back → the app
exchanges ``__session`` and sets ``__auth_<scope>`` → the next load is served from that cookie
with no new exchange. Along the way it proves that ``Secure`` cookies are stored and sent on
``http://localhost``, that ``SameSite=Lax`` cookies ride a cross-site top-level redirect (and
not a cross-site iframe), and that ``HttpOnly`` cookies are invisible to ``document.cookie``.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import unquote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from wacht_auth import Verifier, WachtAuthError
from wacht_auth.auth.pages import (
    dev_session_cookies,
    dev_session_in_query,
    session_cookie,
    sign_in_url,
    transport_from_cookies,
    without_dev_session,
)
from wacht_auth.config import cookie_name_for
from wacht_auth.exchange import SessionExchange
from wacht_auth.proxies import public_url
from wacht_auth.testing import FrontendAPI

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WAIT = 10


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _cookies(environ: dict[str, Any]) -> dict[str, str]:
    jar: dict[str, str] = {}
    for chunk in environ.get("HTTP_COOKIE", "").split(";"):
        name, _, value = chunk.strip().partition("=")
        if name and name not in jar:
            jar[name] = value
    return jar


@dataclass
class PageApp:
    """A server-rendered app that signs visitors in as issue 11 describes, without adapters."""

    frontend: FrontendAPI
    port: int = 0
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.verifier = Verifier(self.frontend.config())
        self.exchange = SessionExchange(self.frontend.url, timeout=5)
        self.auth_cookie = cookie_name_for(self.frontend.url)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/bounce":  # served on 127.0.0.1: a cross-site top-level redirect
            return self._send(start_response, "302 Found", [("Location", self.url("/whoami"))])
        if path == "/frame":  # served on 127.0.0.1: a cross-site iframe
            body = f'<iframe id="f" src="{html.escape(self.url("/whoami"))}"></iframe>'
            return self._send(start_response, "200 OK", [], body)
        here = public_url(
            scheme=environ["wsgi.url_scheme"],
            host=environ.get("HTTP_HOST"),
            path=path,
            query=environ.get("QUERY_STRING", ""),
            peer=environ.get("REMOTE_ADDR"),
        )
        jar = _cookies(environ)
        headers: list[tuple[str, str]] = [("Cache-Control", "no-store")]
        dev = dev_session_in_query(environ.get("QUERY_STRING", ""))
        if dev is not None:
            # ?__dev_session__=: exchange it, store the cookies, redirect to the clean URL.
            result = self.exchange.exchange(dev, dev=True, client_ip=environ.get("REMOTE_ADDR"))
            if result is not None:
                headers += self._cookies_for(result)
            headers.append(("Location", without_dev_session(here)))
            return self._send(start_response, "302 Found", headers)
        user, source = None, "anonymous"
        token = jar.get(self.auth_cookie)
        if token:
            user, source = self._verify(unquote(token)), "cookie"
        if user is None:
            transport = transport_from_cookies(jar.get, self.frontend.url)
            if transport is not None:
                result = self.exchange.exchange(
                    transport.value, dev=transport.dev, client_ip=environ.get("REMOTE_ADDR")
                )
                if result is not None:
                    user, source = self._verify(result.token), "exchange"
                    headers += self._cookies_for(result)
        self.sources.append(source)
        if user is None and path == "/page":
            target = sign_in_url(self.frontend.url, sign_in_url=None, redirect_uri=here)
            headers.append(("Location", target))
            return self._send(start_response, "302 Found", headers)
        body = f'<p id="user">{html.escape(user or "anonymous")}</p><p id="source">{source}</p>'
        return self._send(start_response, "200 OK", headers, body)

    def _verify(self, token: str) -> str | None:
        try:
            return self.verifier.verify(token).user_id
        except WachtAuthError:
            return None

    def _cookies_for(self, result: Any) -> list[tuple[str, str]]:
        now = time.time()
        values = [
            session_cookie(self.auth_cookie, result.token, expires_at=result.expires_at, now=now)
        ]
        values += result.set_cookies
        if result.dev_session:
            values += dev_session_cookies(self.frontend.url, result.dev_session, now=now)
        return [("Set-Cookie", value) for value in values]

    @staticmethod
    def _send(
        start_response: StartResponse,
        status: str,
        headers: list[tuple[str, str]],
        body: str = "",
    ) -> Iterable[bytes]:
        data = f"<!doctype html><html><body>{body}</body></html>".encode()
        start_response(
            status,
            [
                *headers,
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(data))),
            ],
        )
        return [data]

    def url(self, path: str, host: str = "localhost") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def serve(browser: webdriver.Chrome) -> Iterator[Callable[[FrontendAPI], PageApp]]:
    """Start a :class:`PageApp` for a frontend on ``localhost``; stopped after the test."""
    servers: list[WSGIServer] = []
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})

    def start(frontend: FrontendAPI) -> PageApp:
        app = PageApp(frontend)
        server = make_server("127.0.0.1", 0, app, server_class=_Server, handler_class=_Quiet)
        app.port = server.server_address[1]
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        servers.append(server)
        return app

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def frontend() -> Iterator[FrontendAPI]:
    # "localhost": the sign-in page and the app share the host, so the host-only __session
    # cookie the fake portal sets is sent to the app (cookies ignore ports, RFC 6265 §8.5).
    with FrontendAPI(host="localhost") as api:
        yield api


def _text(browser: webdriver.Chrome, element_id: str) -> str:
    WebDriverWait(browser, WAIT).until(lambda b: b.find_elements(By.ID, element_id))
    return str(browser.find_element(By.ID, element_id).text)


def _cookie(browser: webdriver.Chrome, name: str) -> dict[str, Any]:
    for cookie in browser.get_cookies():
        if cookie["name"] == name:
            return dict(cookie)
    raise AssertionError(f"the browser holds no {name} cookie: {browser.get_cookies()}")


def test_sign_in_round_trip_sets_and_reuses_the_cookies(
    browser: webdriver.Chrome, frontend: FrontendAPI, serve: Callable[[FrontendAPI], PageApp]
) -> None:
    app = serve(frontend)
    browser.get(app.url("/page?tab=1"))
    # Anonymous → sign-in page (Secure cookie set over http://localhost) → back, exchanged.
    assert _text(browser, "user") == "user_1"
    assert _text(browser, "source") == "exchange"
    assert browser.current_url == app.url("/page?tab=1")
    assert frontend.sign_in_count == 1 and frontend.exchange_count == 1
    assert app.sources[0] == "anonymous"

    session = _cookie(browser, "__session")
    auth = _cookie(browser, app.auth_cookie)
    for cookie in (session, auth):
        assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (True, True, "Lax")
        assert cookie["path"] == "/"
    assert 30 <= auth["expiry"] - time.time() <= 34  # Max-Age = 35 s token - 2

    # The second load is served from __auth_<scope>: no new exchange.
    browser.refresh()
    assert _text(browser, "source") == "cookie"
    assert frontend.exchange_count == 1

    # HttpOnly: page scripts see neither; a plain cookie shows document.cookie works at all.
    browser.execute_script("document.cookie = 'visible=1; Path=/; SameSite=Lax'")
    seen = str(browser.execute_script("return document.cookie"))
    assert "visible=1" in seen
    assert "__session" not in seen and app.auth_cookie not in seen


def test_lax_cookies_ride_a_cross_site_top_level_redirect_only(
    browser: webdriver.Chrome, frontend: FrontendAPI, serve: Callable[[FrontendAPI], PageApp]
) -> None:
    app = serve(frontend)
    browser.get(app.url("/page"))
    assert _text(browser, "source") == "exchange"
    # From 127.0.0.1 (another site than localhost) a top-level 302 to localhost: Lax sends.
    browser.get(app.url("/bounce", host="127.0.0.1"))
    assert browser.current_url == app.url("/whoami")
    assert _text(browser, "user") == "user_1"
    # The same page in a cross-site iframe: Lax cookies stay home (RFC 6265bis §5.6.7.1).
    # (Chromium may also block third-party cookies outright; either way none may be sent.)
    browser.get(app.url("/frame", host="127.0.0.1"))
    WebDriverWait(browser, WAIT).until(lambda b: b.find_elements(By.ID, "f"))
    browser.switch_to.frame(browser.find_element(By.ID, "f"))
    try:
        assert _text(browser, "user") == "anonymous"
    finally:
        browser.switch_to.default_content()


def test_dev_session_in_the_url_is_exchanged_and_removed(
    browser: webdriver.Chrome, serve: Callable[[FrontendAPI], PageApp]
) -> None:
    with FrontendAPI(host="localhost", dev_sign_in=True, sign_in_user="user_dev") as frontend:
        app = serve(frontend)
        browser.get(app.url("/page?x=1"))
        assert _text(browser, "user") == "user_dev"
        # The 302 after the exchange dropped __dev_session__ from the address bar.
        assert browser.current_url == app.url("/page?x=1")
        assert frontend.exchange_count == 1
        dev_name = f"__dev_session___{app.auth_cookie[len('__auth_') :]}"
        dev = _cookie(browser, dev_name)
        assert (dev["secure"], dev["httpOnly"], dev["sameSite"]) == (True, False, "Lax")
        seen = str(browser.execute_script("return document.cookie"))
        assert dev_name in seen and app.auth_cookie not in seen
        browser.refresh()
        assert _text(browser, "source") == "cookie"
