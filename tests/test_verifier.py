"""Verifier: the shared sync/async core, the verified-token cache and several deployments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import wacht_auth.verifier as verifier_module
from tests.helpers import Events, FakeClock
from wacht_auth.config import Config
from wacht_auth.errors import ConfigurationError, WachtAuthError
from wacht_auth.session import Session
from wacht_auth.testing import Issuer
from wacht_auth.verifier import TokenCache, Verifier

LONG = 24 * 3600


def make(issuer: Issuer, **overrides: Any) -> Verifier:
    values: dict[str, Any] = {"jwks_timeout": 1.0}
    values.update(overrides)
    return Verifier(issuer.config(**values))


def code_of(verifier: Verifier, token: Any) -> str:
    with pytest.raises(WachtAuthError) as info:
        verifier.verify(token)
    return info.value.code


async def acode_of(verifier: Verifier, token: Any) -> str:
    with pytest.raises(WachtAuthError) as info:
        await verifier.averify(token)
    return info.value.code


# --------------------------------------------------------------------------- construction


def test_construction(issuer: Issuer) -> None:
    cfg = issuer.config()
    verifier = Verifier(cfg)
    assert verifier.config is cfg
    assert verifier.configs == (cfg,)
    assert issuer.url in repr(verifier)


@pytest.mark.parametrize("bad", [[], ["https://auth.example.com"], [None]])
def test_construction_refuses_non_configs(bad: list[Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        Verifier(bad)
    assert info.value.code == "configuration_error"


def test_two_configs_with_one_issuer_are_refused(issuer: Issuer) -> None:
    with pytest.raises(ConfigurationError):
        Verifier([issuer.config(), issuer.config(leeway=10)])


def test_from_env(issuer: Issuer) -> None:
    verifier = Verifier.from_env(
        {"WACHT_FRONTEND_API_URL": issuer.url}, clock=issuer.clock, jwks_timeout=1.0
    )
    assert verifier.config.issuer == issuer.url
    assert verifier.verify(issuer.token()).user_id == "user_1"


# --------------------------------------------------------------------------- verification


def test_verify_returns_the_session(issuer: Issuer) -> None:
    verifier = make(issuer)
    token = issuer.token(
        "user_42",
        session_id="sess_7",
        organization_id="org_1",
        permissions={"organization": ["organization:admin"], "workspace": None},
    )
    session = verifier.verify(token)
    assert isinstance(session, Session)
    assert (session.user_id, session.session_id, session.organization_id) == (
        "user_42",
        "sess_7",
        "org_1",
    )
    assert session.has_permission("organization:admin")
    assert session.token == token


async def test_averify_returns_the_same_session(issuer: Issuer) -> None:
    verifier = make(issuer, token_cache_size=0)
    token = issuer.token("user_9")
    session = await verifier.averify(token)
    assert session.user_id == "user_9"
    assert verifier.verify(token).claims == session.claims


@pytest.mark.parametrize("token", [None, b"abc", 42, "", ["a.b.c"]])
def test_non_string_or_empty_is_malformed(issuer: Issuer, token: Any) -> None:
    verifier = make(issuer)
    assert code_of(verifier, token) == "token_malformed"
    assert issuer.fetch_count == 0


@pytest.mark.parametrize("token", [None, b"abc", ""])
async def test_non_string_or_empty_is_malformed_async(issuer: Issuer, token: Any) -> None:
    assert await acode_of(make(issuer), token) == "token_malformed"


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("a.b", "token_malformed"),
        ("not a token", "token_malformed"),
        ("a" * 9000, "token_too_large"),
    ],
)
def test_bad_input_codes_without_fetch(issuer: Issuer, token: str, code: str) -> None:
    verifier = make(issuer)
    assert code_of(verifier, token) == code
    assert issuer.fetch_count == 0


def test_claim_failures(issuer: Issuer, clock: FakeClock) -> None:
    verifier = make(issuer)
    assert code_of(verifier, issuer.expired_token()) == "token_expired"
    assert code_of(verifier, issuer.token(nbf=clock() + 600)) == "token_not_yet_valid"
    assert code_of(verifier, issuer.token(user_id=None)) == "claims_invalid"
    assert code_of(verifier, issuer.token(claims={"iss": "https://evil.example"})) == (
        "issuer_invalid"
    )
    assert code_of(verifier, issuer.forged_token()) == "signature_invalid"


def test_audience_and_parties_come_from_the_config(issuer: Issuer) -> None:
    verifier = make(issuer, audience="api", authorized_parties=["https://app.example"])
    assert code_of(verifier, issuer.token()) == "audience_invalid"
    assert verifier.verify(issuer.token(claims={"aud": ["api"]})).user_id == "user_1"
    token = issuer.token(claims={"aud": "api", "azp": "https://evil.example"})
    assert code_of(verifier, token) == "party_not_authorized"


def test_algorithm_without_a_fitting_key_is_key_not_found(clock: FakeClock) -> None:
    with Issuer(clock=clock, algorithms=("ES256", "RS256")) as issuer:
        verifier = Verifier(issuer.config(algorithms=("ES256", "RS256")))
        verifier.verify(issuer.token())
        issuer.remove_key(issuer.key_for("RS256").kid)
        verifier.refresh()
        assert code_of(verifier, issuer.token(alg="RS256")) == "key_not_found"


def test_unexpected_errors_are_token_malformed(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(claims: Any, **settings: Any) -> None:
        raise RuntimeError("bug")

    verifier = make(issuer)
    monkeypatch.setattr(verifier_module, "check_claims", explode)
    with pytest.raises(WachtAuthError) as info:
        verifier.verify(issuer.token())
    assert info.value.code == "token_malformed"
    assert isinstance(info.value.__cause__, RuntimeError)


# --------------------------------------------------------------------------- token cache


def test_cache_hit_returns_the_same_session(issuer: Issuer) -> None:
    verifier = make(issuer)
    token = issuer.token()
    first = verifier.verify(token)
    assert verifier.verify(token) is first


async def test_cache_hit_async(issuer: Issuer) -> None:
    verifier = make(issuer)
    token = issuer.token()
    first = await verifier.averify(token)
    assert await verifier.averify(token) is first


def test_cache_off(issuer: Issuer) -> None:
    verifier = make(issuer, token_cache_size=0)
    token = issuer.token()
    assert verifier.verify(token) is not verifier.verify(token)


def test_cache_hit_rechecks_expiry(issuer: Issuer, clock: FakeClock) -> None:
    verifier = make(issuer, leeway=5)
    token = issuer.token(lifetime=35)
    verifier.verify(token)
    clock.advance(35 + 4)
    verifier.verify(token)  # within the leeway
    clock.advance(1)
    assert code_of(verifier, token) == "token_expired"


def test_cache_hit_rechecks_not_before_when_the_clock_goes_back(
    issuer: Issuer, clock: FakeClock
) -> None:
    verifier = make(issuer, leeway=5)
    token = issuer.token(lifetime=LONG)
    verifier.verify(token)
    clock.advance(-60)
    assert code_of(verifier, token) == "token_not_yet_valid"


def test_cache_cleared_when_keys_change(issuer: Issuer, clock: FakeClock) -> None:
    verifier = make(issuer)
    old = issuer.token(lifetime=LONG)
    first = verifier.verify(old)
    issuer.rotate()
    verifier.refresh()  # the old key left the set: its tokens must be re-verified
    assert code_of(verifier, old) == "signature_invalid"
    assert first is not None


def test_cache_survives_an_unchanged_refresh(issuer: Issuer) -> None:
    verifier = make(issuer)
    token = issuer.token()
    first = verifier.verify(token)
    verifier.refresh()
    assert verifier.verify(token) is first


def test_invalidate_clears_the_cache(issuer: Issuer) -> None:
    verifier = make(issuer)
    token = issuer.token()
    first = verifier.verify(token)
    verifier.invalidate()
    assert verifier.verify(token) is not first
    assert issuer.fetch_count == 2


def test_cache_is_bounded() -> None:
    cache = TokenCache(3)
    clock = FakeClock()
    session: Any = object()
    marker: Any = session
    for i in range(5):
        cache.put(f"t{i}", verifier_module._Entry(marker, 0, 2e9, clock), cache.generation)
    assert len(cache) == 3
    assert cache.get("t0") is None and cache.get("t1") is None and cache.get("t4") is session
    cache.get("t2")  # a hit changes nothing: the oldest insert still goes first
    cache.put("t5", verifier_module._Entry(marker, 0, 2e9, clock), cache.generation)
    assert len(cache) == 3
    assert cache.get("t2") is None and cache.get("t3") is session and cache.get("t5") is session


def test_cache_drops_inserts_racing_with_a_clear() -> None:
    cache = TokenCache(10)
    generation = cache.generation
    cache.clear()
    cache.put("t", verifier_module._Entry(object(), 0, 2e9, FakeClock()), generation)  # type: ignore[arg-type]
    assert len(cache) == 0


def test_cache_hit_reports_a_verify_event(issuer: Issuer) -> None:
    events = Events()
    verifier = make(issuer, on_event=events)
    token = issuer.token()
    verifier.verify(token)
    verifier.verify(token)
    assert [e["cached"] for e in events.named("verify")] == [False, True]
    assert {e["outcome"] for e in events.named("verify")} == {"ok"}


# --------------------------------------------------------------------------- several deployments


@pytest.fixture
def two(clock: FakeClock) -> Iterator[tuple[Issuer, Issuer]]:
    with Issuer(clock=clock) as a, Issuer(clock=clock, algorithms=("RS256",)) as b:
        yield a, b


def test_several_deployments_route_by_issuer(two: tuple[Issuer, Issuer]) -> None:
    a, b = two
    verifier = Verifier([a.config(jwks_timeout=1.0), b.config(jwks_timeout=1.0)])
    assert verifier.verify(a.token("ua")).user_id == "ua"
    assert verifier.verify(b.token("ub")).user_id == "ub"
    assert (a.fetch_count, b.fetch_count) == (1, 1)
    assert len(verifier.configs) == 2


async def test_several_deployments_async(two: tuple[Issuer, Issuer]) -> None:
    a, b = two
    verifier = Verifier([a.config(), b.config()])
    assert (await verifier.averify(b.token("ub"))).user_id == "ub"
    assert (a.fetch_count, b.fetch_count) == (0, 1)


def test_unknown_issuer_is_rejected_without_any_fetch(two: tuple[Issuer, Issuer]) -> None:
    a, b = two
    events = Events()
    verifier = Verifier([a.config(on_event=events), b.config()])
    with Issuer() as stranger:
        assert code_of(verifier, stranger.token()) == "issuer_invalid"
    assert code_of(verifier, a.token(claims={"iss": None})) == "issuer_invalid"
    assert code_of(verifier, "x.y") == "token_malformed"
    assert code_of(verifier, "a" * 9000) == "token_too_large"
    assert (a.fetch_count, b.fetch_count) == (0, 0)
    assert events.named("verify")[0] == {
        "outcome": "issuer_invalid",
        "issuer": None,
        "cached": False,
    }


def test_keys_are_not_shared_between_deployments(two: tuple[Issuer, Issuer]) -> None:
    a, b = two
    verifier = Verifier([a.config(), b.config()])
    verifier.verify(a.token())
    # A token claiming issuer b but signed with a's key must fail against b's keys.
    lying = a.token(claims={"iss": b.url})
    assert code_of(verifier, lying) in {"key_not_found", "signature_invalid"}
    assert b.fetch_count == 1


def test_refresh_prefetch_and_invalidate_cover_every_deployment(
    two: tuple[Issuer, Issuer],
) -> None:
    a, b = two
    verifier = Verifier([a.config(), b.config()])
    verifier.prefetch()
    assert (a.fetch_count, b.fetch_count) == (1, 1)
    verifier.refresh()
    assert (a.fetch_count, b.fetch_count) == (2, 2)
    verifier.invalidate()
    verifier.verify(a.token())
    assert (a.fetch_count, b.fetch_count) == (3, 2)


async def test_async_refresh_covers_every_deployment(two: tuple[Issuer, Issuer]) -> None:
    a, b = two
    verifier = Verifier([a.config(), b.config()])
    await verifier.aprefetch()
    await verifier.arefresh()
    assert (a.fetch_count, b.fetch_count) == (2, 2)


def test_config_type_is_exported_for_several(issuer: Issuer) -> None:
    assert isinstance(Verifier([issuer.config()]).config, Config)


def test_cache_hits_are_cheap(issuer: Issuer) -> None:
    # A sanity bound, far above the ~1 µs measured (docs/keys.md): it catches a hit path that
    # silently falls back to full verification (~50-100 µs), not small regressions.
    import time

    verifier = make(issuer)
    token = issuer.token()
    verifier.verify(token)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(2000):
            verifier.verify(token)
        best = min(best, (time.perf_counter() - started) / 2000)
    assert best < 20e-6


def test_cached_answers_only_verified_tokens_within_their_time(
    issuer: Issuer, clock: FakeClock
) -> None:
    verifier = make(issuer)
    token = issuer.token(lifetime=60)
    assert verifier.cached(token) is None  # never verified: a miss, and no fetch
    assert issuer.fetch_count == 0
    session = verifier.verify(token)
    assert verifier.cached(token) is session
    assert verifier.cached(token + "x") is None
    clock.advance(60 + verifier.config.leeway)
    assert verifier.cached(token) is None  # expired: the hit re-checks exp + leeway


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_cache_hits_recheck_iat_and_nbf(issuer: Issuer, clock: FakeClock, claim: str) -> None:
    """docs/keys.md: time claims are re-checked on every hit, the start of validity too."""
    verifier = make(issuer)
    token = issuer.token(lifetime=600, **{claim: clock() + 2})  # within the leeway
    session = verifier.verify(token)
    assert verifier.verify(token) is session
    clock.advance(-verifier.config.leeway - 3)  # now the start is beyond now + leeway
    assert verifier.cached(token) is None
    assert code_of(verifier, token) == "token_not_yet_valid"
