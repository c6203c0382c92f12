"""Pages under a hostile network, in the core (docs/pages.md, "Running behind a proxy and a
cache"): private answers for cookie-signed requests, the transport token checked before any
exchange, bounded exchanges, development-session links made clean on any route, the one Host
rule for redirects, and page refusals handed to the framework."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.helpers import FakeClock
from wacht_auth import SessionExchangeUnavailableError, Verifier
from wacht_auth.auth import Authenticator, AuthState, PageError, Redirect
from wacht_auth.auth.pages import PRIVATE, merged_header
from wacht_auth.auth.signout import asign_out, sign_out
from wacht_auth.errors import CsrfFailedError, PermissionDeniedError, TokenMissingError
from wacht_auth.exchange import SessionExchange
from wacht_auth.proxies import client_ip, public_url
from wacht_auth.testing import FrontendAPI


@dataclass
class Page:
    """A :class:`~wacht_auth.auth.RequestView` of a browser's request."""

    path: str = "/page"
    query_string: str = ""
    cookies: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    scheme: str = "http"
    host_header: str | None = "app.test"

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def cookie(self, name: str) -> str | None:
        return self.cookies.get(name)

    def host(self) -> str | None:
        return self.host_header

    def client_ip(self) -> str | None:
        return "203.0.113.7"

    def query(self) -> str:
        return self.query_string


@pytest.fixture
def frontend() -> Iterator[FrontendAPI]:
    with FrontendAPI() as api:
        yield api


def _layer(api: FrontendAPI, **options: Any) -> Authenticator:
    return Authenticator(Verifier(api.config()), **options)


def _private(state: AuthState) -> bool:
    headers = dict((k, v) for k, v in state.response_headers if k != "Set-Cookie")
    return headers.get("Vary") == "Cookie" and headers.get("Cache-Control") == "private, no-store"


# --------------------------------------------------------------------------- shared caches


def test_a_cookie_signed_state_is_private_and_a_bearer_one_is_not(frontend: FrontendAPI) -> None:
    layer = _layer(frontend)
    name = frontend.config().cookie_name or ""
    token = frontend.token("user_1")
    by_cookie = layer.resolve(Page(cookies={name: token}))
    assert by_cookie.user_id == "user_1" and _private(by_cookie)
    by_bearer = layer.resolve(Page(headers={"authorization": f"Bearer {token}"}))
    assert by_bearer.user_id == "user_1" and by_bearer.response_headers == ()
    assert layer.resolve(Page()).response_headers == ()  # anonymous: nothing to hide


def test_every_answer_that_sets_our_cookies_is_private(frontend: FrontendAPI) -> None:
    layer = _layer(frontend)
    signed = layer.resolve(Page(cookies={"__session": frontend.sign_in()}))
    assert signed.user_id == "user_1" and _private(signed)
    assert any(k == "Set-Cookie" for k, _ in signed.response_headers)
    ended = frontend.sign_in()
    frontend.end_session(ended)
    over = layer.resolve(Page(cookies={"__session": ended}))
    assert over.session is None and _private(over)
    assert any("Max-Age=0" in v for k, v in over.response_headers if k == "Set-Cookie")


@pytest.mark.parametrize(
    ("name", "current", "value", "expected"),
    [
        ("Vary", None, "Cookie", "Cookie"),
        ("Vary", "Accept-Encoding", "Cookie", "Accept-Encoding, Cookie"),
        ("vary", "cookie, Accept", "Cookie", "cookie, Accept"),
        ("Vary", "*", "Cookie", "*"),
        ("Cache-Control", "public, max-age=600", "private, no-store", "private, no-store"),
        ("X-RateLimit-Remaining", "3", "2", "2"),
    ],
)
def test_merged_header(name: str, current: str | None, value: str, expected: str) -> None:
    assert merged_header(name, current, value) == expected


def test_private_is_what_the_docs_promise() -> None:
    assert dict(PRIVATE) == {"Vary": "Cookie", "Cache-Control": "private, no-store"}


# --------------------------------------------------------------------------- transport tokens


@pytest.mark.parametrize(
    "variant", ["junk", "looks_like_a_jwt", "expired", "forged", "session_token", "no_sess"]
)
def test_a_transport_cookie_is_checked_before_any_exchange(
    frontend: FrontendAPI, variant: str
) -> None:
    layer = _layer(frontend)
    value = {
        "junk": lambda: "sess_not_a_token",
        "looks_like_a_jwt": lambda: "eyJhbGciOiJFUzI1NiJ9.eyJzZXNzIjoieCJ9.c2ln",
        "expired": lambda: frontend.transport_token(lifetime=-120),
        "forged": lambda: frontend.forged_token(None, claims={"sub": None, "sess": "s"}),
        "session_token": lambda: frontend.token("user_1"),
        "no_sess": lambda: frontend.transport_token(claims={"sess": None}),
    }[variant]()
    state = layer.resolve(Page(cookies={"__session": value}))
    assert state.session is None and state.error is None
    assert frontend.exchange_count == 0


def test_a_cookie_goes_only_to_its_own_deployments_frontend_api() -> None:
    # Deployment B's app mounted inside A's: the browser sends A's __session to both.
    with FrontendAPI() as a, FrontendAPI() as b:
        cookie = a.sign_in()
        state = _layer(b).resolve(Page(cookies={"__session": cookie}))
        assert state.session is None and b.exchange_count == 0
        assert _layer(a).resolve(Page(cookies={"__session": cookie})).user_id == "user_1"
        assert a.exchange_count == 1
        # A verifier trusting both deployments still exchanges only its own cookies.
        both = Authenticator(Verifier([b.config(), a.config()]))
        assert both.resolve(Page(cookies={"__session": cookie})).session is None
        assert b.exchange_count == 0


def test_verify_transport_codes(frontend: FrontendAPI) -> None:
    verifier = Verifier(frontend.config())
    claims = verifier.verify_transport(frontend.transport_token(session_id="sess_7"))
    assert claims["sess"] == "sess_7"
    with pytest.raises(TypeError):
        claims["sess"] = "other"  # type: ignore[index]
    cases = {
        "token_expired": frontend.transport_token(lifetime=-120),
        "claims_invalid": frontend.token("user_1"),
        "signature_invalid": frontend.forged_token(None, claims={"sub": None, "sess": "s"}),
        "token_malformed": "junk",
    }
    for code, token in cases.items():
        with pytest.raises(Exception) as info:
            verifier.verify_transport(token)
        assert getattr(info.value, "code", None) == code, code
    # Transport tokens never enter the session cache, and sessions still refuse them.
    token = frontend.transport_token()
    verifier.verify_transport(token)
    assert verifier.cached(token) is None
    with pytest.raises(Exception) as refused:
        verifier.verify(token)
    assert getattr(refused.value, "code", None) == "claims_invalid"


async def test_averify_transport(frontend: FrontendAPI) -> None:
    verifier = Verifier(frontend.config())
    claims = await verifier.averify_transport(frontend.transport_token(session_id="sess_8"))
    assert claims["sess"] == "sess_8"


def test_a_development_session_is_still_exchanged_opaque(frontend: FrontendAPI) -> None:
    layer = _layer(frontend)
    dev = frontend.dev_session("user_4")
    name = f"__dev_session___{(frontend.config().cookie_name or '')[len('__auth_') :]}"
    state = layer.resolve(Page(cookies={name: dev}))
    assert state.user_id == "user_4" and frontend.exchange_count == 1


# --------------------------------------------------------------------------- the bound


async def test_200_concurrent_exchanges_are_bounded(frontend: FrontendAPI) -> None:
    layer = _layer(frontend)
    assert layer.handshake.exchange is not None
    bound = layer.handshake.exchange.max_concurrent
    cookies = [frontend.sign_in(f"user_{i}") for i in range(200)]
    frontend.hang_exchange(1.0)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        for _ in range(400):  # bounded: at most 4 s
            running = [t for t in threading.enumerate() if t.name == "wacht-auth-session-exchange"]
            peak = max(peak, len(running))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    started = time.monotonic()
    try:
        states = await asyncio.wait_for(
            asyncio.gather(*(layer.aresolve(Page(cookies={"__session": c})) for c in cookies)),
            15,
        )
    finally:
        watcher.cancel()
        frontend.restore_exchange()
    busy = [s for s in states if s.error is not None]
    assert all(s.error.code == "session_exchange_unavailable" for s in busy if s.error)
    assert len(busy) >= 200 - bound
    assert frontend.exchange_count <= bound
    assert peak <= bound
    assert time.monotonic() - started < 10


async def test_200_concurrent_junk_cookies_cost_no_exchange(frontend: FrontendAPI) -> None:
    # Valid-looking: JWTs of the deployment's shape, signed by a key that is not its own.
    layer = _layer(frontend)
    cookies = [frontend.forged_token(None, claims={"sess": f"s{i}"}) for i in range(200)]
    frontend.hang_exchange(1.0)
    started = time.monotonic()
    try:
        states = await asyncio.wait_for(
            asyncio.gather(*(layer.aresolve(Page(cookies={"__session": c})) for c in cookies)),
            15,
        )
    finally:
        frontend.restore_exchange()
    assert all(s.session is None and s.error is None for s in states)
    assert frontend.exchange_count == 0
    assert time.monotonic() - started < 5


def test_threads_over_the_bound_get_a_quick_503(frontend: FrontendAPI) -> None:
    exchange = SessionExchange(frontend.url, timeout=3.0, max_concurrent=2, clock=FakeClock())
    cookies = [frontend.sign_in() for _ in range(5)]
    frontend.hang_exchange(1.0)
    outcomes: list[str] = []
    quick: list[float] = []

    def worker(cookie: str) -> None:
        began = time.monotonic()
        try:
            exchange.exchange(cookie)
            outcomes.append("ok")
        except SessionExchangeUnavailableError as error:
            outcomes.append(error.code)
            quick.append(time.monotonic() - began)

    threads = [threading.Thread(target=worker, args=(c,)) for c in cookies]
    try:
        for thread in threads:
            thread.start()
            time.sleep(0.05)  # the first two are running when the others arrive
        for thread in threads:
            thread.join(10)
    finally:
        frontend.restore_exchange()
    assert sorted(outcomes) == ["ok", "ok", *["session_exchange_unavailable"] * 3]
    assert all(seconds < 0.5 for seconds in quick)
    assert frontend.exchange_count == 2


# --------------------------------------------------------------------------- development links


def test_a_development_link_is_made_clean_on_any_route(frontend: FrontendAPI) -> None:
    layer = _layer(frontend)  # no protect_all, no page_paths
    page = Page("/public", f"a=1&__dev_session__={frontend.dev_session()}&b=2")
    assert layer.dev_link(page.method, page.query())
    state = layer.resolve(page)
    assert state.user_id == "user_1"
    assert layer.refusal(page, state) == Redirect("http://app.test/public?a=1&b=2")


def test_a_development_link_wins_over_a_signed_in_cookie(frontend: FrontendAPI) -> None:
    layer = _layer(frontend)
    name = frontend.config().cookie_name or ""
    page = Page(
        "/x", f"__dev_session__={frontend.dev_session('user_2')}", {name: frontend.token("u")}
    )
    state = layer.resolve(page)
    assert state.user_id == "user_2" and state.redirect == "http://app.test/x"


def test_no_link_no_redirect(frontend: FrontendAPI) -> None:
    layer = _layer(frontend)
    assert not layer.dev_link("GET", "q=__dev_session__")
    assert not layer.dev_link("POST", "__dev_session__=abc")
    assert layer.refusal(Page(), layer.resolve(Page())) is None


@pytest.mark.parametrize(
    "host", ["evil.example/@app.test", "evil.example@app.test", "a b", None, "app.test, evil"]
)
def test_a_bad_host_never_names_the_redirect(frontend: FrontendAPI, host: str | None) -> None:
    layer = _layer(frontend)
    page = Page("//evil.example/x", f"__dev_session__={frontend.dev_session()}", host_header=host)
    state = layer.resolve(page)
    assert state.redirect == "/evil.example/x"  # relative: the browser's own host


# --------------------------------------------------------------------------- proxies


def test_forwarded_fields_are_trusted_from_the_right() -> None:
    # HAProxy's "option forwardfor" appends a line; the adapter joins the lines in order.
    joined = "6.6.6.6, 198.51.100.9"
    assert client_ip("10.0.0.2", joined, None) == "10.0.0.2"
    from wacht_auth.proxies import TrustedProxies

    one = TrustedProxies.parse(1)
    assert client_ip("10.0.0.2", joined, one) == "198.51.100.9"
    url = public_url(
        scheme="http",
        host="app.test",
        path="/p",
        peer="10.0.0.2",
        forwarded_for=joined,
        forwarded_host="evil.example, app.example.com",
        forwarded_proto="http, https",
        trusted_proxies=one,
    )
    assert url == "https://app.example.com/p"


# --------------------------------------------------------------------------- page refusals


def test_a_page_refusal_goes_to_the_framework(frontend: FrontendAPI) -> None:
    layer = _layer(frontend, protect_all=True, page_paths=["/page"])
    csrf = layer.page_answer(Page(), CsrfFailedError())
    assert isinstance(csrf, PageError) and csrf.error.code == "csrf_failed"
    denied = layer.page_answer(Page(), PermissionDeniedError())
    assert isinstance(denied, PageError)
    no_host = layer.page_answer(Page(host_header=None), TokenMissingError())
    assert isinstance(no_host, PageError) and no_host.error.status == 401
    api = layer.page_answer(Page("/api"), PermissionDeniedError(), page=False)
    assert isinstance(api, PermissionDeniedError)


# --------------------------------------------------------------------------- sign-out


def _cookies(headers: tuple[tuple[str, str], ...]) -> list[str]:
    return [v for k, v in headers if k == "Set-Cookie"]


def test_sign_out_ends_the_session_upstream_and_deletes_our_cookies(
    frontend: FrontendAPI,
) -> None:
    layer = _layer(frontend)
    transport = frontend.sign_in()
    page = Page(cookies={"__session": transport})
    assert layer.resolve(page).user_id == "user_1"
    post = Page("/sign-out", cookies={"__session": transport}, method="POST",
                headers={"origin": "http://app.test"})  # fmt: skip
    done = sign_out(layer, post, next="/bye")
    assert (done.status, done.location) == (303, "/bye")
    cookies = _cookies(done.headers)
    name = frontend.config().cookie_name or ""
    assert any(c.startswith(f"{name}=;") and "Max-Age=0" in c for c in cookies)
    assert any(c.startswith("__dev_session___") and "Max-Age=0" in c for c in cookies)
    assert any(c.startswith("__dev_session_updated_at_") for c in cookies)
    assert any(c.startswith("__session=;") for c in cookies)  # the frontend API's own
    assert dict(PRIVATE).items() <= dict(done.headers).items()
    assert frontend.sign_out_count == 1
    # The session is over: the cached exchange is never reused, the cookie signs no one in.
    assert layer.resolve(Page(cookies={"__session": transport})).session is None


async def test_asign_out_and_a_development_session(frontend: FrontendAPI) -> None:
    layer = _layer(frontend)
    dev = frontend.dev_session()
    name = f"__dev_session___{(frontend.config().cookie_name or '')[len('__auth_') :]}"
    post = Page("/sign-out", cookies={name: dev}, method="POST",
                headers={"origin": "http://app.test"})  # fmt: skip
    done = await asign_out(layer, post)
    assert done.location == "/" and frontend.sign_out_count == 1
    assert (await layer.aresolve(Page(cookies={name: dev}))).session is None


def test_sign_out_refuses_a_get_and_a_foreign_post(frontend: FrontendAPI) -> None:
    layer = _layer(frontend)
    transport = frontend.sign_in()
    for page in (
        Page("/sign-out", cookies={"__session": transport}),
        Page("/sign-out", cookies={"__session": transport}, method="POST",
             headers={"origin": "https://evil.example"}),
    ):  # fmt: skip
        with pytest.raises(CsrfFailedError):
            sign_out(layer, page)
    assert frontend.sign_out_count == 0


def test_sign_out_sends_nothing_upstream_for_junk_and_survives_a_dead_frontend(
    frontend: FrontendAPI,
) -> None:
    layer = _layer(frontend)
    post = {"method": "POST", "headers": {"origin": "http://app.test"}}
    junk = sign_out(layer, Page("/s", cookies={"__session": "junk"}, **post))  # type: ignore[arg-type]
    assert frontend.sign_out_count == 0 and _cookies(junk.headers)
    transport = frontend.sign_in()
    frontend.down()
    done = sign_out(layer, Page("/s", cookies={"__session": transport}, **post))  # type: ignore[arg-type]
    assert any("Max-Age=0" in c for c in _cookies(done.headers))


@pytest.mark.parametrize("bad", ["//evil.example", "evil.example", "/\\evil", "javascript:x"])
def test_sign_out_next_is_a_path_or_an_absolute_url(frontend: FrontendAPI, bad: str) -> None:
    post = Page("/s", method="POST", headers={"origin": "http://app.test"})
    with pytest.raises(ValueError):
        sign_out(_layer(frontend), post, next=bad)
    assert sign_out(_layer(frontend), post, next="https://x.example/").location
