"""The Backend API clients against a fake Backend API on 127.0.0.1 (a real HTTP server)."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import pytest

from tests.fake_backend import FakeBackend, Recorded, Reply, paged_users
from wacht_auth import Config, ConfigurationError, Session, TokenMissingError
from wacht_auth.auth import AuthState
from wacht_auth.backend import (
    OPERATIONS,
    AsyncBackendClient,
    AuthenticationError,
    BackendAPIError,
    BackendClient,
    BackendForbiddenError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    RateLimitError,
    Record,
    RetryPolicy,
    ServerError,
    TransportError,
    UnprocessableEntityError,
)

SECRET = "wacht_live_sk_SuperSecret123"
USER_JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"
DEPLOYMENT = "424242"
UA = re.compile(r"^wacht-auth/\S+ python/\d+\.\d+$")


class FakeTime:
    """A monotonic clock that only moves when the client sleeps; records every wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBackend]:
    with FakeBackend() as running:
        yield running


@pytest.fixture
def fake(server: FakeBackend) -> FakeBackend:
    server.reset()
    return server


@pytest.fixture
def ft() -> FakeTime:
    return FakeTime()


def make(fake: FakeBackend, ft: FakeTime, **kw: Any) -> BackendClient:
    kw.setdefault("retry", RetryPolicy(max_attempts=3, random=lambda: 0.5))
    kw.setdefault("timeout", 5)
    return BackendClient(
        secret_key=SECRET,
        base_url=fake.url,
        deployment_id=DEPLOYMENT,
        clock=ft.clock,
        sleep=ft.sleep,
        **kw,
    )


def amake(fake: FakeBackend, ft: FakeTime, **kw: Any) -> AsyncBackendClient:
    kw.setdefault("retry", RetryPolicy(max_attempts=3, random=lambda: 0.5))
    kw.setdefault("timeout", 5)
    return AsyncBackendClient(
        secret_key=SECRET,
        base_url=fake.url,
        deployment_id=DEPLOYMENT,
        clock=ft.clock,
        sleep=ft.asleep,
        **kw,
    )


def session(token: str = USER_JWT) -> Session:
    now = int(time.time())
    return Session.from_claims({"sub": "123", "sid": "9", "iat": now, "exp": now + 60}, token)


def user_json(user_id: str = "123", **extra: Any) -> dict[str, Any]:
    return {
        "id": user_id,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "primary_email_address": "ada@example.com",
        "created_at": "2026-01-02T03:04:05Z",
        "favourite_colour": "green",
        **extra,
    }


def envelope(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def assert_secret_headers(request: Recorded, *, body: bool) -> None:
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert request.headers["x-deployment-id"] == DEPLOYMENT
    assert UA.match(request.headers["user-agent"]), request.headers["user-agent"]
    assert request.headers["accept"] == "application/json"
    if body:
        assert request.headers["content-type"] == "application/json"
    else:
        assert "content-type" not in request.headers


def no_secret_anywhere(request: Recorded) -> None:
    assert all(SECRET not in value for value in request.headers.values())
    assert SECRET.encode() not in request.body


# -- headers and models --------------------------------------------------------------------------


def test_headers_on_every_call_and_models_keep_unknown_fields(
    fake: FakeBackend, ft: FakeTime
) -> None:
    fake.reply("GET", "/users/123/details", Reply(200, user_json()))
    fake.reply("GET", "/organizations/7", Reply(200, {"id": 7, "name": "Acme", "plan": "pro"}))
    fake.reply("GET", "/workspaces/8", Reply(200, {"id": "8", "organization_id": "7"}))
    fake.reply(
        "POST",
        "/session/tickets",
        Reply(200, {"ticket": "tkt_abc", "expires_at": 1_900_000_000, "url": "https://p/x"}),
    )
    with make(fake, ft) as client:
        user = client.users.get_user_details("123")
        org = client.organizations.get_organization_details("7")
        ws = client.workspaces.get_workspace_details("8")
        ticket = client.session.create_backend_session_ticket(
            ticket_type="webhook_app_access", webhook_app_slug="billing", expires_in=300
        )
        raw = client.request("GET", "/users/123/details", params={"expand": True, "skip": None})

    assert isinstance(user, Record)
    assert (user["id"], user["first_name"], user["primary_email_address"]) == (
        "123",
        "Ada",
        "ada@example.com",
    )
    assert user["favourite_colour"] == "green"  # fields newer than the table are kept
    assert (org["id"], org["name"], org["plan"]) == (7, "Acme", "pro")
    assert ws["organization_id"] == "7"
    assert (ticket["ticket"], ticket["url"]) == ("tkt_abc", "https://p/x")
    assert ticket["expires_at"] == 1_900_000_000
    assert "tkt_abc" not in repr(ticket) and "https://p/x" not in str(ticket)
    assert raw["favourite_colour"] == "green"

    assert len(fake.requests) == 5
    for request in fake.requests:
        assert_secret_headers(request, body=request.method == "POST")
    post = fake.requests_to("POST", "/session/tickets")[0]
    assert post.json() == {
        "ticket_type": "webhook_app_access",
        "webhook_app_slug": "billing",
        "expires_in": 300,
    }
    assert "idempotency-key" not in post.headers
    assert fake.requests[-1].query == {"expand": ["true"]}


def test_an_operation_takes_only_its_own_argument_names(fake: FakeBackend, ft: FakeTime) -> None:
    """The generated methods pass values by wire name; a name the operation does not have (or
    a missing path parameter) is refused before anything is sent."""
    op = OPERATIONS["updateUser"]
    with make(fake, ft) as client:
        for arguments in (
            {"path": {}},
            {"path": {"user_id": "1", "org_id": "2"}},
            {"path": {"user_id": "1"}, "query": {"expand": True}},
            {"path": {"user_id": "1"}, "body": {"nickname": "x"}},
            {"path": {"user_id": "1"}, "body": {}, "files": {"avatar": b"x"}},
        ):
            with pytest.raises(InvalidArgumentError) as info:
                client._call(op, options={}, **arguments)
            assert info.value.code == "invalid_argument"
    assert fake.requests == []


def test_ids_are_escaped_and_paths_stay_on_the_api(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/users/..%2Fadmin/details", Reply(200, user_json("x")))
    with make(fake, ft) as client:
        client.users.get_user_details("../admin")
        for bad in ("https://evil.example/users", "//evil.example/users", "users", "/u?x=1"):
            with pytest.raises(InvalidArgumentError):
                client.request("GET", bad)
        with pytest.raises(InvalidArgumentError) as info:
            client.users.get_user_details("")
        assert info.value.code == "invalid_argument" and isinstance(info.value, ValueError)
        with pytest.raises(InvalidArgumentError):
            client.users.get_user_details(7.5)  # type: ignore[arg-type]
    assert [r.path for r in fake.requests] == ["/users/..%2Fadmin/details"]


# -- forwarding ----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["session", "token", "auth_state"])
def test_as_user_sends_the_user_jwt_and_never_the_secret(
    fake: FakeBackend, ft: FakeTime, who: str
) -> None:
    fake.reply("GET", "/api-auth/apps", Reply(200, {"data": []}))
    with make(fake, ft) as client:
        who_: Any = {"session": session(), "token": USER_JWT, "auth_state": AuthState(session())}
        user_client = client.as_user(who_[who])
        assert user_client.acting_as_user and not client.acting_as_user
        assert user_client._http is client._http  # one pool
        user_client.request("GET", "/api-auth/apps")
        with user_client:
            pass  # closing the forwarded client leaves the shared pool open
        client.request("GET", "/api-auth/apps")
    forwarded, own = fake.requests
    assert forwarded.headers["authorization"] == f"Bearer {USER_JWT}"
    assert forwarded.headers["x-deployment-id"] == DEPLOYMENT
    no_secret_anywhere(forwarded)
    assert own.headers["authorization"] == f"Bearer {SECRET}"
    assert USER_JWT not in repr(user_client) and SECRET not in repr(user_client)


def test_as_user_without_a_token(fake: FakeBackend, ft: FakeTime) -> None:
    with make(fake, ft) as client:
        with pytest.raises(TokenMissingError):
            client.as_user("")
        with pytest.raises(TokenMissingError):
            client.as_user(None)  # type: ignore[arg-type]
        with pytest.raises(TokenMissingError):
            client.as_user(AuthState())  # signed out: request.wacht without a session
        with pytest.raises(ValueError):
            client.as_user("bad token\r\nX-Evil: 1")


def test_session_forward_headers_match_as_user(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/me", Reply(200, {}))
    s = session()
    with make(fake, ft) as client:
        client.as_user(s).request("GET", "/me")
    assert fake.requests[0].headers["authorization"] == s.forward_headers()["Authorization"]


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, BackendForbiddenError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (500, ServerError),
    ],
)
def test_documented_error_envelope(
    fake: FakeBackend, ft: FakeTime, status: int, cls: type[BackendAPIError]
) -> None:
    fake.reply(
        "GET",
        "/users/1/details",
        Reply(status, envelope(status, "the_code", "it failed"), headers={"X-Request-ID": "r-1"}),
    )
    with make(fake, ft) as client, pytest.raises(cls) as info:
        client.users.get_user_details("1")
    err = info.value
    assert (err.code, err.message, err.status, err.request_id) == (
        "the_code",
        "it failed",
        status,
        "r-1",
    )
    assert err.attempts == 1 and len(fake.requests) == 1


def test_errors_list_envelope(fake: FakeBackend, ft: FakeTime) -> None:
    body = {"errors": [{"message": "email is taken", "code": 1001}, {"message": "too short"}]}
    fake.reply("POST", "/users", Reply(422, body, headers={"x-request-id": "abc"}))
    with make(fake, ft) as client, pytest.raises(UnprocessableEntityError) as info:
        client.users.create_user(first_name="A", last_name="B", email_address="a@b.c")
    err = info.value
    assert err.code == "1001"  # always a string
    assert err.message == "email is taken; too short"
    assert (err.status, err.request_id) == (422, "abc")


def test_non_json_502_is_retried_then_reported(fake: FakeBackend, ft: FakeTime) -> None:
    html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    fake.reply(
        "GET", "/users/1/details", Reply(502, body=html, headers={"Content-Type": "text/html"})
    )
    with make(fake, ft) as client, pytest.raises(ServerError) as info:
        client.users.get_user_details("1")
    err = info.value
    assert (err.code, err.status, err.attempts) == ("server_error", 502, 3)
    assert "after 3 attempts" in str(err)
    assert len(fake.requests) == 3
    assert ft.sleeps == [0.25, 0.5]  # full jitter with random() == 0.5: 0.5 * (0.5, 1.0)


def test_plain_text_error_body(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/users/1/details", Reply(400, body=b"missing  field\n"))
    with make(fake, ft) as client, pytest.raises(BadRequestError) as info:
        client.users.get_user_details("1")
    assert (info.value.code, info.value.message) == ("bad_request", "missing field")


def test_secret_never_in_repr_str_or_logs(
    fake: FakeBackend, ft: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    echo = envelope(401, "bad_key", f"invalid key Bearer {SECRET}")
    fake.reply("GET", "/users/1/details", Reply(401, echo))
    fake.reply("GET", "/users/2/details", Reply(503, {"errors": [{"message": f"echo {SECRET}"}]}))
    caplog.set_level(logging.DEBUG)
    with make(fake, ft) as client:
        assert SECRET not in repr(client) and SECRET not in str(client)
        assert "secret key" in repr(client)
        for user_id in ("1", "2"):
            with pytest.raises(BackendAPIError) as info:
                client.users.get_user_details(user_id)
            err = info.value
            for text in (str(err), repr(err), err.message, *map(str, err.args)):
                assert SECRET not in text
            assert "[redacted]" in err.message
    assert SECRET not in caplog.text


def test_missing_secret_is_a_configuration_error_that_names_the_setting() -> None:
    with pytest.raises(ConfigurationError) as info:
        BackendClient.from_env({})
    assert "WACHT_SECRET_KEY" in info.value.message
    with pytest.raises(ConfigurationError) as bad:
        BackendClient(secret_key="has a space " + SECRET)
    assert SECRET not in bad.value.message
    with pytest.raises(ConfigurationError):
        BackendClient(secret_key=SECRET, base_url="http://api.example.com")


# -- construction --------------------------------------------------------------------------------


def test_from_env_needs_no_frontend_settings(fake: FakeBackend) -> None:
    fake.reply("GET", "/users/5/details", Reply(200, user_json("5")))
    env = {
        "WACHT_API_KEY": SECRET,
        "WACHT_DEPLOYMENT_ID": DEPLOYMENT,
        "WACHT_BACKEND_API_URL": fake.url,
    }
    with BackendClient.from_env(env) as client:
        assert client.base_url == fake.url and client.deployment_id == DEPLOYMENT
        client.users.get_user_details("5")
    assert_secret_headers(fake.requests[0], body=False)
    assert BackendClient.from_env({"WACHT_SECRET_KEY": SECRET}).base_url == "https://api.wacht.dev"


def test_from_config_and_explicit_arguments_win(fake: FakeBackend) -> None:
    config = Config(
        frontend_api_url="https://example.wacht.services",
        secret_key=SECRET,
        deployment_id="1",
        backend_api_url=fake.url,
        backend_timeout=3,
    )
    fake.reply("GET", "/users/5/details", Reply(200, user_json("5")))
    with BackendClient(config, deployment_id=DEPLOYMENT) as client:
        assert client.base_url == fake.url and client.deployment_id == DEPLOYMENT
        client.users.get_user_details("5")
    assert_secret_headers(fake.requests[0], body=False)


# -- paging --------------------------------------------------------------------------------------


def test_iter_users_walks_every_page(fake: FakeBackend, ft: FakeTime) -> None:
    fake.handle("GET", "/users", paged_users(25))
    with make(fake, ft) as client:
        users = list(client.users.iter_active_user_list(limit=10, search="ada"))
        page = client.users.get_active_user_list(limit=10, offset=20)
    assert [u["id"] for u in users] == [str(1000 + i) for i in range(25)]
    assert users[7]["custom"] == 7
    walked = fake.requests[:-1]
    assert [r.param("offset") for r in walked] == [None, "10", "20"]
    assert all(r.param("limit") == "10" and r.param("search") == "ada" for r in walked)
    assert (len(page["data"]), page["limit"], page["offset"], page["total"]) == (5, 10, 20, 25)


def test_iter_follows_a_cursor(fake: FakeBackend, ft: FakeTime) -> None:
    pages = {
        None: {"data": [{"id": "1"}], "has_more": True, "next_cursor": "c2"},
        "c2": {"data": [{"id": "2"}], "has_more": True, "next_cursor": "c3"},
        "c3": {"data": [{"id": "3"}], "has_more": False},
    }
    fake.handle("GET", "/organizations", lambda r: Reply(200, pages[r.param("offset")]))
    fake.handle("GET", "/ai/actor-projects/search", lambda r: Reply(200, pages[r.param("cursor")]))
    with make(fake, ft) as client:
        # the list takes only ``offset``: the cursor goes there (the prose docs' form)
        assert [o["id"] for o in client.organizations.iter_organization_list()] == ["1", "2", "3"]
        # the description's cursor lists take ``cursor``
        found = client.ai.iter_search_actor_projects(actor_id="a", q="x")
        assert [p["id"] for p in found] == ["1", "2", "3"]
    assert fake.requests[-1].query == {"actor_id": ["a"], "q": ["x"], "cursor": ["c3"]}


def test_string_cursor_in_offset(fake: FakeBackend, ft: FakeTime) -> None:
    """The prose docs page with a string cursor in ``offset``: the issue's defect 3."""
    users = {"usr_a": ["usr_b", "usr_c"], "usr_c": ["usr_d"]}

    def handler(request: Recorded) -> Reply:
        data = [{"id": i} for i in users.get(request.param("offset") or "", [])]
        return Reply(200, {"data": data, "has_more": bool(data), "offset": request.param("offset")})

    fake.handle("GET", "/users", handler)
    with make(fake, ft) as client:
        page = client.users.get_active_user_list(offset="usr_a", limit=2)
        walked = list(client.users.iter_active_user_list(offset="usr_a", limit=2))
    assert [u["id"] for u in page["data"]] == ["usr_b", "usr_c"]
    assert [u["id"] for u in walked] == ["usr_b", "usr_c", "usr_d"]
    # after usr_d the server has nothing: an empty page ends the walk
    assert [r.param("offset") for r in fake.requests] == ["usr_a", "usr_a", "usr_c", "usr_d"]


def test_iter_is_bounded(fake: FakeBackend, ft: FakeTime) -> None:
    endless = {"data": [{"id": "1"}], "has_more": True}
    fake.reply("GET", "/organizations/7/members", Reply(200, endless))
    fake.reply("GET", "/workspaces/8/members", Reply(200, {"data": [], "has_more": True}))
    with make(fake, ft) as client:
        with pytest.raises(BackendAPIError) as info:
            list(client.organizations.iter_organization_members("7", max_pages=4))
        assert info.value.code == "too_many_pages"
        # an empty page ends the walk, has_more or not
        assert list(client.workspaces.iter_workspace_members("8")) == []
    assert len(fake.requests) == 5


def test_members_page(fake: FakeBackend, ft: FakeTime) -> None:
    body = {"data": [{"id": "m1", "user_id": "5"}], "limit": 20, "offset": 0, "total": 1}
    fake.reply("GET", "/workspaces/8/members", Reply(200, body))
    with make(fake, ft) as client:
        page = client.workspaces.get_workspace_members("8", limit=20)
        everything = list(client.workspaces.iter_workspace_members("8", limit=20))
    assert page == body  # a list answer is the page itself: never unwrapped
    assert everything == body["data"]
    assert len(fake.requests) == 2  # total reached: no second page


# -- rate limits and retries ---------------------------------------------------------------------


def limited(headers: dict[str, str] | None = None, message: str = "slow down") -> Reply:
    return Reply(429, envelope(429, "rate_limited", message), headers=headers or {})


def test_429_retry_after_seconds(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/users/1/details", limited({"Retry-After": "2"}), Reply(200, user_json("1")))
    with make(fake, ft) as client:
        assert client.users.get_user_details("1")["id"] == "1"
    assert ft.sleeps == [2.0] and len(fake.requests) == 2


def test_429_retry_after_http_date(fake: FakeBackend, ft: FakeTime) -> None:
    when = formatdate(time.time() + 3, usegmt=True)
    fake.reply(
        "GET", "/users/1/details", limited({"Retry-After": when}), Reply(200, user_json("1"))
    )
    with make(fake, ft) as client:
        client.users.get_user_details("1")
    assert len(ft.sleeps) == 1 and 1.0 <= ft.sleeps[0] <= 3.5


def test_429_with_only_a_message(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply(
        "GET",
        "/users/1/details",
        limited(message="Rate limit exceeded. Retry after 4 seconds"),
        Reply(200, user_json("1")),
    )
    with make(fake, ft) as client:
        client.users.get_user_details("1")
    assert ft.sleeps == [4.0]


def test_429_longer_than_allowed_gives_up_at_once(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/users/1/details", limited({"Retry-After": "120"}))
    with make(fake, ft) as client, pytest.raises(RateLimitError) as info:
        client.users.get_user_details("1")
    assert (info.value.retry_after, info.value.attempts, ft.sleeps) == (120.0, 1, [])


def test_retry_limit(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/users/1/details", limited({"Retry-After": "1"}))
    retry = RetryPolicy(max_attempts=4, random=lambda: 0.5)
    with make(fake, ft, retry=retry) as client, pytest.raises(RateLimitError) as info:
        client.users.get_user_details("1")
    assert info.value.attempts == 4 and "after 4 attempts" in str(info.value)
    assert len(fake.requests) == 4 and ft.sleeps == [1.0, 1.0, 1.0]


def test_retry_deadline(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply(
        "GET",
        "/users/1/details",
        Reply(503, envelope(503, "unavailable", "down"), headers={"Retry-After": "2"}),
    )
    retry = RetryPolicy(max_attempts=10, deadline=5)
    with make(fake, ft, retry=retry) as client, pytest.raises(ServerError) as info:
        client.users.get_user_details("1")
    # tries at t=0, 2, 4; a fourth would start at t=6, past the 5 s deadline
    assert info.value.attempts == 3 and len(fake.requests) == 3
    assert "deadline" in info.value.message and "after 3 attempts" in str(info.value)


def test_no_retry_for_other_statuses(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/users/1/details", Reply(500, envelope(500, "boom", "internal")))
    with make(fake, ft) as client, pytest.raises(ServerError):
        client.users.get_user_details("1")
    assert len(fake.requests) == 1 and ft.sleeps == []


def test_post_not_retried(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("POST", "/session/tickets", Reply(503, envelope(503, "unavailable", "down")))
    with make(fake, ft) as client, pytest.raises(ServerError) as info:
        client.session.create_backend_session_ticket(ticket_type="impersonation", user_id="5")
    assert info.value.attempts == 1 and len(fake.requests) == 1 and ft.sleeps == []


def test_post_retried_with_idempotency_key(fake: FakeBackend, ft: FakeTime) -> None:
    ok = Reply(200, {"ticket": "t", "expires_at": 1_900_000_000, "url": "https://p/?ticket=t"})
    fake.reply("POST", "/session/tickets", limited({"Retry-After": "1"}), ok)
    with make(fake, ft) as client:
        ticket = client.session.create_backend_session_ticket(
            ticket_type="agent_access",
            actor_id="5",
            agent_ids=["a1", "a2"],
            agent_session_identifier="static",
            idempotency_key="key-1",
        )
        generated = client.session.create_backend_session_ticket(
            ticket_type="impersonation", user_id="5", idempotency_key=True
        )
    assert ticket["ticket"] == "t"
    keys = [r.headers["idempotency-key"] for r in fake.requests]
    assert keys[:2] == ["key-1", "key-1"] and len(keys[2]) >= 32 and generated["ticket"] == "t"
    assert fake.requests[0].json() == {
        "ticket_type": "agent_access",
        "actor_id": "5",
        "agent_ids": ["a1", "a2"],
        "agent_session_identifier": "static",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_retried_for_get(ft: FakeTime) -> None:
    client = BackendClient(
        secret_key=SECRET,
        base_url=f"http://127.0.0.1:{free_port()}",
        clock=ft.clock,
        sleep=ft.sleep,
    )
    with client, pytest.raises(TransportError) as info:
        client.users.get_user_details("1")
    err = info.value
    assert (err.code, err.status, err.attempts) == ("connection_error", None, 3)
    assert len(ft.sleeps) == 2 and SECRET not in str(err)


def test_dropped_connection_not_retried_for_post(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("POST", "/users", Reply(drop=True))
    with make(fake, ft) as client, pytest.raises(TransportError) as info:
        client.users.create_user(first_name="A", last_name="B")
    assert info.value.attempts == 1 and len(fake.requests) == 1


def test_timeout(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/users/1/details", Reply(200, user_json("1"), delay=0.5))
    client = make(fake, ft, retry=RetryPolicy(max_attempts=1), timeout=0.1)
    with client, pytest.raises(TransportError) as info:
        client.users.get_user_details("1")
    assert info.value.code == "timeout"


# -- async ---------------------------------------------------------------------------------------


async def test_async_headers_forwarding_and_paging(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/users/123/details", Reply(200, user_json()))
    fake.handle("GET", "/users", paged_users(7))
    fake.reply("GET", "/api-auth/apps", Reply(200, {"data": []}))
    async with amake(fake, ft) as client:
        user = await client.users.get_user_details("123")
        ids = [u["id"] async for u in client.users.iter_active_user_list(limit=3)]
        await client.as_user(session()).request("GET", "/api-auth/apps")
    assert user["favourite_colour"] == "green"
    assert ids == [str(1000 + i) for i in range(7)]
    for request in fake.requests[:-1]:
        assert_secret_headers(request, body=False)
    forwarded = fake.requests[-1]
    assert forwarded.headers["authorization"] == f"Bearer {USER_JWT}"
    no_secret_anywhere(forwarded)


async def test_async_errors_and_retries(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply(
        "GET",
        "/users/1/details",
        limited(message="Retry after 3 seconds"),
        Reply(200, user_json("1")),
    )
    fake.reply(
        "GET",
        "/users/2/details",
        Reply(404, {"errors": [{"message": "no user", "code": "user_not_found"}]}),
    )
    fake.reply("GET", "/users/3/details", Reply(502, body=b"Bad Gateway"))
    fake.reply("POST", "/session/tickets", Reply(503, envelope(503, "unavailable", "down")))
    async with amake(fake, ft) as client:
        assert (await client.users.get_user_details("1"))["id"] == "1"
        with pytest.raises(NotFoundError) as missing:
            await client.users.get_user_details("2")
        with pytest.raises(ServerError) as gateway:
            await client.users.get_user_details("3")
        with pytest.raises(ServerError) as post:
            await client.session.create_backend_session_ticket(
                ticket_type="api_auth_access", api_auth_app_slug="a"
            )
    assert ft.sleeps[0] == 3.0
    assert missing.value.code == "user_not_found"
    assert (gateway.value.message, gateway.value.attempts) == ("Bad Gateway", 3)
    assert post.value.attempts == 1 and len(fake.requests_to("POST", "/session/tickets")) == 1


async def test_async_retry_deadline_and_date(fake: FakeBackend, ft: FakeTime) -> None:
    when = formatdate(time.time() + 10, usegmt=True)
    fake.reply("GET", "/users/1/details", limited({"Retry-After": when}))
    async with amake(fake, ft, retry=RetryPolicy(max_attempts=10, deadline=4)) as client:
        with pytest.raises(RateLimitError) as info:
            await client.users.get_user_details("1")
    # the server asks for ~10 s; waiting would pass the 4 s deadline: give up at once
    assert info.value.attempts == 1 and "deadline" in info.value.message
    assert ft.sleeps == [] and 8 <= (info.value.retry_after or 0) <= 10


def test_repr_of_models_and_errors_hide_credentials() -> None:
    err = AuthenticationError("nope", code="unauthorized", status=401, request_id="r")
    assert (
        repr(err)
        == "AuthenticationError(code='unauthorized', status=401, request_id='r', attempts=1)"
    )
    assert str(err) == "nope (code=unauthorized, status=401, request_id=r, after 1 attempt)"


# -- end to end ----------------------------------------------------------------------------------


async def test_end_to_end_protected_view_fetches_the_callers_user(fake: FakeBackend) -> None:
    """A view verifies the caller's token, then looks the caller up through the client."""
    pytest.importorskip("starlette")
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from wacht_auth import WachtAuthError
    from wacht_auth.testing import Issuer
    from wacht_auth.verifier import Verifier

    fake.reply("GET", "/users/42/details", Reply(200, user_json("42")))
    with Issuer() as issuer:
        config = issuer.config(
            secret_key=SECRET, deployment_id=DEPLOYMENT, backend_api_url=fake.url
        )
        verifier = Verifier(config)
        wacht = AsyncBackendClient(config)

        async def me(request: Request) -> JSONResponse:
            header = request.headers.get("authorization", "")
            try:
                session = await verifier.averify(header.removeprefix("Bearer ").strip())
            except WachtAuthError as exc:
                return JSONResponse(
                    exc.to_dict(), status_code=exc.status, headers=exc.response_headers()
                )
            user = await wacht.users.get_user_details(session.user_id)
            return JSONResponse({"id": user["id"], "email": user.get("primary_email_address")})

        app = Starlette(routes=[Route("/me", me)])
        transport = httpx.ASGITransport(app=app)
        async with wacht, httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            token = issuer.token("42")
            ok = await http.get("/me", headers={"Authorization": f"Bearer {token}"})
            denied = await http.get("/me", headers={"Authorization": "Bearer not.a.token"})

    assert ok.status_code == 200
    assert ok.json() == {"id": "42", "email": "ada@example.com"}
    assert denied.status_code == 401 and "invalid_token" in denied.headers["www-authenticate"]
    (lookup,) = fake.requests
    assert_secret_headers(lookup, body=False)


def test_forwarded_token_is_redacted_too(
    fake: FakeBackend, ft: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    fake.reply("GET", "/x", Reply(503, envelope(503, "down", f"bad token {USER_JWT}")))
    caplog.set_level(logging.DEBUG)
    with make(fake, ft) as client, pytest.raises(ServerError) as info:
        client.as_user(USER_JWT).request("GET", "/x")
    assert USER_JWT not in str(info.value) and "[redacted]" in info.value.message
    assert USER_JWT not in caplog.text and SECRET not in caplog.text
    assert "retrying" in caplog.text


# -- pure parts of the core ----------------------------------------------------------------------


def test_parse_retry_after() -> None:
    from wacht_auth.backend._retry import parse_retry_after, retry_after_from_message

    now = 1_800_000_000.0
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after(" 1.5 ", now=now) == 1.5
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    for bad in (None, "", "-1", "soon", "nan", "inf"):
        assert parse_retry_after(bad, now=now) is None
    assert retry_after_from_message("Too many requests. Retry after 12 seconds.") == 12.0
    assert retry_after_from_message("RETRY AFTER 2.5s") == 2.5
    assert retry_after_from_message("slow down") is None
    assert retry_after_from_message(None) is None


def test_backoff_is_capped_full_jitter() -> None:
    policy = RetryPolicy(backoff_base=1, backoff_max=5, random=lambda: 0.999)
    assert [round(policy.backoff(n), 2) for n in (1, 2, 3, 4, 50)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert RetryPolicy(random=lambda: 0.0).backoff(3) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": 21},
        {"max_attempts": True},
        {"deadline": 0},
        {"deadline": float("inf")},
        {"backoff_base": -1},
        {"max_retry_after": float("nan")},
    ],
)
def test_retry_policy_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)


def test_next_query() -> None:
    from wacht_auth.backend import PageInfo
    from wacht_auth.backend._paging import next_query

    offsets, cursors, both = (
        PageInfo(),
        PageInfo(offset=False, cursor=True),
        PageInfo("data", True, True),
    )
    one = [{"id": "1"}, {"id": "2"}]
    assert next_query({"limit": 2}, {"data": one, "has_more": True}, offsets) == {
        "limit": 2,
        "offset": 2,
    }
    assert next_query({"limit": 2}, {"data": one, "has_more": False}, offsets) is None
    assert next_query({"limit": 2}, {"data": one, "offset": 4, "total": 6}, offsets) is None
    assert next_query({"limit": 2}, {"data": one}, offsets) == {"limit": 2, "offset": 2}
    assert next_query({"limit": 3}, {"data": one}, offsets) is None  # short page
    assert next_query({}, {"data": one}, offsets) is None  # no limit, no has_more: stop
    assert next_query({"offset": "4"}, {"data": one, "has_more": True}, offsets) == {"offset": 6}
    page = {"data": one, "has_more": True, "next_cursor": "c"}
    assert next_query({"limit": 2, "offset": 0}, page, both) == {"limit": 2, "cursor": "c"}
    assert next_query({"limit": 2}, page, offsets) == {"limit": 2, "offset": "c"}
    assert next_query({"cursor": "c"}, page, cursors) is None  # a cursor that repeats ends it
    assert next_query({}, {"data": one, "has_more": True}, cursors) is None  # no cursor given
    # string cursors in offset (the prose docs): the answer's offset, else the last item's id
    assert next_query({"offset": "a"}, {"data": one, "offset": "b"}, offsets) == {"offset": "b"}
    assert next_query({"offset": "a"}, {"data": one, "offset": "a"}, offsets) == {"offset": "2"}
    assert next_query({"offset": "2"}, {"data": [{"id": "2"}], "offset": "x"}, offsets) == {
        "offset": "x"
    }
    assert next_query({"offset": "2x"}, {"data": [{"id": "2x"}]}, offsets) is None  # no move
    assert next_query({}, [{"id": "1"}], offsets) is None  # bare list: one final page
    assert next_query({}, "nonsense", offsets) is None
    assert next_query({}, {"data": "nonsense", "has_more": True}, offsets) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"error":{"code":"x","message":"m","status":400}}', ("x", "m", None)),
        (b'{"errors":[{"message":"a","code":7},{"message":"b"}]}', ("7", "a; b", None)),
        (b'{"errors":[]}', (None, None, None)),
        (b'{"error":"invalid_request","error_description":"d"}', ("invalid_request", "d", None)),
        (b'{"code":"c","message":"m","request_id":"r"}', ("c", "m", "r")),
        (b"[1,2]", (None, "[1,2]", None)),
        (b"upstream   timed out", (None, "upstream timed out", None)),
        (b"<!doctype html><p>oops</p>", (None, None, None)),
        (b"\xff\xfe", (None, "\ufffd\ufffd", None)),
        (b"", (None, None, None)),
    ],
)
def test_parse_error_body(body: bytes, expected: tuple[str | None, ...]) -> None:
    from wacht_auth.backend._errors import parse_error_body

    assert parse_error_body(body) == expected


def test_records_are_dicts_whose_repr_hides_credentials() -> None:
    from wacht_auth.backend._redact import Record

    ticket = Record(ticket="tkt_1", url="https://p/?ticket=tkt_1", expires_at=5)
    key = Record(id="k1", key="ak_live_x", secret="s", client_secret="cs", name="n")
    app = Record(url="https://hooks.example/in", signing_secret="whsec_1", access_token="at")
    for record in (ticket, key, app, [ticket], {"nested": key}):
        text = repr(record) + str(record)
        assert not any(s in text for s in ("tkt_1", "ak_live_x", "cs'", "whsec_1", "'at'"))
    assert "hooks.example" in repr(app)  # a URL is shown unless it sits next to a ticket
    assert ticket == {"ticket": "tkt_1", "url": "https://p/?ticket=tkt_1", "expires_at": 5}
    assert ticket["ticket"] == "tkt_1" and json.loads(json.dumps(ticket)) == dict(ticket)


def test_events_report_requests_and_retries(fake: FakeBackend, ft: FakeTime) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    fake.reply("GET", "/users/1/details", limited({"Retry-After": "1"}), Reply(200, user_json("1")))
    fake.reply("GET", "/users/2/details", Reply(404, envelope(404, "not_found", "gone")))

    def on_event(name: str, fields: Any) -> None:
        events.append((name, dict(fields)))
        raise RuntimeError("a broken metrics hook never breaks the call")

    with make(fake, ft, on_event=on_event) as client:
        client.users.get_user_details("1")
        with pytest.raises(NotFoundError):
            client.as_user(USER_JWT).users.get_user_details("2")
    names = [name for name, _ in events]
    assert names == ["backend_retry", "backend_request", "backend_request"]
    retry, ok, missing = (fields for _, fields in events)
    assert (retry["reason"], retry["delay"], retry["attempt"]) == ("http_429", 1.0, 1)
    assert (ok["outcome"], ok["status"], ok["attempts"], ok["as_user"]) == ("ok", 200, 2, False)
    assert ok["duration_ms"] == 1000.0  # the fake clock moved by the one wait
    assert (missing["outcome"], missing["status"], missing["as_user"]) == ("not_found", 404, True)
    assert all(SECRET not in repr(f) and USER_JWT not in repr(f) for _, f in events)


# -- the two clients behave alike ----------------------------------------------------------------

Script = Any  # Callable[[FakeBackend], None]

SCENARIOS: dict[str, tuple[Script, str, tuple[Any, ...], dict[str, Any]]] = {
    "envelope_404": (
        lambda f: f.reply(
            "GET", "/users/1/details", Reply(404, envelope(404, "user_missing", "gone"))
        ),
        "users.get_user_details",
        ("1",),
        {},
    ),
    "errors_list_422": (
        lambda f: f.reply(
            "POST", "/users/1/emails", Reply(422, {"errors": [{"message": "m", "code": "c"}]})
        ),
        "users.add_user_email",
        ("1",),
        {"email": "a@b.c"},
    ),
    "html_502_retried": (
        lambda f: f.reply("GET", "/users/1/details", Reply(502, body=b"<html>bad gateway</html>")),
        "users.get_user_details",
        ("1",),
        {},
    ),
    "non_json_200": (
        lambda f: f.reply("GET", "/users/1/details", Reply(200, body=b"<html>ok</html>")),
        "users.get_user_details",
        ("1",),
        {},
    ),
    "retry_after_seconds": (
        lambda f: f.reply(
            "GET", "/users/1/details", limited({"Retry-After": "2"}), Reply(200, user_json("1"))
        ),
        "users.get_user_details",
        ("1",),
        {},
    ),
    "retry_after_message": (
        lambda f: f.reply(
            "GET",
            "/users/1/details",
            limited(message="Retry after 3 seconds"),
            Reply(200, user_json("1")),
        ),
        "users.get_user_details",
        ("1",),
        {},
    ),
    "retry_limit": (
        lambda f: f.reply("GET", "/organizations/1", limited({"Retry-After": "1"})),
        "organizations.get_organization_details",
        ("1",),
        {},
    ),
    "retries_option": (
        lambda f: f.reply("GET", "/organizations/1", limited({"Retry-After": "1"})),
        "organizations.get_organization_details",
        ("1",),
        {"retries": 0, "timeout": 2, "extra_headers": {"X-Trace": "t1"}},
    ),
    "post_not_retried": (
        lambda f: f.reply("POST", "/session/tickets", Reply(503, envelope(503, "down", "down"))),
        "session.create_backend_session_ticket",
        (),
        {"ticket_type": "impersonation", "user_id": "5"},
    ),
    "post_with_key_retried": (
        lambda f: f.reply(
            "POST", "/session/tickets", Reply(504, body=b""), Reply(200, {"ticket": "t"})
        ),
        "session.create_backend_session_ticket",
        (),
        {"ticket_type": "api_auth_access", "api_auth_app_slug": "a", "idempotency_key": "k1"},
    ),
    "dropped_post": (
        lambda f: f.reply("POST", "/users/1/emails", Reply(drop=True)),
        "users.add_user_email",
        ("1",),
        {"email": "a@b.c"},
    ),
    "bad_argument": (
        lambda f: None,
        "users.get_active_user_list",
        (),
        {"limit": object()},
    ),
    "paging": (
        lambda f: f.handle("GET", "/users", paged_users(12)),
        "users.iter_active_user_list",
        (),
        {"limit": 5},
    ),
    "members": (
        lambda f: f.reply("GET", "/organizations/3/members", Reply(200, {"data": [{"id": "m"}]})),
        "organizations.get_organization_members",
        ("3",),
        {"limit": 5},
    ),
    "raw_request_unwraps": (
        lambda f: f.reply("GET", "/new/thing", Reply(200, {"data": {"id": "n"}})),
        "request",
        ("GET", "/new/thing"),
        {"params": {"a": 1}},
    ),
    "raw_paginate": (
        lambda f: f.handle("GET", "/users", paged_users(7)),
        "paginate",
        ("/users",),
        {"params": {"limit": 3}},
    ),
}


def _method(client: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        client = getattr(client, part)
    return client


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_sync_and_async_clients_behave_alike(
    fake: FakeBackend, ft: FakeTime, scenario: str
) -> None:
    script, name, args, kwargs = SCENARIOS[scenario]
    walks = name.rsplit(".", 1)[-1].startswith(("iter_", "paginate"))
    outcomes = []
    for kind in ("sync", "async"):
        fake.requests.clear()
        ft.sleeps.clear()
        script(fake)
        outcome: dict[str, Any] = {}
        try:
            if kind == "sync":
                with make(fake, ft) as client:
                    result = _method(client, name)(*args, **kwargs)
                    outcome["result"] = list(result) if walks else result
            else:
                async with amake(fake, ft) as aclient:
                    call = _method(aclient, name)(*args, **kwargs)
                    if walks:
                        outcome["result"] = [item async for item in call]
                    else:
                        outcome["result"] = await call
        except BackendAPIError as exc:
            outcome["error"] = (type(exc).__name__, exc.code, exc.status, exc.attempts, str(exc))
        outcome["sleeps"] = list(ft.sleeps)
        outcome["requests"] = [
            (r.method, r.path, r.query, r.body, r.headers.get("idempotency-key"))
            for r in fake.requests
        ]
        for request in fake.requests:
            assert_secret_headers(request, body=request.method == "POST")
        outcomes.append(outcome)
    assert outcomes[0] == outcomes[1]
    if scenario == "retries_option":
        assert outcomes[0]["error"][3] == 1  # retries=0: one attempt only
        assert fake.requests[0].headers["x-trace"] == "t1"
    if scenario == "bad_argument":
        assert outcomes[0]["error"][:2] == ("InvalidArgumentError", "invalid_argument")


def test_walk_bounds_are_checked_before_any_request(fake: FakeBackend, ft: FakeTime) -> None:
    with make(fake, ft) as client:
        users = client.users
        for kwargs in ({"limit": 0}, {"max_pages": 0}, {"limit": True}, {"offset": -1}):
            with pytest.raises(InvalidArgumentError):
                users.iter_active_user_list(**kwargs)
        with pytest.raises(InvalidArgumentError):
            client.paginate("/users", max_pages=0)
        for options in (
            {"timeout": 0},
            {"retries": -1},
            {"retries": True},
            {"extra_headers": {"Authorization": "Bearer x"}},
            {"extra_headers": {"X-A": "a\r\nX-B: b"}},
            {"extra_headers": {"bad name": "v"}},
            {"extra_headers": {"X-A": "caf\u00e9"}},
            {"idempotency_key": "has space"},
            {"bogus": 1},
        ):
            with pytest.raises(InvalidArgumentError):
                users.get_active_user_list(**options)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            users.create_user(first_name="A", last_name="B", profile_image=42)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            users.add_user_email("1", email=object())  # type: ignore[arg-type]
    assert fake.requests == []


def test_closed_client_raises_our_error(fake: FakeBackend, ft: FakeTime) -> None:
    client = make(fake, ft)
    forwarded = client.as_user(USER_JWT)
    client.close()
    for call in (
        lambda: client.users.get_user_details("1"),
        lambda: forwarded.users.get_user_details("1"),
        lambda: client.request("GET", "/x"),
        lambda: list(client.users.iter_active_user_list()),
    ):
        with pytest.raises(ClientClosedError) as info:
            call()
        assert info.value.code == "client_closed" and isinstance(info.value, RuntimeError)
    assert fake.requests == []


async def test_closed_async_client_raises_our_error(fake: FakeBackend, ft: FakeTime) -> None:
    client = amake(fake, ft)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await client.users.get_user_details("1")
    with pytest.raises(ClientClosedError):
        [x async for x in client.paginate("/users")]


def test_secret_is_redacted_before_the_message_is_cut(fake: FakeBackend, ft: FakeTime) -> None:
    """A long message echoing the key at the cut: no prefix of it may survive (defect 5)."""
    for pad in range(285, 300):
        message = "x" * pad + " " + SECRET + " tail"
        fake.reply("GET", "/users/1/details", Reply(400, envelope(400, "bad", message)))
        with make(fake, ft) as client, pytest.raises(BadRequestError) as info:
            client.users.get_user_details("1")
        text = str(info.value) + repr(info.value) + info.value.message
        assert SECRET[:8] not in text, pad
    echoed = "bad key " + SECRET[:18] + "…"  # a server that echoes only a part of the key
    fake.reply("GET", "/users/1/details", Reply(401, envelope(401, "bad", echoed)))
    with make(fake, ft) as client, pytest.raises(AuthenticationError) as info:
        client.users.get_user_details("1")
    assert SECRET[:18] not in str(info.value) and "[redacted]" in info.value.message


def test_error_fields_echoing_a_credential_are_redacted() -> None:
    from wacht_auth.backend._errors import error_from_response

    body = b'{"error":{"code":"bad_' + SECRET.encode() + b'","message":"m"}}'
    err = error_from_response(
        401,
        {"x-request-id": SECRET},
        body,
        method="GET",
        path="/x",
        redact=lambda s: s.replace(SECRET, "[redacted]"),
    )
    assert (err.code, err.request_id) == ("bad_[redacted]", "[redacted]")
    assert SECRET not in str(err) and SECRET not in repr(err)


def test_a_body_field_repeating_a_path_parameter_defaults_to_it(
    fake: FakeBackend, ft: FakeTime
) -> None:
    fake.reply("POST", "/webhooks/apps/billing/trigger", Reply(200, {"delivered": True}))
    with make(fake, ft) as client:
        hooks = client.webhooks
        hooks.trigger_webhook_event("billing", event_name="invoice.paid", payload={"id": 1})
        hooks.trigger_webhook_event("billing", body_app_slug="other", event_name="e", payload=1)
    first, second = (r.json() for r in fake.requests)
    assert first == {"app_slug": "billing", "event_name": "invoice.paid", "payload": {"id": 1}}
    assert second["app_slug"] == "other"


def test_a_ticket_the_server_handed_out_is_redacted_from_later_messages(
    fake: FakeBackend, ft: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    ticket = "tkt_4f9a8b7c6d5e"
    url = f"https://accounts.example/portal?ticket={ticket}"
    fake.reply("POST", "/session/tickets", Reply(200, {"ticket": ticket, "url": url}))
    message = f"ticket {ticket} already used; see {url}"
    fake.reply("GET", "/users/1/details", Reply(409, envelope(409, "used", message)))
    caplog.set_level(logging.DEBUG)
    with make(fake, ft) as client:
        issued = client.session.create_backend_session_ticket(ticket_type="impersonation")
        with pytest.raises(ConflictError) as info:
            client.as_user(USER_JWT).users.get_user_details("1")  # clones share what was seen
    assert issued["ticket"] == ticket and ticket not in repr(issued)
    text = str(info.value) + repr(info.value) + caplog.text
    assert ticket not in text and ticket[:10] not in text and "[redacted]" in text


@pytest.mark.parametrize(
    "answer",
    [
        {"data": [1, "x", None], "has_more": True, "offset": {}, "total": "many", "limit": []},
        {"data": [{"id": None}], "has_more": True, "offset": "cur", "next_cursor": 5},
        {"data": [{"no": "id"}], "has_more": True, "offset": "cur"},
        {"data": {"not": "a list"}, "has_more": True},
        {"data": [{"id": "1"}], "has_more": "yes", "total": -1},
        [{"id": "1"}],
        "a string",
        None,
        7,
    ],
)
def test_walkers_survive_odd_pages(fake: FakeBackend, ft: FakeTime, answer: Any) -> None:
    """Whatever a page looks like, a walk ends (or fails with our error), never loops."""
    fake.reply("GET", "/users", Reply(200, answer) if answer is not None else Reply(200))
    with make(fake, ft) as client:
        try:
            items = list(client.users.iter_active_user_list(offset="cur", max_pages=5))
        except BackendAPIError as exc:
            assert exc.code == "too_many_pages"
        else:
            assert len(items) <= 5 * 3
    assert 1 <= len(fake.requests) <= 5
