"""The request layer every adapter uses: token source, CSRF, preflight, reuse, immutability."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from wacht_auth import Config, ConfigurationError, Session, TokenExpiredError, WachtAuthError
from wacht_auth.auth import (
    Authenticator,
    AuthState,
    Guards,
    Paths,
    Requirement,
    bearer_token,
    cookie_reader,
    error_response,
    origin_of,
    request_argument,
)

CONFIG = Config(frontend_api_url="https://f.example", authorized_parties=("https://app.example",))
OWN = "https://own.example"


def session(**claims: Any) -> Session:
    base: dict[str, Any] = {"iss": "https://f.example", "sub": "1", "exp": 2**31}
    return Session.from_claims({**base, **claims}, "tok")


class StubVerifier:
    """Accepts the token "good", rejects anything else as expired; counts calls. Its cache
    holds the tokens in ``cache``."""

    def __init__(self, config: Config = CONFIG) -> None:
        self.config = config
        self.calls = 0
        self.cache: dict[str, Session] = {}

    def verify(self, token: str) -> Session:
        self.calls += 1
        if token != "good":
            raise TokenExpiredError()
        return session()

    async def averify(self, token: str) -> Session:
        return self.verify(token)

    def cached(self, token: object) -> Session | None:
        return self.cache.get(token) if isinstance(token, str) else None


@dataclass
class FakeRequest:
    """A :class:`~wacht_auth.auth.RequestView` as an adapter would give it."""

    method: str = "GET"
    path: str = "/"
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    origin: str | None = OWN

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def cookie(self, name: str) -> str | None:
        return self.cookies.get(name)

    @property
    def scheme(self) -> str:
        return self.origin.split("://")[0] if self.origin else "https"

    def host(self) -> str | None:
        return self.origin.split("://")[1] if self.origin else None

    def client_ip(self) -> str | None:
        return "203.0.113.7"

    def query(self) -> str:
        return ""


def layer(verifier: StubVerifier | None = None, **options: Any) -> Authenticator:
    return Authenticator(verifier or StubVerifier(), **options)  # type: ignore[arg-type]


def cookie_request(method: str, **headers: str) -> FakeRequest:
    return FakeRequest(method, headers=headers, cookies={CONFIG.cookie_name or "": "good"})


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
    verifier = StubVerifier()
    both = FakeRequest(
        headers={"authorization": "Bearer bad"}, cookies={CONFIG.cookie_name or "": "good"}
    )
    assert layer(verifier).resolve(both).error is not None  # the header's token counted
    assert layer(verifier).resolve(cookie_request("GET")).user_id == "1"
    off = StubVerifier(Config(frontend_api_url="https://f.example", read_cookies=False))
    assert layer(off).resolve(cookie_request("GET")).token_presented is False
    assert off.calls == 0


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
    ("method", "headers", "ok"),
    [
        ("GET", {"origin": "https://evil.example"}, True),  # safe methods: no check
        ("POST", {"origin": OWN}, True),
        ("POST", {"referer": OWN + "/form"}, True),  # Referer counts when Origin is absent
        ("DELETE", {"origin": "https://app.example"}, True),  # authorized_parties
        ("POST", {"origin": "https://evil.example"}, False),
        ("PUT", {}, False),  # neither: refused
        ("PATCH", {"origin": "null", "referer": "https://evil.example/"}, False),
        # Origin present decides alone: a same-site Referer cannot override it.
        ("POST", {"origin": "null", "referer": OWN + "/form"}, False),
        ("POST", {"origin": "https://evil.example", "referer": OWN + "/"}, False),
        ("WEBSOCKET", {"origin": "https://evil.example"}, False),  # cross-site websocket
        ("WEBSOCKET", {"origin": OWN}, True),
    ],
)
def test_csrf_rule_for_cookie_tokens(method: str, headers: dict[str, str], ok: bool) -> None:
    verifier = StubVerifier()
    state = layer(verifier).resolve(cookie_request(method, **headers))
    assert state.is_authenticated is ok
    if not ok:
        assert state.error is not None and state.error.code == "csrf_failed"
        assert verifier.calls == 0


def test_bearer_tokens_are_not_subject_to_csrf() -> None:
    request = FakeRequest("POST", headers={"authorization": "Bearer good", "origin": "null"})
    assert layer().resolve(request).is_authenticated


def test_failed_token_is_kept_on_the_state() -> None:
    state = layer().resolve(FakeRequest(headers={"authorization": "Bearer bad"}))
    assert state.user_id is None and not state.is_authenticated and state.token_presented
    assert state.error is not None and state.error.code == "token_expired"
    with pytest.raises(WachtAuthError) as info:
        state.require()
    assert info.value.code == "token_expired"


async def test_async_twin() -> None:
    good = FakeRequest(headers={"authorization": "Bearer good"})
    assert (await layer().aresolve(good)).user_id == "1"
    anonymous = await layer().aresolve(FakeRequest())
    assert anonymous.error is None and not anonymous.token_presented


def test_a_repeated_bearer_token_is_answered_from_the_cache() -> None:
    verifier = StubVerifier()
    alice = verifier.cache["a"] = session(sub="alice")
    state = layer(verifier).resolve(FakeRequest(headers={"authorization": "Bearer a"}))
    assert state.session is alice and verifier.calls == 0
    # Anything but the plain "Bearer <token>" shape, or a miss: the full path runs.
    for header in ("Bearer c", "bearer a", "Bearer  a"):
        layer(verifier).resolve(FakeRequest(headers={"authorization": header}))
    assert verifier.calls == 3


def test_a_state_is_reused_only_by_the_verifier_that_made_it() -> None:
    """Security review finding 1: a state attached by another verifier (an outer middleware
    of another deployment) is never trusted; the request is verified again."""
    deployment_a, deployment_b = StubVerifier(), StubVerifier()
    request = FakeRequest(headers={"authorization": "Bearer bad"})
    from_a = AuthState(session(sub="a-user"), verifier=deployment_a)
    assert layer(deployment_a).resolve(request, from_a) is from_a
    again = layer(deployment_b).resolve(request, from_a)
    assert again is not from_a and again.error is not None and deployment_b.calls == 1
    forged = AuthState(session(sub="x"))  # made by nobody: never reused either
    assert layer(deployment_a).resolve(request, forged) is not forged


def test_states_and_claims_are_deeply_read_only() -> None:
    """Security review finding 4: what one request could change, every later request with
    the same (cached) token would see."""
    state = AuthState(session(permissions={"organization": ["a"]}, metadata={"x": [1]}))
    for name in ("session", "error", "token_presented", "verifier", "anything"):
        with pytest.raises(AttributeError):
            setattr(state, name, None)
    with pytest.raises(AttributeError):
        del state.session
    claims = state.claims
    with pytest.raises(TypeError):
        claims["sub"] = "admin"  # type: ignore[index]
    with pytest.raises(TypeError):
        claims["permissions"]["organization"] += ("organization:admin",)
    with pytest.raises(AttributeError):
        claims["permissions"]["organization"].append("organization:admin")
    with pytest.raises(TypeError):
        state.session.metadata["x"] = 2  # type: ignore[index,union-attr]
    assert claims["metadata"]["x"] == (1,) and state.permissions == ("a",)


@pytest.mark.parametrize(
    ("method", "headers", "path", "open_"),
    [
        ("OPTIONS", {"access-control-request-method": "POST"}, "/x", True),  # real preflight
        ("OPTIONS", {}, "/x", False),  # a plain OPTIONS is an ordinary request
        ("GET", {"access-control-request-method": "POST"}, "/x", False),
        ("GET", {}, "/health", True),
        ("POST", {}, "/public/a/b", True),
        ("GET", {}, "/healthz", False),
    ],
)
def test_protect_all_routes_and_the_one_preflight_rule(
    method: str, headers: dict[str, str], path: str, open_: bool
) -> None:
    auth = layer(protect_all=True, public_paths=["/health", "/public/*"])
    request = FakeRequest(method, path, headers)
    state = auth.resolve(request)
    error = auth.refusal(request, state)
    assert (error is None) is open_
    if error is not None:
        assert (error.code, error.status) == ("token_missing", 401)
    assert auth.refusal(request, state, public_route=True) is None
    assert layer().refusal(request, state) is None  # protect_all off


def test_protect_all_keeps_the_precise_error() -> None:
    auth = layer(protect_all=True)
    request = FakeRequest(headers={"authorization": "Bearer bad"})
    error = auth.refusal(request, auth.resolve(request))
    assert error is not None and error.code == "token_expired"


def test_anonymous_state() -> None:
    state = AuthState()
    assert state.user_id is None and state.permissions == () and state.claims == {}
    assert not state.has_permission("x")
    with pytest.raises(WachtAuthError) as info:
        state.require()
    assert info.value.code == "token_missing"
    with pytest.raises(WachtAuthError):
        state.forward_headers()


def test_request_argument_is_found_at_decoration_time() -> None:
    def by_name(x: int, request: object) -> None: ...
    def first(req: object, x: int) -> None: ...
    def method(self: object, request: object) -> None: ...
    def keyword(*, request: object) -> None: ...
    def none_at_all() -> None: ...

    assert request_argument(by_name)((1, "r"), {}) == "r"
    assert request_argument(by_name)((1,), {"request": "r"}) == "r"
    assert request_argument(first)(("r", 1), {}) == "r"
    assert request_argument(method)((None, "r"), {}) == "r"
    assert request_argument(keyword)((), {"request": "r"}) == "r"
    with pytest.raises(TypeError):
        request_argument(none_at_all)
    with pytest.raises(TypeError):
        request_argument(first, first=False)


def make_guards(states: dict[str, AuthState]) -> Guards[str]:
    async def astate(request: str, needs: tuple[str, ...]) -> AuthState:
        return states[request]

    return Guards(
        state=lambda request, needs: states[request],
        astate=astate,
        refuse=lambda request, error, state: (error.status, error.code),
    )


async def test_guards_sync_and_async() -> None:
    states = {
        "anon": AuthState(),
        "member": AuthState(session(organization="7", permissions={"organization": ["a"]})),
    }
    guards = make_guards(states)

    @guards.require_permission("a")
    def view(request: str) -> str:
        return "ok"

    @guards.require_organization("8")
    async def aview(request: str) -> str:
        return "ok"

    @guards.require_auth
    def signed_in(request: str) -> str:
        return "ok"

    assert view("member") == "ok" and view("anon") == (401, "token_missing")  # type: ignore[comparison-overlap]
    assert await aview("member") == (403, "organization_required")  # type: ignore[comparison-overlap]
    assert signed_in("member") == "ok" and signed_in.__name__ == "signed_in"
    with pytest.raises(TypeError):
        guards.require_organization(view)  # type: ignore[arg-type]  # @require_organization
    with pytest.raises(TypeError):
        guards.require_permission()


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
    paths = Paths(["/health", "/public/*"])
    assert "/health" in paths and "/public/x/y" in paths
    assert "/healthz" not in paths and "/private" not in paths
    assert not Paths() and list(paths) == ["/health", "/public/*"]
    with pytest.raises(ConfigurationError):
        Paths([""])


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
