"""Key fetching, caching and refreshing (docs/keys.md), against a real loopback key server.

Time comes from a fake clock shared by the issuer (token ``iat``) and the config (freshness,
cooldown, stale-if-error); network timeouts are real but kept at or below 2 s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.helpers import Events, FakeClock
from wacht_auth.config import Config
from wacht_auth.errors import ConfigurationError, JWKSUnavailableError, WachtAuthError
from wacht_auth.keyset import (
    MIN_MAX_AGE,
    FetchError,
    KeySetState,
    fetch_jwks,
    freshness,
    load_jwks,
)
from wacht_auth.testing import Issuer
from wacht_auth.verifier import Verifier

LONG = 24 * 3600  # token lifetime that outlives every clock jump in these tests
#: What a caller may take beyond ``jwks_timeout`` (scheduling on a busy 2-core machine).
MARGIN = 0.5


def fetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("wacht-auth-jwks")]


@pytest.fixture(autouse=True)
def no_fetch_outlives_its_test() -> Iterator[None]:
    """Every key fetch a test starts (background refreshes too) ends within its deadline."""
    yield
    for thread in fetch_threads():
        thread.join(timeout=3)
    assert not fetch_threads(), "a key fetch thread outlived its deadline"


def until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait (bounded) for a background refresh to have done something observable."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for a background refresh"
        time.sleep(0.01)


@pytest.fixture
def kid_issuer(clock: FakeClock) -> Iterator[Issuer]:
    with Issuer(clock=clock, include_kid=True) as issuer:
        yield issuer


def config(issuer: Issuer, **overrides: Any) -> Config:
    values: dict[str, Any] = {"jwks_timeout": 1.0}
    values.update(overrides)
    return issuer.config(**values)


def code_of(verifier: Verifier, token: str) -> str:
    with pytest.raises(WachtAuthError) as info:
        verifier.verify(token)
    return info.value.code


# --------------------------------------------------------------------------- pure policy


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 600),
        ("max-age=120", 120),
        ("public, max-age=300, must-revalidate", 300),
        ("max-age=5", MIN_MAX_AGE),
        ("max-age=0", MIN_MAX_AGE),
        ("max-age=86400", 600),
        ("no-store", 600),
        ("max-age=abc", 600),
    ],
)
def test_freshness_uses_smaller_cache_control_but_not_below_60(
    header: str | None, expected: float
) -> None:
    assert freshness(600, header) == expected


def test_freshness_never_exceeds_a_small_configured_age() -> None:
    assert freshness(30, "max-age=120") == 30


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        (b"<html>down</html>", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"[]", "invalid_jwks"),
        (b'{"keys": {}}', "invalid_jwks"),
        (b'{"keys": []}', "no_usable_keys"),
        (b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', "no_usable_keys"),
    ],
)
def test_bad_bodies_are_failed_fetches(body: bytes, outcome: str) -> None:
    with pytest.raises(FetchError) as info:
        load_jwks(body)
    assert info.value.outcome == outcome


def test_state_lifecycle() -> None:
    state = KeySetState(max_age=600, cooldown=30, stale_if_error=3600)
    assert state.due(0) == "first_use"
    state.start(0)
    assert state.due(10) is None  # cooldown after an attempt, even a failed one
    assert state.retry_after(10) == 20
    assert state.due(30) == "first_use"
    body = json.dumps(Issuer().jwks()).encode()
    index, _, fingerprint = load_jwks(body)
    assert state.succeed(30, index, fingerprint, 600) is False  # a first load replaces nothing
    assert state.is_fresh(629) and not state.is_fresh(630)
    assert state.due(630) == "expired"
    assert state.usable(630 + 3599) is index
    assert state.usable(630 + 3600) is None
    # The same keys again: no change, and the same index object stays in place.
    again, _, same = load_jwks(body)
    assert state.succeed(700, again, same, 600) is False
    assert state.index is index
    other, _, different = load_jwks(json.dumps(Issuer().jwks()).encode())
    assert state.succeed(800, other, different, 600) is True  # a rotation replaced the set
    assert state.index is other
    generation = state.generation
    state.reset()
    assert state.index is None and state.due(700) == "first_use"
    assert state.generation == generation + 1


# --------------------------------------------------------------------------- lazy fetch, freshness


def test_fetch_is_lazy_and_happens_once(issuer: Issuer, clock: FakeClock) -> None:
    verifier = Verifier(config(issuer))
    assert issuer.fetch_count == 0
    for _ in range(5):
        verifier.verify(issuer.token(lifetime=LONG))
    assert issuer.fetch_count == 1


def test_prefetch_fetches_eagerly(issuer: Issuer) -> None:
    events = Events()
    verifier = Verifier(config(issuer, on_event=events))
    verifier.prefetch()
    assert issuer.fetch_count == 1
    verifier.verify(issuer.token())
    assert issuer.fetch_count == 1
    assert [e["reason"] for e in events.named("jwks_fetch")] == ["prefetch"]


async def test_aprefetch_fetches_eagerly(issuer: Issuer) -> None:
    verifier = Verifier(config(issuer))
    await verifier.aprefetch()
    assert issuer.fetch_count == 1


def test_keys_expire_after_max_age(issuer: Issuer, clock: FakeClock) -> None:
    events = Events()
    verifier = Verifier(config(issuer, on_event=events, token_cache_size=0))
    token = issuer.token(lifetime=LONG)
    verifier.verify(token)
    clock.advance(599)
    verifier.verify(token)
    assert issuer.fetch_count == 1
    clock.advance(2)
    verifier.verify(token)  # served by the expired keys; the refresh runs in the background
    until(lambda: len(events.named("jwks_fetch")) == 2)
    assert issuer.fetch_count == 2
    assert [e["reason"] for e in events.named("jwks_fetch")] == ["first_use", "expired"]


def test_smaller_cache_control_max_age_wins(issuer: Issuer, clock: FakeClock) -> None:
    issuer.set_cache_control("public, max-age=120")
    verifier = Verifier(config(issuer, token_cache_size=0))
    token = issuer.token(lifetime=LONG)
    verifier.verify(token)
    clock.advance(119)
    verifier.verify(token)
    assert issuer.fetch_count == 1
    clock.advance(2)
    verifier.verify(token)
    until(lambda: issuer.fetch_count == 2)  # the background refresh reached the key server


def test_cache_control_max_age_floor_is_60_seconds(issuer: Issuer, clock: FakeClock) -> None:
    issuer.set_cache_control("max-age=1")
    verifier = Verifier(config(issuer, token_cache_size=0))
    token = issuer.token(lifetime=LONG)
    verifier.verify(token)
    clock.advance(59)
    verifier.verify(token)
    assert issuer.fetch_count == 1
    clock.advance(2)
    verifier.verify(token)
    until(lambda: issuer.fetch_count == 2)  # the background refresh reached the key server


def test_larger_cache_control_does_not_extend_max_age(issuer: Issuer, clock: FakeClock) -> None:
    issuer.set_cache_control("max-age=86400")
    verifier = Verifier(config(issuer, token_cache_size=0))
    token = issuer.token(lifetime=LONG)
    verifier.verify(token)
    clock.advance(601)
    verifier.verify(token)
    until(lambda: issuer.fetch_count == 2)


# --------------------------------------------------------------------------- rotation, kids


def test_rotation_with_kid(kid_issuer: Issuer, clock: FakeClock) -> None:
    issuer = kid_issuer
    verifier = Verifier(config(issuer))
    old = issuer.token(lifetime=LONG)
    verifier.verify(old)
    issuer.rotate()  # the old key leaves the JWKS
    clock.advance(31)  # past the cooldown of the first fetch
    new = issuer.token(lifetime=LONG)
    assert verifier.verify(new).user_id == "user_1"
    assert issuer.fetch_count == 2  # the new kid was accepted after exactly one fetch
    # The old token's kid is gone after the refresh (and the token cache was cleared).
    assert code_of(verifier, old) == "key_not_found"
    assert issuer.fetch_count == 2  # within the cooldown: no further fetch


def test_unknown_kid_within_cooldown_is_rejected_without_fetch(
    kid_issuer: Issuer, clock: FakeClock
) -> None:
    issuer = kid_issuer
    events = Events()
    verifier = Verifier(config(issuer, on_event=events))
    verifier.verify(issuer.token())
    issuer.rotate()
    clock.advance(5)
    new = issuer.token(lifetime=LONG)
    assert code_of(verifier, new) == "key_not_found"
    assert issuer.fetch_count == 1
    assert events.named("jwks_refresh_suppressed")
    clock.advance(30)
    assert verifier.verify(new).user_id == "user_1"
    assert issuer.fetch_count == 2
    assert events.named("jwks_fetch")[-1]["reason"] == "unknown_kid"


def test_rotation_kidless(issuer: Issuer, clock: FakeClock) -> None:
    verifier = Verifier(config(issuer))
    verifier.verify(issuer.token())
    issuer.rotate()
    clock.advance(31)
    assert verifier.verify(issuer.token(lifetime=LONG)).user_id == "user_1"
    assert issuer.fetch_count == 2


def test_kidless_forged_token_refreshes_at_most_once_per_cooldown(
    issuer: Issuer, clock: FakeClock
) -> None:
    verifier = Verifier(config(issuer))
    verifier.verify(issuer.token())
    clock.advance(31)
    for _ in range(20):
        assert code_of(verifier, issuer.forged_token()) == "signature_invalid"
    assert issuer.fetch_count == 2


def test_kid_of_a_known_key_with_bad_signature_does_not_refresh(
    kid_issuer: Issuer, clock: FakeClock
) -> None:
    verifier = Verifier(config(kid_issuer))
    verifier.verify(kid_issuer.token())
    clock.advance(31)
    assert code_of(verifier, kid_issuer.forged_token()) == "signature_invalid"
    assert kid_issuer.fetch_count == 1


def test_random_kid_flood_is_bounded_and_keeps_good_keys(issuer: Issuer, clock: FakeClock) -> None:
    verifier = Verifier(config(issuer, token_cache_size=0))
    good = issuer.token(lifetime=LONG)
    verifier.verify(good)
    for round_ in range(3):
        clock.advance(31)
        for i in range(200):
            token = issuer.token(headers={"kid": f"random-{round_}-{i}"}, lifetime=LONG)
            assert code_of(verifier, token) == "key_not_found"
        assert issuer.fetch_count == 2 + round_  # one refresh per cooldown window
        assert verifier.verify(good).user_id == "user_1"  # good keys never evicted


def test_suppressed_refreshes_log_one_info_line_per_window(
    issuer: Issuer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    events = Events()
    verifier = Verifier(config(issuer, on_event=events))
    verifier.verify(issuer.token(lifetime=LONG))
    with caplog.at_level(logging.INFO, logger="wacht_auth"):
        for i in range(50):
            code_of(verifier, issuer.token(headers={"kid": f"r{i}"}, lifetime=LONG))
    assert len(events.named("jwks_refresh_suppressed")) == 50
    suppressed = [
        r for r in caplog.records if getattr(r, "wacht_event", "") == "jwks_refresh_suppressed"
    ]
    assert len(suppressed) == 1


def test_manual_refresh_bypasses_cooldown(issuer: Issuer, clock: FakeClock) -> None:
    events = Events()
    verifier = Verifier(config(issuer, on_event=events))
    verifier.verify(issuer.token())
    verifier.refresh()
    verifier.refresh()
    assert issuer.fetch_count == 3
    assert [e["reason"] for e in events.named("jwks_fetch")][-1] == "manual"


async def test_async_manual_refresh(issuer: Issuer) -> None:
    verifier = Verifier(config(issuer))
    await verifier.arefresh()
    await verifier.arefresh()
    assert issuer.fetch_count == 2


def test_manual_refresh_failure_raises_but_keeps_keys(issuer: Issuer) -> None:
    verifier = Verifier(config(issuer))
    token = issuer.token()
    verifier.verify(token)
    issuer.fail(500)
    with pytest.raises(JWKSUnavailableError) as info:
        verifier.refresh()
    assert info.value.code == "jwks_unavailable"
    verifier.verify(issuer.token("other"))  # the good keys are still there


def test_invalidate_forgets_keys(issuer: Issuer) -> None:
    verifier = Verifier(config(issuer))
    token = issuer.token()
    verifier.verify(token)
    verifier.invalidate()
    verifier.verify(token)
    assert issuer.fetch_count == 2


# --------------------------------------------------------------------------- failures


def _down(issuer: Issuer) -> None:
    issuer.down()


def _http_500(issuer: Issuer) -> None:
    issuer.fail(500)


def _html(issuer: Issuer) -> None:
    issuer.set_response(b"<html><body>Bad gateway</body></html>", "text/html")


def _empty_set(issuer: Issuer) -> None:
    issuer.set_response(b'{"keys": []}')


def _oversized(issuer: Issuer) -> None:
    jwks = issuer.jwks()
    jwks["padding"] = "x" * 5000  # a valid JWKS, but over the 4 KiB cap set below
    issuer.set_response(json.dumps(jwks).encode())


def _redirect(issuer: Issuer) -> None:
    issuer.redirect_to(issuer.jwks_url + "?again")


def _slow(issuer: Issuer) -> None:
    issuer.delay(1.5)  # jwks_timeout is 0.5 s below


#: The jwks_fetch outcome each failure must be reported with (docs/observability.md).
OUTCOMES = {
    "down": "unreachable",
    "http_500": "http_500",
    "html": "invalid_json",
    "no_usable_keys": "no_usable_keys",
    "oversized": "too_large",
    "redirect": "redirect",
    "slow": "timeout",
}
FAILURES = {
    "down": _down,
    "http_500": _http_500,
    "html": _html,
    "no_usable_keys": _empty_set,
    "oversized": _oversized,
    "redirect": _redirect,
    "slow": _slow,
}
FAILURE_CONFIG = {"jwks_timeout": 0.5, "jwks_max_bytes": 4096, "token_cache_size": 0}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_failed_refresh_serves_stale_keys_with_a_warning(
    failure: str, issuer: Issuer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    events = Events()
    verifier = Verifier(config(issuer, on_event=events, **FAILURE_CONFIG))
    token = issuer.token(lifetime=LONG)
    verifier.verify(token)
    FAILURES[failure](issuer)
    clock.advance(601)  # keys expired: a background refresh starts, and fails
    with caplog.at_level(logging.WARNING, logger="wacht_auth"):
        assert verifier.verify(token).user_id == "user_1"
        until(lambda: bool(events.named("jwks_stale")))  # logged last by the refresh
    fetches = events.named("jwks_fetch")
    assert len(fetches) == 2 and fetches[-1]["outcome"] == OUTCOMES[failure]
    assert fetches[-1]["reason"] == "expired"
    assert events.named("jwks_stale")
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    # Stale keys keep serving without hammering the key server.
    clock.advance(10)
    verifier.verify(token)
    assert len(events.named("jwks_fetch")) == 2


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_no_keys_at_all_is_jwks_unavailable(failure: str, issuer: Issuer) -> None:
    events = Events()
    verifier = Verifier(config(issuer, on_event=events, **FAILURE_CONFIG))
    token = issuer.token()
    FAILURES[failure](issuer)
    with pytest.raises(JWKSUnavailableError) as info:
        verifier.verify(token)
    error = info.value
    assert (error.code, error.status) == ("jwks_unavailable", 503)
    assert 1 <= error.retry_after <= 30
    assert error.response_headers()["Retry-After"] == str(error.retry_after)
    assert events.named("verify")[-1]["outcome"] == "jwks_unavailable"
    assert events.named("jwks_fetch")[-1]["outcome"] == OUTCOMES[failure]


async def test_no_keys_at_all_is_jwks_unavailable_async(issuer: Issuer) -> None:
    verifier = Verifier(config(issuer))
    issuer.fail(503)
    with pytest.raises(JWKSUnavailableError) as info:
        await verifier.averify(issuer.token())
    assert info.value.code == "jwks_unavailable"


def test_recovers_after_cooldown_once_the_server_is_back(issuer: Issuer, clock: FakeClock) -> None:
    verifier = Verifier(config(issuer))
    token = issuer.token(lifetime=LONG)
    issuer.down()
    assert code_of(verifier, token) == "jwks_unavailable"
    issuer.up()
    assert code_of(verifier, token) == "jwks_unavailable"  # still in the cooldown
    clock.advance(31)
    assert verifier.verify(token).user_id == "user_1"


def test_stale_window_ends(issuer: Issuer, clock: FakeClock) -> None:
    verifier = Verifier(config(issuer, jwks_stale_if_error=300, token_cache_size=0))
    token = issuer.token(lifetime=LONG)
    verifier.verify(token)
    issuer.fail(500)
    clock.advance(600 + 299)
    verifier.verify(token)  # stale, within the window
    clock.advance(2)
    assert code_of(verifier, token) == "jwks_unavailable"


def test_redirect_is_not_followed(issuer: Issuer, clock: FakeClock) -> None:
    with Issuer(clock=clock) as other:
        issuer.redirect_to(other.jwks_url)
        verifier = Verifier(config(issuer))
        assert code_of(verifier, issuer.token()) == "jwks_unavailable"
        assert other.fetch_count == 0


def test_slow_server_times_out_in_time(issuer: Issuer) -> None:
    issuer.delay(2)
    verifier = Verifier(config(issuer, jwks_timeout=0.3))
    started = time.monotonic()
    assert code_of(verifier, issuer.token()) == "jwks_unavailable"
    assert time.monotonic() - started < 1.5


def test_http_for_non_loopback_is_refused_at_config() -> None:
    with pytest.raises(ConfigurationError) as info:
        Config(frontend_api_url="http://auth.example.com")
    assert info.value.code == "configuration_error"
    with pytest.raises(ConfigurationError):
        Config(issuer="https://auth.example.com", jwks_url="http://auth.example.com/jwks")


def test_pinned_public_key_never_fetches(issuer: Issuer) -> None:
    events = Events()
    cfg = Config(
        issuer=issuer.url,
        public_key=issuer.signing_key.public_pem(),
        clock=issuer.clock,
        on_event=events,
    )
    verifier = Verifier(cfg)
    verifier.prefetch()
    verifier.refresh()
    assert verifier.verify(issuer.token()).user_id == "user_1"
    assert verifier.verify(issuer.token("u2", include_kid=True)).user_id == "u2"
    assert code_of(verifier, issuer.forged_token()) == "signature_invalid"
    assert issuer.fetch_count == 0
    assert not events.named("jwks_fetch")


def test_a_weak_pinned_key_is_a_configuration_error(issuer: Issuer) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ConfigurationError) as info:
        Verifier(Config(issuer=issuer.url, public_key=weak))
    assert info.value.code == "configuration_error"


def test_pinned_key_wins_over_a_frontend_url(issuer: Issuer) -> None:
    verifier = Verifier(
        issuer.config(public_key=issuer.signing_key.public_pem(), token_cache_size=0)
    )
    verifier.verify(issuer.token())
    assert issuer.fetch_count == 0


# --------------------------------------------------------------------------- the HTTP request


class _Recorder(BaseHTTPRequestHandler):
    """Records request headers; ``/nolength`` answers without Content-Length (read to EOF)."""

    seen: list[dict[str, str]] = []
    body = b'{"keys": []}'

    def do_GET(self) -> None:
        type(self).seen.append(dict(self.headers.items()))
        if self.path == "/drip":  # one byte every 50 ms: no single read ever times out
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(40):
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.05)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.path != "/nolength":
            self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_request_names_the_library_and_asks_for_json() -> None:
    from wacht_auth import __version__

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/jwks"
        body, _ = fetch_jwks(url, timeout=1, max_bytes=1024)
        assert body == _Recorder.body
        headers = {k.lower(): v for k, v in _Recorder.seen[-1].items()}
        assert headers["user-agent"] == f"wacht-auth/{__version__}"
        assert headers["accept"] == "application/json"
        for path in ("/jwks", "/nolength"):
            with pytest.raises(FetchError) as info:
                fetch_jwks(url.replace("/jwks", path), timeout=1, max_bytes=4)
            assert info.value.outcome == "too_large"
        body, _ = fetch_jwks(url.replace("/jwks", "/nolength"), timeout=1, max_bytes=1024)
        assert body == _Recorder.body
        started = time.monotonic()
        with pytest.raises(FetchError) as info:
            fetch_jwks(url.replace("/jwks", "/drip"), timeout=0.3, max_bytes=1024)
        assert info.value.outcome == "timeout"
        assert time.monotonic() - started < 1.0
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- observability


def test_events_and_logs(
    issuer: Issuer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    events = Events()
    verifier = Verifier(config(issuer, on_event=events))
    with caplog.at_level(logging.INFO, logger="wacht_auth"):
        verifier.verify(issuer.token())
    (fetch,) = events.named("jwks_fetch")
    assert fetch["reason"] == "first_use"
    assert fetch["outcome"] == "ok"
    assert fetch["keys"] == 1
    assert fetch["duration_ms"] >= 0
    assert fetch["url"] == issuer.jwks_url
    assert any("first_use" in r.getMessage() for r in caplog.records)
    assert events.named("verify")[-1] == {"outcome": "ok", "issuer": issuer.url, "cached": False}


def test_a_failing_event_handler_never_breaks_verification(issuer: Issuer) -> None:
    def broken(name: str, fields: Mapping[str, Any]) -> None:
        raise RuntimeError("metrics down")

    verifier = Verifier(config(issuer, on_event=broken))
    assert verifier.verify(issuer.token()).user_id == "user_1"


def test_tokens_never_reach_the_logs(
    issuer: Issuer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    events = Events()
    verifier = Verifier(config(issuer, on_event=events, **FAILURE_CONFIG))
    good = issuer.token(lifetime=LONG)
    tokens = [good, issuer.forged_token(), issuer.expired_token(), good[:-3] + "abc"]
    tokens.append(issuer.token(headers={"kid": "unknown"}))
    with caplog.at_level(logging.DEBUG):
        for token in tokens:
            try:
                verifier.verify(token)
            except WachtAuthError:
                pass
        issuer.fail(500)
        clock.advance(601)
        verifier.verify(good)
        until(lambda: bool(events.named("jwks_stale")))  # the background refresh's logs too
    text = caplog.text + repr(events.items)
    for token in tokens:
        for segment in token.split("."):
            assert segment not in text


# --------------------------------------------------------------------------- the fetch deadline


class DripServer:
    """A raw-socket key server that sends its answer one byte every ``interval`` seconds.

    ``phase="head"`` drips the status line and headers (then the body); ``phase="body"`` sends
    the head at once and drips the body. No single read ever waits ``interval`` long, so only a
    deadline over the whole fetch stops it. Every loop here ends within ``limit`` seconds.
    """

    def __init__(
        self,
        body: bytes,
        phase: str,
        interval: float = 0.1,
        limit: float = 6.0,
        tls: ssl.SSLContext | None = None,
    ):
        self.body = body
        self.phase = phase
        self.interval = interval
        self.tls = tls
        self.end = time.monotonic() + limit
        self.stop = threading.Event()
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.listener.getsockname()[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> DripServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.listener.close()

    def _serve(self) -> None:
        while not self.stop.is_set() and time.monotonic() < self.end:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(self.body)
        )
        try:
            conn.settimeout(1)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
        except OSError:
            conn.close()
            return
        with conn:
            try:
                conn.recv(65536)  # the request
                if self.phase == "none":
                    conn.sendall(head + self.body)
                    return
                if self.phase == "head":
                    slow = head + self.body
                else:
                    conn.sendall(head)
                    slow = self.body
                for i in range(len(slow)):
                    if self.stop.is_set() or time.monotonic() > self.end:
                        return
                    conn.sendall(slow[i : i + 1])
                    self.stop.wait(self.interval)
            except OSError:  # the client gave up and hung up
                return


@pytest.mark.parametrize("phase", ["head", "body"])
def test_fetch_jwks_deadline_covers_the_whole_fetch(phase: str, issuer: Issuer) -> None:
    with DripServer(json.dumps(issuer.jwks()).encode(), phase) as server:
        started = time.monotonic()
        with pytest.raises(FetchError) as info:
            fetch_jwks(server.url, timeout=0.5, max_bytes=1 << 20)
        elapsed = time.monotonic() - started
    assert info.value.outcome == "timeout"
    assert elapsed < 0.5 + MARGIN, elapsed


@pytest.mark.parametrize("phase", ["head", "body"])
def test_a_dripping_key_server_fails_verify_within_the_timeout(phase: str, issuer: Issuer) -> None:
    events = Events()
    with DripServer(json.dumps(issuer.jwks()).encode(), phase) as server:
        verifier = Verifier(config(issuer, jwks_url=server.url, jwks_timeout=0.5, on_event=events))
        token = issuer.token()

        def attempt(_: int) -> float:
            started = time.monotonic()
            assert code_of(verifier, token) == "jwks_unavailable"
            return time.monotonic() - started

        # One request fetches; the others wait for that fetch, no longer than its deadline.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(4) as pool:
            elapsed = list(pool.map(attempt, range(4)))
        assert server.connections == 1
    assert max(elapsed) < 0.5 + MARGIN, elapsed
    assert events.named("jwks_fetch")[-1]["outcome"] == "timeout"
    assert not fetch_threads()


@pytest.mark.parametrize("phase", ["head", "body"])
async def test_a_dripping_key_server_fails_averify_within_the_timeout(
    phase: str, issuer: Issuer
) -> None:
    with DripServer(json.dumps(issuer.jwks()).encode(), phase) as server:
        verifier = Verifier(config(issuer, jwks_url=server.url, jwks_timeout=0.5))
        token = issuer.token()

        async def attempt() -> float:
            started = time.monotonic()
            with pytest.raises(JWKSUnavailableError):
                await verifier.averify(token)
            return time.monotonic() - started

        elapsed = await asyncio.wait_for(asyncio.gather(*(attempt() for _ in range(20))), 10)
        assert server.connections == 1
        # The worker thread publishes the outcome, logs it and ends: it does not linger.
        for thread in fetch_threads():
            thread.join(timeout=MARGIN)
        assert not fetch_threads()
    assert max(elapsed) < 0.5 + MARGIN, elapsed


def test_a_hanging_name_lookup_is_bounded_by_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS cannot be interrupted, so the lookup runs aside and the fetch stops waiting for it."""
    release = threading.Event()
    real = socket.getaddrinfo

    def hanging(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "keys.hanging-dns.invalid":
            release.wait(5)
            raise socket.gaierror(socket.EAI_AGAIN, "temporary failure")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    started = time.monotonic()
    try:
        with pytest.raises(FetchError) as info:
            fetch_jwks("https://keys.hanging-dns.invalid/jwks.json", timeout=0.5, max_bytes=1024)
        elapsed = time.monotonic() - started
    finally:
        release.set()  # let the abandoned lookup thread end now
    assert info.value.outcome == "timeout"
    assert elapsed < 0.5 + MARGIN, elapsed


@pytest.fixture
def loopback_tls(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server context for a self-signed 127.0.0.1 certificate that clients here trust."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = tmp_path / "cert.pem"
    key_file = tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # read by each new default context
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


def test_fetch_over_tls(issuer: Issuer, loopback_tls: ssl.SSLContext) -> None:
    body = json.dumps(issuer.jwks()).encode()
    with DripServer(body, "none", tls=loopback_tls) as server:
        assert fetch_jwks(server.url, timeout=2, max_bytes=1 << 20)[0] == body


@pytest.mark.parametrize("phase", ["head", "body"])
def test_fetch_deadline_covers_tls_reads(
    phase: str, issuer: Issuer, loopback_tls: ssl.SSLContext
) -> None:
    with DripServer(json.dumps(issuer.jwks()).encode(), phase, tls=loopback_tls) as server:
        started = time.monotonic()
        with pytest.raises(FetchError) as info:
            fetch_jwks(server.url, timeout=0.5, max_bytes=1 << 20)
        elapsed = time.monotonic() - started
    assert info.value.outcome == "timeout"
    assert elapsed < 0.5 + MARGIN, elapsed
