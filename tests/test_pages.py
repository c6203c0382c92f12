"""The page pieces (wacht_auth.auth.pages, .proxies, .exchange): sign-in URLs, public URLs
behind proxies, cookies and the session exchange."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import wacht_auth
from tests.helpers import Events, FakeClock
from wacht_auth import ConfigurationError, SessionExchangeUnavailableError, Verifier
from wacht_auth._http import FetchError, http_get
from wacht_auth.auth import Paths
from wacht_auth.auth.pages import (
    Transport,
    dev_session_cookie_name,
    dev_session_cookies,
    dev_session_in_query,
    dev_session_updated_at_cookie_name,
    expired_session_cookie,
    session_cookie,
    sign_in_url,
    transport_from_cookies,
    without_dev_session,
)
from wacht_auth.exchange import Exchanged, SessionExchange
from wacht_auth.proxies import TrustedProxies, client_ip, public_url
from wacht_auth.testing import FrontendAPI

BACK = "https://app.example.com/dashboard?tab=2"


# --------------------------------------------------------------------------- the error


def test_unavailable_error_is_a_503_with_retry_after() -> None:
    error = wacht_auth.SessionExchangeUnavailableError(retry_after=12)
    assert (error.code, error.status) == ("session_exchange_unavailable", 503)
    assert error.response_headers() == {"Retry-After": "12"}
    assert error.to_dict()["error"]["code"] == "session_exchange_unavailable"
    assert SessionExchangeUnavailableError(retry_after=0).retry_after == 1
    assert "SessionExchangeUnavailableError" in wacht_auth.__all__


# --------------------------------------------------------------------------- sign-in URLs


def _split(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    (redirect,) = parse_qs(parts.query)["redirect_uri"]
    return f"{parts.scheme}://{parts.netloc}{parts.path}", redirect


@pytest.mark.parametrize(
    ("frontend", "expected"),
    [
        ("https://frontend.acme.com", "https://accounts.acme.com/sign-in"),
        ("https://frontend.eu.acme.com", "https://accounts.eu.acme.com/sign-in"),
        ("https://abc.fapi.wacht.services", "https://abc.accounts.wacht.services/sign-in"),
        ("https://acme.wacht.dev", "https://acme.accounts.wacht.dev/sign-in"),
        ("https://auth.app.acme.co.uk", "https://auth.accounts.app.acme.co.uk/sign-in"),
        ("https://Frontend.ACME.com:8443", "https://accounts.acme.com:8443/sign-in"),
        ("https://acme.com", "https://acme.com/sign-in"),
        ("https://localhost:3000", "https://localhost:3000/sign-in"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/sign-in"),
        ("http://[::1]:9000", "http://[::1]:9000/sign-in"),
        ("frontend.acme.com", "https://accounts.acme.com/sign-in"),
    ],
)
def test_sign_in_url_is_derived_from_the_frontend_host(frontend: str, expected: str) -> None:
    page, redirect = _split(sign_in_url(frontend, sign_in_url=None, redirect_uri=BACK))
    assert (page, redirect) == (expected, BACK)


def test_configured_sign_in_url_wins_and_keeps_its_query() -> None:
    url = sign_in_url(
        "https://frontend.acme.com",
        sign_in_url="https://login.acme.com/start?lang=de&redirect_uri=https://old#frag",
        redirect_uri=BACK,
    )
    parts = urlsplit(url)
    assert (parts.netloc, parts.path, parts.fragment) == ("login.acme.com", "/start", "")
    assert parse_qs(parts.query) == {"lang": ["de"], "redirect_uri": [BACK]}


def test_redirect_uri_is_fully_encoded() -> None:
    tricky = "https://app.example.com/a b?x=1&redirect_uri=evil#f"
    url = sign_in_url("https://frontend.acme.com", sign_in_url=None, redirect_uri=tricky)
    assert " " not in url and "#" not in url
    assert _split(url)[1] == tricky


@pytest.mark.parametrize("bad", ["/sign-in", "ftp://x.example/", "https://"])
def test_configured_sign_in_url_must_be_absolute_http(bad: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        sign_in_url("https://frontend.acme.com", sign_in_url=bad, redirect_uri=BACK)
    assert info.value.code == "configuration_error"


# --------------------------------------------------------------------------- proxies


@pytest.mark.parametrize(
    ("value", "hops", "networks"),
    [
        (None, 0, 0),
        (0, 0, 0),
        ("", 0, 0),
        (2, 2, 0),
        ("1", 1, 0),
        ("10.0.0.0/8, 192.168.1.7", 0, 2),
        (["10.0.0.0/8", "fd00::/8"], 0, 2),
    ],
)
def test_trusted_proxies_parse(value: Any, hops: int, networks: int) -> None:
    parsed = TrustedProxies.parse(value)
    assert (parsed.hops, len(parsed.networks)) == (hops, networks)
    assert TrustedProxies.parse(parsed) is parsed


@pytest.mark.parametrize("bad", [-1, True, "10.0.0.0/33", ["nope"], "1.2.3.4,,"])
def test_trusted_proxies_refuse_garbage(bad: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        TrustedProxies.parse(bad)
    assert "trusted_proxies" in info.value.message


def test_client_ip_without_proxies_is_the_peer() -> None:
    assert client_ip("198.51.100.7", "1.2.3.4") == "198.51.100.7"
    assert client_ip("::1", None) == "::1"
    assert client_ip(None, "1.2.3.4") is None
    assert client_ip("not-an-ip", None) is None


def test_client_ip_with_hops() -> None:
    one, two = TrustedProxies(hops=1), TrustedProxies(hops=2)
    # The client may send its own X-Forwarded-For; the proxy appends what it saw.
    assert client_ip("10.0.0.2", "6.6.6.6, 203.0.113.5", one) == "203.0.113.5"
    assert client_ip("10.0.0.2", "6.6.6.6, 203.0.113.5, 10.0.0.1", two) == "203.0.113.5"
    assert client_ip("10.0.0.2", "203.0.113.5", two) == "203.0.113.5"  # one proxy overwrote
    assert client_ip("10.0.0.2", None, one) == "10.0.0.2"  # not through the proxy
    assert client_ip("10.0.0.2", "[2001:db8::1]:4711", one) == "2001:db8::1"
    assert client_ip("10.0.0.2", "unknown", one) is None


def test_client_ip_with_networks() -> None:
    trusted = TrustedProxies.parse(["10.0.0.0/8"])
    chain = "6.6.6.6, 203.0.113.5, 10.1.1.1"
    assert client_ip("10.0.0.2", chain, trusted) == "203.0.113.5"
    assert client_ip("198.51.100.1", chain, trusted) == "198.51.100.1"  # not from a proxy
    assert client_ip("::ffff:10.0.0.2", "203.0.113.5", trusted) == "203.0.113.5"
    assert client_ip("10.0.0.2", "10.9.9.9, 10.1.1.1", trusted) == "10.9.9.9"  # all proxies
    assert client_ip("10.0.0.2", None, trusted) == "10.0.0.2"
    assert client_ip("10.0.0.2", "garbage, 10.1.1.1", trusted) is None


# --------------------------------------------------------------------------- public URLs


def test_public_url_is_the_requests_own_without_proxies() -> None:
    url = public_url(
        scheme="http",
        host="app.example.com:8080",
        path="/dash",
        query="a=1",
        peer="203.0.113.5",
        forwarded_host="evil.example",
        forwarded_proto="https",
    )
    assert url == "http://app.example.com:8080/dash?a=1"
    # Host is what the browser sent: the browser is already there.
    assert public_url(scheme="https", host="evil.example", path="/") == "https://evil.example/"


def test_public_url_behind_trusted_proxies() -> None:
    kwargs: dict[str, Any] = {
        "scheme": "http",
        "host": "10.0.0.5:8000",
        "path": "/p",
        "peer": "10.0.0.2",
        "forwarded_for": "203.0.113.5",
        "forwarded_proto": "https",
        "forwarded_host": "App.Example.com",
    }
    assert public_url(**kwargs, trusted_proxies=TrustedProxies(hops=1)) == (
        "https://app.example.com/p"
    )
    networks = TrustedProxies.parse("10.0.0.0/8")
    assert public_url(**kwargs, trusted_proxies=networks) == "https://app.example.com/p"
    outsider = dict(kwargs, peer="198.51.100.1")
    assert public_url(**outsider, trusted_proxies=networks) == "http://10.0.0.5:8000/p"
    # The value the outermost trusted proxy wrote, not one the client prepended.
    spoofed = dict(kwargs, forwarded_host="evil.example, app.example.com")
    assert public_url(**spoofed, trusted_proxies=TrustedProxies(hops=1)) == (
        "https://app.example.com/p"
    )
    # Invalid forwarded values are ignored.
    junk = dict(kwargs, forwarded_host="evil.example/@x", forwarded_proto="javascript")
    assert public_url(**junk, trusted_proxies=TrustedProxies(hops=1)) == "http://10.0.0.5:8000/p"


@pytest.mark.parametrize(
    ("scheme", "host", "expected"),
    [
        ("https", "app.example.com:443", "https://app.example.com/x"),
        ("http", "app.example.com:80", "http://app.example.com/x"),
        ("http", "[::1]:8000", "http://[::1]:8000/x"),
        ("https", "[2001:DB8:0::1]", "https://[2001:db8::1]/x"),
        ("http", "127.0.0.1:5000", "http://127.0.0.1:5000/x"),
        ("wss", "app.example.com", "https://app.example.com/x"),
    ],
)
def test_public_url_hosts_and_ports(scheme: str, host: str, expected: str) -> None:
    assert public_url(scheme=scheme, host=host, path="/x") == expected


@pytest.mark.parametrize(
    "host",
    [
        None,
        "",
        "evil.example/@app",
        "user@evil.example",
        "a b",
        "app.example.com\r\nLocation: https://evil.example",
        "app:99999",
        "[not-v6]",
        "app.example.com:80x",
    ],
)
def test_public_url_refuses_what_is_not_a_host(host: str | None) -> None:
    with pytest.raises(ValueError):
        public_url(scheme="https", host=host, path="/")


def test_public_url_encodes_path_and_query() -> None:
    url = public_url(
        scheme="https", host="app.example.com", path="//evil.example/a b\r\n", query="q=a b#x"
    )
    parts = urlsplit(url)
    assert parts.netloc == "app.example.com"
    assert parts.path == "/evil.example/a%20b%0D%0A"
    assert parts.query == "q=a%20b%23x" and parts.fragment == ""


def test_dev_session_query_helpers() -> None:
    query = "a=1&__dev_session__=dvb_x%2By&b=2"
    assert dev_session_in_query(query) == "dvb_x+y"
    assert dev_session_in_query("a=1") is None
    assert dev_session_in_query("__dev_session__=") is None
    url = "https://app.example.com/p?a=1&__dev_session__=dvb_x&b=%20&__dev_session__=2"
    assert without_dev_session(url) == "https://app.example.com/p?a=1&b=%20"
    assert without_dev_session("https://app.example.com/p?__dev_session__=x") == (
        "https://app.example.com/p"
    )


def test_page_paths() -> None:
    # One syntax with public_paths (Paths): "/app/*" is the area, "/app" itself included.
    pages = Paths(["/app/*", "/account/*"])
    assert "/app" in pages and "/app/x" in pages and "/account/settings" in pages
    assert "/application" not in pages and "/api/app" not in pages and 3 not in pages
    assert "/anything" in Paths(["/*"])
    assert not Paths() and "/x" not in Paths()
    assert list(pages) == ["/app/*", "/account/*"]
    with pytest.raises(ConfigurationError):
        Paths(["app"])


# --------------------------------------------------------------------------- cookies


def _attributes(cookie: str) -> tuple[str, set[str]]:
    first, *rest = [part.strip() for part in cookie.split(";")]
    return first, set(rest)


def test_session_cookie_attributes_and_max_age() -> None:
    cookie = session_cookie("__auth_x", "a.b.c", expires_at=1000.9, now=965.0)
    first, attributes = _attributes(cookie)
    assert first == "__auth_x=a.b.c"
    assert attributes == {"Path=/", "Max-Age=33", "HttpOnly", "Secure", "SameSite=Lax"}
    late = session_cookie("__auth_x", "a.b.c", expires_at=1000.0, now=999.0)
    assert "Max-Age=0" in late
    gone = session_cookie("__auth_x", "a.b.c", expires_at=1000.0, now=2000.0)
    assert "Max-Age=0" in gone  # never negative
    first, attributes = _attributes(expired_session_cookie("__auth_x"))
    assert first == "__auth_x=" and "Max-Age=0" in attributes and "HttpOnly" in attributes


def test_cookie_values_cannot_add_attributes() -> None:
    cookie = session_cookie("__auth_x", "v; Domain=evil.example", expires_at=100, now=0)
    assert cookie.count(";") == 5 and "Domain" not in cookie.split(";")[1]
    with pytest.raises(ValueError):
        session_cookie("bad name", "v", expires_at=100, now=0)


def test_dev_session_cookies() -> None:
    frontend = "https://acme.wacht.dev"
    assert dev_session_cookie_name(frontend) == "__dev_session___acme_wacht_dev"
    assert dev_session_updated_at_cookie_name(frontend) == (
        "__dev_session_updated_at_acme_wacht_dev"
    )
    session, updated = dev_session_cookies(frontend, "dvb_1", now=1_800_000_000.5)
    first, attributes = _attributes(session)
    assert first == "__dev_session___acme_wacht_dev=dvb_1"
    assert attributes == {"Path=/", "Secure", "SameSite=Lax"}  # readable by Wacht's browser SDK
    first, attributes = _attributes(updated)
    assert first == "__dev_session_updated_at_acme_wacht_dev=1800000000500"
    assert "HttpOnly" not in attributes


def test_transport_from_cookies_order() -> None:
    frontend = "https://acme.wacht.dev"
    dev_name = dev_session_cookie_name(frontend)
    jar = {"__session": "prod%2Bv", dev_name: "dvb_1"}
    assert transport_from_cookies(jar.get, frontend) == Transport("prod+v", dev=False)
    del jar["__session"]
    assert transport_from_cookies(jar.get, frontend) == Transport("dvb_1", dev=True)
    assert transport_from_cookies({}.get, frontend) is None
    assert "dvb_1" not in repr(Transport("dvb_1", dev=True))


# --------------------------------------------------------------------------- the exchange


def test_http_get_answers_every_status_and_keeps_every_header(frontend: FrontendAPI) -> None:
    transport = frontend.sign_in()
    frontend.set_exchange_cookies("a=1; Path=/", "b=2; Path=/")
    ok = http_get(
        frontend.url + "/session/token",
        timeout=2,
        max_bytes=1 << 16,
        headers={"Cookie": f"__session={transport}"},
    )
    assert ok.status == 200 and ok.body
    assert ok.header_all("set-cookie") == ("a=1; Path=/", "b=2; Path=/")
    assert ok.header("SET-COOKIE") == "a=1; Path=/" and ok.header("x-missing") is None
    refused = http_get(frontend.url + "/session/token", timeout=2, max_bytes=1 << 16)
    assert (refused.status, refused.body) == (401, b"")  # a non-2xx body is never read
    redirect = http_get(
        frontend.url + "/sign-in?redirect_uri=http%3A%2F%2Flocalhost%2F",
        timeout=2,
        max_bytes=1 << 16,
    )
    assert redirect.status == 302 and redirect.header("Location") == "http://localhost/"
    frontend.set_exchange_cookies()
    with pytest.raises(FetchError) as info:
        http_get(
            frontend.url + "/session/token",
            timeout=2,
            max_bytes=10,
            headers={"Cookie": f"__session={transport}"},
        )
    assert info.value.outcome == "too_large"


@pytest.fixture
def frontend(clock: FakeClock) -> Iterator[FrontendAPI]:
    with FrontendAPI(clock=clock) as api:
        yield api


def _exchange(api: FrontendAPI, clock: FakeClock, **kwargs: Any) -> SessionExchange:
    kwargs.setdefault("timeout", 2.0)
    return SessionExchange(api.url, clock=clock, **kwargs)


def test_exchange_returns_a_verifiable_token(frontend: FrontendAPI, clock: FakeClock) -> None:
    transport = frontend.sign_in("user_9")
    frontend.set_exchange_cookies("__session=rotated; Path=/; HttpOnly", "x=1; Path=/")
    result = _exchange(frontend, clock).exchange(transport, client_ip="203.0.113.5")
    assert result is not None
    assert result.expires_at == int(clock()) + 35
    assert result.set_cookies == ("__session=rotated; Path=/; HttpOnly", "x=1; Path=/")
    assert result.dev_session is None
    assert Verifier(frontend.config()).verify(result.token).user_id == "user_9"
    (request,) = frontend.exchange_requests
    assert request.headers["cookie"] == f"__session={transport}"
    assert request.headers["x-wacht-forwarded-for"] == "203.0.113.5"
    assert request.path == "/session/token"


async def test_an_empty_transport_is_anonymous_without_a_request(
    frontend: FrontendAPI, clock: FakeClock
) -> None:
    exchange = _exchange(frontend, clock)
    assert exchange.exchange("") is None
    assert await exchange.aexchange("", dev=True) is None
    assert frontend.exchange_count == 0


def test_exchange_sends_only_an_ip_as_forwarded_for(
    frontend: FrontendAPI, clock: FakeClock
) -> None:
    exchange = _exchange(frontend, clock)
    exchange.exchange(frontend.sign_in(), client_ip="1.2.3.4\r\nX-Evil: 1")
    exchange.exchange(frontend.sign_in(), client_ip=None)
    assert all("x-wacht-forwarded-for" not in r.headers for r in frontend.exchange_requests)


def test_dev_exchange_uses_the_query_and_surfaces_the_renewal(
    frontend: FrontendAPI, clock: FakeClock
) -> None:
    dev = frontend.dev_session("user_dev")
    result = _exchange(frontend, clock).exchange(dev, dev=True, client_ip="::1")
    assert result is not None and result.dev_session and result.dev_session != dev
    (request,) = frontend.exchange_requests
    assert request.dev and "cookie" not in request.headers
    assert request.headers["x-wacht-forwarded-for"] == "::1"
    assert Verifier(frontend.config()).verify(result.token).user_id == "user_dev"


def test_a_token_is_reused_until_it_nearly_expires(frontend: FrontendAPI, clock: FakeClock) -> None:
    exchange = _exchange(frontend, clock, reuse_margin=5.0)
    transport = frontend.sign_in()
    first = exchange.exchange(transport)
    assert exchange.exchange(transport) is first
    clock.advance(29)  # 35 s token, 5 s margin: reused for 30 s
    assert exchange.exchange(transport) is first
    assert frontend.exchange_count == 1
    clock.advance(1)
    second = exchange.exchange(transport)
    assert second is not None and second is not first
    assert frontend.exchange_count == 2
    # Another mode, another entry: a value is never both a production and a dev session.
    assert exchange.exchange(transport, dev=True) is None
    assert frontend.exchange_count == 3


def test_session_over_is_none_and_remembered(frontend: FrontendAPI, clock: FakeClock) -> None:
    exchange = _exchange(frontend, clock, over_memory=60.0)
    transport = frontend.sign_in()
    frontend.end_session(transport)
    assert exchange.exchange(transport) is None
    assert exchange.exchange(transport) is None
    assert frontend.exchange_count == 1
    clock.advance(61)
    assert exchange.exchange(transport) is None
    assert frontend.exchange_count == 2
    frontend.fail_exchange(403)
    assert exchange.exchange(frontend.sign_in()) is None


@pytest.mark.parametrize(("status", "retry_after", "expected"), [(500, None, 5), (503, "17", 17)])
def test_5xx_is_unavailable_for_everyone_for_a_while(
    frontend: FrontendAPI, clock: FakeClock, status: int, retry_after: str | None, expected: int
) -> None:
    exchange = _exchange(frontend, clock)
    frontend.fail_exchange(status, retry_after=retry_after)
    with pytest.raises(SessionExchangeUnavailableError) as info:
        exchange.exchange(frontend.sign_in())
    assert (info.value.code, info.value.status, info.value.retry_after) == (
        "session_exchange_unavailable",
        503,
        expected,
    )
    assert info.value.response_headers() == {"Retry-After": str(expected)}
    frontend.restore_exchange()
    # Remembered: the next request, even with another cookie, does not hit the server.
    with pytest.raises(SessionExchangeUnavailableError):
        exchange.exchange(frontend.sign_in())
    assert frontend.exchange_count == 1
    clock.advance(expected)
    assert exchange.exchange(frontend.sign_in()) is not None


def test_429_is_unavailable_for_that_session_only(frontend: FrontendAPI, clock: FakeClock) -> None:
    exchange = _exchange(frontend, clock)
    limited = frontend.sign_in()
    frontend.fail_exchange(429, retry_after=20)
    with pytest.raises(SessionExchangeUnavailableError) as info:
        exchange.exchange(limited)
    assert info.value.retry_after == 20
    frontend.restore_exchange()
    clock.advance(5)
    with pytest.raises(SessionExchangeUnavailableError) as info:
        exchange.exchange(limited)
    assert info.value.retry_after == 15
    assert exchange.exchange(frontend.sign_in()) is not None  # other browsers go on
    clock.advance(15)
    assert exchange.exchange(limited) is not None


def test_retry_after_as_http_date_and_capped(frontend: FrontendAPI, clock: FakeClock) -> None:
    when = datetime.fromtimestamp(clock() + 30, tz=timezone.utc)
    frontend.fail_exchange(503, retry_after=format_datetime(when, usegmt=True))
    exchange = _exchange(frontend, clock, max_retry_after=60.0)
    with pytest.raises(SessionExchangeUnavailableError) as info:
        exchange.exchange(frontend.sign_in())
    assert 29 <= info.value.retry_after <= 30
    exchange.forget()
    frontend.fail_exchange(503, retry_after=86400)
    with pytest.raises(SessionExchangeUnavailableError) as info:
        exchange.exchange(frontend.sign_in())
    assert info.value.retry_after == 60


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"data": null}',
        b'{"data": {"token": "", "expires": 1}}',
        b'{"data": {"token": "a.b.c"}}',
        b'{"data": {"token": "a.b.c", "expires": true}}',
        b'{"data": {"token": "a b", "expires": 1}}',
    ],
)
def test_a_malformed_2xx_is_unavailable_not_a_sign_out(
    frontend: FrontendAPI, clock: FakeClock, body: bytes
) -> None:
    frontend.fail_exchange(200, body=body)
    with pytest.raises(SessionExchangeUnavailableError):
        _exchange(frontend, clock).exchange(frontend.sign_in())


def test_redirect_is_unavailable_and_never_followed(
    frontend: FrontendAPI, clock: FakeClock
) -> None:
    frontend.fail_exchange(302)
    with pytest.raises(SessionExchangeUnavailableError):
        _exchange(frontend, clock).exchange(frontend.sign_in())
    assert frontend.exchange_count == 1


def test_a_hanging_frontend_api_costs_one_deadline(frontend: FrontendAPI, clock: FakeClock) -> None:
    frontend.hang_exchange(5)
    exchange = _exchange(frontend, clock, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(SessionExchangeUnavailableError):
        exchange.exchange(frontend.sign_in())
    assert time.monotonic() - started < 2
    started = time.monotonic()
    with pytest.raises(SessionExchangeUnavailableError):  # remembered: no second wait
        exchange.exchange(frontend.sign_in())
    assert time.monotonic() - started < 0.1


def test_an_unreachable_frontend_api_is_unavailable(
    frontend: FrontendAPI, clock: FakeClock
) -> None:
    transport = frontend.sign_in()
    frontend.down()
    with pytest.raises(SessionExchangeUnavailableError):
        _exchange(frontend, clock).exchange(transport)


def test_50_threads_make_one_exchange(frontend: FrontendAPI, clock: FakeClock) -> None:
    exchange = _exchange(frontend, clock)
    transport = frontend.sign_in()
    frontend.hang_exchange(0.3)  # every thread arrives while the first exchange runs
    results: list[Exchanged | None] = []
    errors: list[BaseException] = []
    start = threading.Barrier(50)

    def worker() -> None:
        start.wait(5)
        try:
            results.append(exchange.exchange(transport))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors and len(results) == 50
    assert frontend.exchange_count == 1
    assert all(r is results[0] for r in results) and results[0] is not None


async def test_50_tasks_make_one_exchange(frontend: FrontendAPI, clock: FakeClock) -> None:
    exchange = _exchange(frontend, clock)
    transport = frontend.sign_in()
    frontend.hang_exchange(0.3)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(ticker())
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(exchange.aexchange(transport) for _ in range(50))), 10
        )
    finally:
        beat.cancel()
    assert frontend.exchange_count == 1
    assert all(r is results[0] for r in results) and results[0] is not None
    assert ticks >= 10  # the loop kept running while the exchange waited 0.3 s


async def test_async_failures_and_threads_share_one_flight(
    frontend: FrontendAPI, clock: FakeClock
) -> None:
    exchange = _exchange(frontend, clock)
    transport = frontend.sign_in()
    frontend.hang_exchange(0.3)
    thread_result: list[Exchanged | None] = []
    thread = threading.Thread(target=lambda: thread_result.append(exchange.exchange(transport)))
    thread.start()
    await asyncio.sleep(0.05)
    result = await asyncio.wait_for(exchange.aexchange(transport), 5)
    thread.join(5)
    assert result is thread_result[0] and frontend.exchange_count == 1
    frontend.restore_exchange()
    frontend.fail_exchange(502)
    with pytest.raises(SessionExchangeUnavailableError):
        await asyncio.wait_for(exchange.aexchange(frontend.sign_in()), 5)


def test_the_cache_is_bounded(frontend: FrontendAPI, clock: FakeClock) -> None:
    exchange = _exchange(frontend, clock, max_entries=2)
    first, second, third = (frontend.sign_in() for _ in range(3))
    for transport in (first, second, third):
        exchange.exchange(transport)
    assert frontend.exchange_count == 3
    exchange.exchange(third)
    assert frontend.exchange_count == 3
    exchange.exchange(first)  # evicted, the oldest
    assert frontend.exchange_count == 4


def test_transport_never_shows_in_logs_reprs_or_errors(
    frontend: FrontendAPI, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="wacht_auth")
    events = Events()
    exchange = _exchange(frontend, clock, on_event=events)
    transport = frontend.sign_in()
    dev = frontend.dev_session()
    result = exchange.exchange(transport)
    dev_result = exchange.exchange(dev, dev=True)
    frontend.fail_exchange(500)
    exchange.forget()
    seen: list[str] = []
    for value in (transport, dev):
        with pytest.raises(SessionExchangeUnavailableError) as info:
            exchange.exchange(value, dev=value is dev)
        seen += [str(info.value), repr(info.value), info.value.message]
        exchange.forget()
    frontend.down()
    with pytest.raises(SessionExchangeUnavailableError) as info:
        exchange.exchange(dev, dev=True)
    seen += [str(info.value), repr(info.value)]
    # The library's records only: the fake server (wacht_auth.testing) logs its request lines.
    logged = [r.getMessage() for r in caplog.records if r.name != "wacht_auth.testing"]
    seen += [repr(result), repr(dev_result), repr(exchange), *logged, repr(events.items)]
    assert events.named("session_exchange")
    text = "\n".join(seen)
    for secret in (transport, dev):
        assert secret not in text
    assert result is not None and result.token not in repr(result)


@pytest.mark.parametrize(
    ("url", "timeout"),
    [
        ("http://frontend.acme.com", 5.0),
        ("ftp://127.0.0.1", 5.0),
        ("https://frontend.acme.com", 0),
        ("https://frontend.acme.com", 61),
    ],
)
def test_exchange_settings_are_checked(url: str, timeout: float) -> None:
    with pytest.raises(ConfigurationError) as info:
        SessionExchange(url, timeout=timeout)
    assert info.value.code == "configuration_error"


def test_the_testing_example_of_docs_pages_runs() -> None:
    """The "Testing your pages" example of docs/pages.md."""
    text = (Path(__file__).parent.parent / "docs" / "pages.md").read_text()
    section = text[text.index("## Testing your pages") :]
    code = section[section.index("```python\n") + 10 :]
    exec(compile(code[: code.index("```")], "docs/pages.md", "exec"), {})
