"""wacht_auth.testing.FrontendAPI: the fake frontend API that pages tests sign in through."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.helpers import FakeClock
from wacht_auth import Verifier, WachtAuthError
from wacht_auth._http import http_get
from wacht_auth.testing import JWKS_PATH, SESSION_TOKEN_PATH, SIGN_IN_PATH, FrontendAPI

TIMEOUT = 5.0


@pytest.fixture
def frontend(clock: FakeClock) -> Iterator[FrontendAPI]:
    with FrontendAPI(clock=clock) as api:
        yield api


def _exchange(api: FrontendAPI, transport: str, *, dev: bool = False) -> tuple[int, dict, dict]:
    url = api.url + SESSION_TOKEN_PATH
    headers = {"X-Wacht-Forwarded-For": "203.0.113.9"}
    if dev:
        url += "?__dev_session__=" + quote(transport, safe="")
    else:
        headers["Cookie"] = "__session=" + transport
    answer = http_get(url, timeout=TIMEOUT, max_bytes=1 << 16, headers=headers)
    body = json.loads(answer.body) if answer.body else {}
    return answer.status, body, {k.lower(): v for k, v in answer.headers}


def test_serves_jwks_and_exchanges_a_session_it_signed_in(
    frontend: FrontendAPI, clock: FakeClock
) -> None:
    keys = http_get(frontend.url + JWKS_PATH, timeout=TIMEOUT, max_bytes=1 << 16)
    assert keys.status == 200 and json.loads(keys.body)["keys"]
    transport = frontend.sign_in("user_42")
    status, body, _ = _exchange(frontend, transport)
    assert status == 200
    data = body["data"]
    assert data["expires"] == (int(clock()) + 35) * 1000
    session = Verifier(frontend.config()).verify(data["token"])
    assert session.user_id == "user_42"
    assert frontend.exchange_count == 1
    request = frontend.exchange_requests[0]
    assert request.headers["x-wacht-forwarded-for"] == "203.0.113.9"
    assert request.dev is False


def test_transport_token_is_exchangeable_but_never_a_session(frontend: FrontendAPI) -> None:
    transport = frontend.transport_token()
    with pytest.raises(WachtAuthError) as info:
        Verifier(frontend.config()).verify(transport)
    assert info.value.code == "claims_invalid"
    status, body, _ = _exchange(frontend, transport)
    assert status == 200 and body["data"]["token"] != transport


def test_unknown_and_ended_sessions_get_401(frontend: FrontendAPI) -> None:
    assert _exchange(frontend, "not-a-session")[0] == 401
    transport = frontend.sign_in()
    frontend.end_session(transport)
    assert _exchange(frontend, transport)[0] == 401
    other = frontend.sign_in()
    frontend.end_all_sessions()
    assert _exchange(frontend, other)[0] == 401
    # A production session is not a development one, nor the other way round.
    dev = frontend.dev_session()
    assert _exchange(frontend, dev)[0] == 401
    assert _exchange(frontend, frontend.sign_in(), dev=True)[0] == 401


def test_dev_session_is_exchanged_from_the_query_and_renewed(frontend: FrontendAPI) -> None:
    dev = frontend.dev_session("user_7")
    status, body, headers = _exchange(frontend, dev, dev=True)
    assert status == 200
    renewed = headers["x-development-session"]
    assert renewed and renewed != dev
    assert Verifier(frontend.config()).verify(body["data"]["token"]).user_id == "user_7"
    assert _exchange(frontend, renewed, dev=True)[0] == 200
    assert frontend.exchange_requests[0].dev is True
    assert "cookie" not in frontend.exchange_requests[0].headers


def test_exchange_cookies_failures_and_restore(frontend: FrontendAPI) -> None:
    transport = frontend.sign_in()
    frontend.set_exchange_cookies("__session=rotated; Path=/", "other=1; Path=/")
    answer = http_get(
        frontend.url + SESSION_TOKEN_PATH,
        timeout=TIMEOUT,
        max_bytes=1 << 16,
        headers={"Cookie": "__session=" + transport},
    )
    assert answer.header_all("Set-Cookie") == ("__session=rotated; Path=/", "other=1; Path=/")
    frontend.fail_exchange(429, retry_after=7)
    status, _, headers = _exchange(frontend, transport)
    assert (status, headers["retry-after"]) == (429, "7")
    frontend.fail_exchange(500)
    assert _exchange(frontend, transport)[0] == 500
    frontend.fail_exchange(None)
    assert _exchange(frontend, transport)[0] == 200
    frontend.fail_exchange(503)
    frontend.restore_exchange()
    assert _exchange(frontend, transport)[0] == 200
    assert frontend.exchange_count == 5
    frontend.reset_exchange_count()
    assert frontend.exchange_count == 0 and frontend.exchange_requests == ()


def test_hang_is_bounded_and_cut_short_by_stop(clock: FakeClock) -> None:
    api = FrontendAPI(clock=clock).start()
    try:
        api.hang_exchange(0.3)
        started = time.monotonic()
        status, _, _ = _exchange(api, api.sign_in())
        assert status == 200 and 0.25 < time.monotonic() - started < 3
        api.hang_exchange(1000)  # capped at MAX_DELAY
        with pytest.raises(ValueError):
            api.hang_exchange(-1)
    finally:
        started = time.monotonic()
        api.stop()
        assert time.monotonic() - started < 6


def test_sign_in_page_sets_session_and_redirects_back(frontend: FrontendAPI) -> None:
    back = "http://localhost:8000/dashboard?tab=1"
    answer = http_get(
        f"{frontend.url}{SIGN_IN_PATH}?redirect_uri={quote(back, safe='')}",
        timeout=TIMEOUT,
        max_bytes=1 << 16,
    )
    assert answer.status == 302
    assert answer.header("Location") == back
    cookie = answer.header("Set-Cookie")
    assert cookie is not None
    attributes = [part.strip() for part in cookie.split(";")]
    assert attributes[0].startswith("__session=")
    assert {"Path=/", "HttpOnly", "Secure", "SameSite=Lax"} <= set(attributes[1:])
    transport = attributes[0].partition("=")[2]
    assert _exchange(frontend, transport)[0] == 200
    assert frontend.sign_in_count == 1
    assert frontend.sign_in_url == frontend.url + "/sign-in"


def test_dev_sign_in_hands_the_session_in_the_url(clock: FakeClock) -> None:
    with FrontendAPI(clock=clock, dev_sign_in=True, sign_in_user="user_dev") as api:
        back = "http://127.0.0.1:8000/page?x=1"
        answer = http_get(
            f"{api.url}{SIGN_IN_PATH}?redirect_uri={quote(back, safe='')}",
            timeout=TIMEOUT,
            max_bytes=1 << 16,
        )
        assert answer.status == 302 and answer.header("Set-Cookie") is None
        location = answer.header("Location") or ""
        assert location.startswith("http://127.0.0.1:8000/page?x=1&__dev_session__=")
        dev = parse_qs(urlsplit(location).query)["__dev_session__"][0]
        status, body, _ = _exchange(api, dev, dev=True)
        assert status == 200
        assert Verifier(api.config()).verify(body["data"]["token"]).user_id == "user_dev"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "", "javascript:alert(1)"]
)
def test_sign_in_page_never_redirects_off_the_machine(frontend: FrontendAPI, target: str) -> None:
    answer = http_get(
        f"{frontend.url}{SIGN_IN_PATH}?redirect_uri={quote(target, safe='')}",
        timeout=TIMEOUT,
        max_bytes=1 << 16,
    )
    assert answer.status == 400 and answer.header("Location") is None


def test_other_paths_still_404(frontend: FrontendAPI) -> None:
    assert http_get(frontend.url + "/nope", timeout=TIMEOUT, max_bytes=1024).status == 404
