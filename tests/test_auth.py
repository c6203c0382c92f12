"""The request-auth core every adapter uses: token lookup, CSRF rule, requirements."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wacht_auth import Config, Session, TokenExpiredError, WachtAuthError
from wacht_auth.auth import (
    AuthState,
    PublicPaths,
    Requirement,
    TokenSource,
    aauthenticate,
    authenticate,
    bearer_token,
    cached_session,
    cached_state,
    cookie_reader,
    error_response,
    find_token,
    origin_of,
)

CONFIG = Config(frontend_api_url="https://f.example", authorized_parties=("https://app.example",))


def session(**claims: Any) -> Session:
    base: dict[str, Any] = {"iss": "https://f.example", "sub": "1", "exp": 2**31}
    return Session.from_claims({**base, **claims}, "tok")


class StubVerifier:
    """Accepts the token "good", rejects anything else as expired; counts calls."""

    config = CONFIG

    def __init__(self) -> None:
        self.calls = 0

    def verify(self, token: str) -> Session:
        self.calls += 1
        if token != "good":
            raise TokenExpiredError()
        return session()

    async def averify(self, token: str) -> Session:
        return self.verify(token)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER    abc ", "abc"),
        ("Bearer", ""),
        ("Basic dXNlcjpwYXNz", None),
        ("", None),
        (None, None),
        ("Bearerabc", None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_header_wins_over_cookie_and_cookie_can_be_switched_off() -> None:
    cookies = {CONFIG.cookie_name or "": "from-cookie"}
    assert find_token(CONFIG, "Bearer h", cookies) == TokenSource("h")
    assert find_token(CONFIG, None, cookies) == TokenSource("from-cookie", from_cookie=True)
    assert find_token(CONFIG, None, cookies.get) == TokenSource("from-cookie", from_cookie=True)
    off = Config(frontend_api_url="https://f.example", read_cookies=False)
    assert find_token(off, None, cookies) is None
    assert find_token(CONFIG, None, {}) is None


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://App.Example:443/x?y", "https://app.example"),
        ("http://testserver", "http://testserver"),
        ("http://h:8080/", "http://h:8080"),
        ("null", None),
        ("not a url", None),
        (None, None),
    ],
)
def test_origin_of(url: str | None, origin: str | None) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize(
    ("method", "origin", "referer", "ok"),
    [
        ("GET", "https://evil.example", None, True),
        ("POST", "https://own.example", None, True),
        ("POST", None, "https://own.example/form", True),
        ("DELETE", "https://app.example", None, True),
        ("POST", "https://evil.example", None, False),
        ("PUT", None, None, False),
        ("PATCH", "null", "https://evil.example/", False),
    ],
)
def test_csrf_rule_for_cookie_tokens(
    method: str, origin: str | None, referer: str | None, ok: bool
) -> None:
    verifier = StubVerifier()
    state = authenticate(
        verifier,
        TokenSource("good", from_cookie=True),
        method=method,
        origin=origin,
        referer=referer,
        own_origin="https://own.example",
    )
    assert state.is_authenticated is ok
    if not ok:
        assert state.error is not None and state.error.code == "csrf_failed"
        assert verifier.calls == 0


def test_bearer_tokens_are_not_subject_to_csrf() -> None:
    state = authenticate(StubVerifier(), TokenSource("good"), method="POST", origin="https://e.x")
    assert state.is_authenticated


def test_failed_token_is_kept_on_the_state() -> None:
    state = authenticate(StubVerifier(), TokenSource("bad"))
    assert state.user_id is None and not state.is_authenticated
    assert state.error is not None and state.error.code == "token_expired"
    with pytest.raises(WachtAuthError) as info:
        state.require()
    assert info.value.code == "token_expired"


async def test_async_twin() -> None:
    assert (await aauthenticate(StubVerifier(), TokenSource("good"))).user_id == "1"
    assert (await aauthenticate(StubVerifier(), None)).error is None


class CacheStub:
    """A verifier's cache: ``cached()`` answers the same Session object for a token each time."""

    def __init__(self, sessions: dict[str, Session]) -> None:
        self.sessions = sessions

    def cached(self, token: object) -> Session | None:
        return self.sessions.get(token) if isinstance(token, str) else None


class EqualSession(Session):
    """A Session that claims to equal every other: the memo must still go by identity."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 1


def test_cached_state_answers_a_repeated_bearer_token_from_the_cache() -> None:
    alice, bob = session(sub="alice"), session(sub="bob")
    stub = CacheStub({"a": alice, "b": bob})
    first = cached_state(stub, "Bearer a")
    assert first is not None and first.session is alice and first.user_id == "alice"
    assert cached_state(stub, "Bearer a") is first  # built once per session
    other = cached_state(stub, "Bearer b")
    assert other is not None and other.session is bob and other.user_id == "bob"
    # Anything but the plain "Bearer <token>" shape, or a miss: the full path runs.
    for header in (None, "", "Bearer c", "bearer a", "Bearer  a", "Basic a", "Bearer a "):
        assert cached_state(stub, header) is None


def test_cached_session_reads_the_bearer_shape_and_tolerates_cacheless_verifiers() -> None:
    alice = session(sub="alice")
    stub = CacheStub({"a": alice})
    assert cached_session(stub, "Bearer a") is alice
    for header in (None, "Bearer c", "bearer a", "Basic a"):
        assert cached_session(stub, header) is None
    assert cached_session(object(), "Bearer a") is None  # a verifier without .cached()


def test_cached_state_never_gives_one_session_the_state_of_another() -> None:
    one = EqualSession.from_claims({"iss": "https://f.example", "sub": "1", "exp": 2**31}, "x")
    two = EqualSession.from_claims({"iss": "https://f.example", "sub": "2", "exp": 2**31}, "y")
    assert one == two and hash(one) == hash(two)
    stub = CacheStub({"x": one, "y": two})
    for _ in range(2):
        for token, user in (("x", "1"), ("y", "2")):
            state = cached_state(stub, f"Bearer {token}")
            assert state is not None and state.user_id == user


def test_cached_state_memo_is_bounded() -> None:
    from wacht_auth import auth

    sessions = {str(n): session(sub=str(n)) for n in range(auth._STATES_MAX + 10)}
    stub = CacheStub(sessions)
    for token, expected in sessions.items():
        state = cached_state(stub, f"Bearer {token}")
        assert state is not None and state.session is expected
        assert len(auth._STATES) <= auth._STATES_MAX


def test_anonymous_state() -> None:
    state = AuthState()
    assert state.user_id is None and state.permissions == () and state.claims == {}
    assert not state.has_permission("x")
    with pytest.raises(WachtAuthError) as info:
        state.require()
    assert info.value.code == "token_missing"
    with pytest.raises(WachtAuthError):
        state.forward_headers()


def test_requirements() -> None:
    state = AuthState(
        session(organization="7", permissions={"organization": ["a"], "workspace": ["b"]})
    )
    assert Requirement(("a",)).check(state).user_id == "1"
    assert Requirement(("a", "z")).check(state)
    assert Requirement(("b",), scope="workspace").check(state)
    assert Requirement(organization=True).check(state)
    assert Requirement(organization="7").check(state)
    failures = [
        (Requirement(("a", "z"), require_all=True), "permission_denied"),
        (Requirement(("a",), scope="workspace"), "permission_denied"),
        (Requirement(("z",)), "permission_denied"),
        (Requirement(organization="8"), "organization_required"),
        (Requirement(workspace=True), "workspace_required"),
    ]
    for requirement, code in failures:
        with pytest.raises(WachtAuthError) as info:
            requirement.check(state)
        assert (info.value.code, info.value.status) == (code, 403)
    with pytest.raises(WachtAuthError) as info:
        Requirement(("a",)).check(AuthState())
    assert info.value.status == 401
    with pytest.raises(ValueError):
        Requirement(("",))


def test_public_paths() -> None:
    paths = PublicPaths(["/health", "/public/*"])
    assert "/health" in paths and "/public/x/y" in paths
    assert "/healthz" not in paths and "/private" not in paths
    assert not PublicPaths()


def test_error_response() -> None:
    status, headers, body = error_response(TokenExpiredError())
    assert status == 401
    assert headers["Content-Type"] == "application/json"
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert json.loads(body)["error"]["code"] == "token_expired"


def test_cookie_reader_parses_a_raw_cookie_header() -> None:
    cookie = cookie_reader(b'a=1; __auth_x="tok"; a=2;broken; b = 3 ')
    assert cookie("a") == "1"  # the first of a name wins
    assert cookie("__auth_x") == "tok"  # RFC 6265 DQUOTE-wrapped value
    assert cookie("b") == "3"
    assert cookie("missing") is None
    assert cookie_reader("c=4")("c") == "4"
