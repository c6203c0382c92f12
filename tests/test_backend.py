"""The Backend API clients against a fake Backend API on 127.0.0.1 (a real HTTP server)."""

from __future__ import annotations

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
    AsyncBackendClient,
    AuthenticationError,
    BackendAPIError,
    BackendClient,
    BackendForbiddenError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SessionTicket,
    TransportError,
    UnprocessableEntityError,
    User,
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


@pytest.fixture
def fake() -> Iterator[FakeBackend]:
    with FakeBackend() as server:
        yield server


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
        "primary_email_address": {"email": "ada@example.com"},
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
    fake.reply("GET", "/users/123", Reply(200, user_json()))
    fake.reply("GET", "/organizations/7", Reply(200, {"id": 7, "name": "Acme", "plan": "pro"}))
    fake.reply("GET", "/workspaces/8", Reply(200, {"id": "8", "organization_id": "7"}))
    fake.reply(
        "POST",
        "/session/tickets",
        Reply(200, {"ticket": "tkt_abc", "expires_at": 1_900_000_000, "url": "https://p/x"}),
    )
    with make(fake, ft) as client:
        user = client.get_user("123")
        org = client.get_organization("7")
        ws = client.get_workspace("8")
        ticket = client.create_session_ticket(
            "webhook_app_access", app_slug="billing", expires_in=300
        )
        raw = client.request("GET", "/users/123", params={"expand": True, "skip": None})

    assert isinstance(user, User)
    assert (user.id, user.first_name, user.primary_email_address) == (
        "123",
        "Ada",
        "ada@example.com",
    )
    assert user["favourite_colour"] == "green" and user.raw["favourite_colour"] == "green"
    assert user.created_at is not None and user.created_at.year == 2026
    assert (org.id, org.name, org["plan"]) == ("7", "Acme", "pro")
    assert ws.organization_id == "7"
    assert isinstance(ticket, SessionTicket)
    assert (ticket.ticket, ticket.url) == ("tkt_abc", "https://p/x")
    assert ticket.expires_at is not None and ticket.expires_at.year == 2030
    assert "tkt_abc" not in repr(ticket)
    assert raw["favourite_colour"] == "green"

    assert len(fake.requests) == 5
    for request in fake.requests:
        assert_secret_headers(request, body=request.method == "POST")
    post = fake.requests_to("POST", "/session/tickets")[0]
    assert post.json() == {
        "ticket_type": "webhook_app_access",
        "app_slug": "billing",
        "expires_in": 300,
    }
    assert "idempotency-key" not in post.headers
    assert fake.requests[-1].query == {"expand": ["true"]}


def test_ids_are_escaped_and_paths_stay_on_the_api(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/users/..%2Fadmin", Reply(200, user_json("x")))
    with make(fake, ft) as client:
        client.get_user("../admin")
        for bad in ("https://evil.example/users", "//evil.example/users", "users"):
            with pytest.raises(ValueError):
                client.request("GET", bad)
        with pytest.raises(ValueError):
            client.get_user("")
        with pytest.raises(ValueError):
            client.create_session_ticket("bogus")  # type: ignore[arg-type]
    assert [r.path for r in fake.requests] == ["/users/..%2Fadmin"]


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
        "/users/1",
        Reply(status, envelope(status, "the_code", "it failed"), headers={"X-Request-ID": "r-1"}),
    )
    with make(fake, ft) as client, pytest.raises(cls) as info:
        client.get_user("1")
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
        client.create_user({"email_address": "a@b.c"})
    err = info.value
    assert err.code == "1001"  # always a string
    assert err.message == "email is taken; too short"
    assert (err.status, err.request_id) == (422, "abc")


def test_non_json_502_is_retried_then_reported(fake: FakeBackend, ft: FakeTime) -> None:
    html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    fake.reply("GET", "/users/1", Reply(502, body=html, headers={"Content-Type": "text/html"}))
    with make(fake, ft) as client, pytest.raises(ServerError) as info:
        client.get_user("1")
    err = info.value
    assert (err.code, err.status, err.attempts) == ("server_error", 502, 3)
    assert "after 3 attempts" in str(err)
    assert len(fake.requests) == 3
    assert ft.sleeps == [0.25, 0.5]  # full jitter with random() == 0.5: 0.5 * (0.5, 1.0)


def test_plain_text_error_body(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/users/1", Reply(400, body=b"missing  field\n"))
    with make(fake, ft) as client, pytest.raises(BadRequestError) as info:
        client.get_user("1")
    assert (info.value.code, info.value.message) == ("bad_request", "missing field")


def test_secret_never_in_repr_str_or_logs(
    fake: FakeBackend, ft: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    echo = envelope(401, "bad_key", f"invalid key Bearer {SECRET}")
    fake.reply("GET", "/users/1", Reply(401, echo))
    fake.reply("GET", "/users/2", Reply(503, {"errors": [{"message": f"echo {SECRET}"}]}))
    caplog.set_level(logging.DEBUG)
    with make(fake, ft) as client:
        assert SECRET not in repr(client) and SECRET not in str(client)
        assert "secret key" in repr(client)
        for user_id in ("1", "2"):
            with pytest.raises(BackendAPIError) as info:
                client.get_user(user_id)
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
    fake.reply("GET", "/users/5", Reply(200, user_json("5")))
    env = {
        "WACHT_API_KEY": SECRET,
        "WACHT_DEPLOYMENT_ID": DEPLOYMENT,
        "WACHT_BACKEND_API_URL": fake.url,
    }
    with BackendClient.from_env(env) as client:
        assert client.base_url == fake.url and client.deployment_id == DEPLOYMENT
        client.get_user("5")
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
    fake.reply("GET", "/users/5", Reply(200, user_json("5")))
    with BackendClient(config, deployment_id=DEPLOYMENT) as client:
        assert client.base_url == fake.url and client.deployment_id == DEPLOYMENT
        client.get_user("5")
    assert_secret_headers(fake.requests[0], body=False)


# -- paging --------------------------------------------------------------------------------------


def test_iter_users_walks_every_page(fake: FakeBackend, ft: FakeTime) -> None:
    fake.handle("GET", "/users", paged_users(25))
    with make(fake, ft) as client:
        users = list(client.iter_users(page_size=10, search="ada"))
        page = client.list_users(limit=10, offset=20)
    assert [u.id for u in users] == [str(1000 + i) for i in range(25)]
    assert users[7]["custom"] == 7
    walked = fake.requests[:-1]
    assert [r.param("offset") for r in walked] == [None, "10", "20"]
    assert all(r.param("limit") == "10" and r.param("search") == "ada" for r in walked)
    assert (len(page), page.has_more, page.limit, page.offset, page.total) == (5, False, 10, 20, 25)
    assert page.raw["total"] == 25


def test_iter_follows_a_cursor(fake: FakeBackend, ft: FakeTime) -> None:
    pages = {
        None: {"data": [{"id": "1"}], "has_more": True, "next_cursor": "c2"},
        "c2": {"data": [{"id": "2"}], "has_more": True, "next_cursor": "c3"},
        "c3": {"data": [{"id": "3"}], "has_more": False},
    }
    fake.handle("GET", "/organizations", lambda r: Reply(200, pages[r.param("cursor")]))
    with make(fake, ft) as client:
        assert [o.id for o in client.iter_organizations()] == ["1", "2", "3"]


def test_iter_is_bounded(fake: FakeBackend, ft: FakeTime) -> None:
    endless = {"data": [{"id": "1"}], "has_more": True}
    fake.reply("GET", "/organizations/7/members", Reply(200, endless))
    fake.reply("GET", "/workspaces/8/members", Reply(200, {"data": [], "has_more": True}))
    with make(fake, ft) as client:
        with pytest.raises(BackendAPIError) as info:
            list(client.iter_organization_members("7", max_pages=4))
        assert info.value.code == "too_many_pages"
        assert list(client.iter_workspace_members("8")) == []  # empty page ends the walk
    assert len(fake.requests) == 5


def test_members_page(fake: FakeBackend, ft: FakeTime) -> None:
    body = {
        "data": [{"id": "m1", "user": {"id": "5"}, "roles": [{"name": "admin"}, "billing"]}],
        "limit": 20,
        "offset": 0,
    }
    fake.reply("GET", "/workspaces/8/members", Reply(200, body))
    with make(fake, ft) as client:
        page = client.list_workspace_members("8", limit=20)
    (member,) = page
    assert (member.user_id, member.roles, page.has_more) == ("5", ("admin", "billing"), None)
    assert member.user is not None and member.user.id == "5"


# -- rate limits and retries ---------------------------------------------------------------------


def limited(headers: dict[str, str] | None = None, message: str = "slow down") -> Reply:
    return Reply(429, envelope(429, "rate_limited", message), headers=headers or {})


def test_429_retry_after_seconds(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/users/1", limited({"Retry-After": "2"}), Reply(200, user_json("1")))
    with make(fake, ft) as client:
        assert client.get_user("1").id == "1"
    assert ft.sleeps == [2.0] and len(fake.requests) == 2


def test_429_retry_after_http_date(fake: FakeBackend, ft: FakeTime) -> None:
    when = formatdate(time.time() + 3, usegmt=True)
    fake.reply("GET", "/users/1", limited({"Retry-After": when}), Reply(200, user_json("1")))
    with make(fake, ft) as client:
        client.get_user("1")
    assert len(ft.sleeps) == 1 and 1.0 <= ft.sleeps[0] <= 3.5


def test_429_with_only_a_message(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply(
        "GET",
        "/users/1",
        limited(message="Rate limit exceeded. Retry after 4 seconds"),
        Reply(200, user_json("1")),
    )
    with make(fake, ft) as client:
        client.get_user("1")
    assert ft.sleeps == [4.0]


def test_429_longer_than_allowed_gives_up_at_once(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/users/1", limited({"Retry-After": "120"}))
    with make(fake, ft) as client, pytest.raises(RateLimitError) as info:
        client.get_user("1")
    assert (info.value.retry_after, info.value.attempts, ft.sleeps) == (120.0, 1, [])


def test_retry_limit(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/users/1", limited({"Retry-After": "1"}))
    retry = RetryPolicy(max_attempts=4, random=lambda: 0.5)
    with make(fake, ft, retry=retry) as client, pytest.raises(RateLimitError) as info:
        client.get_user("1")
    assert info.value.attempts == 4 and "after 4 attempts" in str(info.value)
    assert len(fake.requests) == 4 and ft.sleeps == [1.0, 1.0, 1.0]


def test_retry_deadline(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply(
        "GET",
        "/users/1",
        Reply(503, envelope(503, "unavailable", "down"), headers={"Retry-After": "2"}),
    )
    retry = RetryPolicy(max_attempts=10, deadline=5)
    with make(fake, ft, retry=retry) as client, pytest.raises(ServerError) as info:
        client.get_user("1")
    # tries at t=0, 2, 4; a fourth would start at t=6, past the 5 s deadline
    assert info.value.attempts == 3 and len(fake.requests) == 3
    assert "deadline" in info.value.message and "after 3 attempts" in str(info.value)


def test_no_retry_for_other_statuses(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/users/1", Reply(500, envelope(500, "boom", "internal")))
    with make(fake, ft) as client, pytest.raises(ServerError):
        client.get_user("1")
    assert len(fake.requests) == 1 and ft.sleeps == []


def test_post_not_retried(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("POST", "/session/tickets", Reply(503, envelope(503, "unavailable", "down")))
    with make(fake, ft) as client, pytest.raises(ServerError) as info:
        client.create_session_ticket("impersonation", user_id="5")
    assert info.value.attempts == 1 and len(fake.requests) == 1 and ft.sleeps == []


def test_post_retried_with_idempotency_key(fake: FakeBackend, ft: FakeTime) -> None:
    ok = Reply(200, {"ticket": "t", "expires_at": "2030-01-01T00:00:00Z"})
    fake.reply("POST", "/session/tickets", limited({"Retry-After": "1"}), ok)
    with make(fake, ft) as client:
        ticket = client.create_session_ticket(
            "agent_access", user_id="5", idempotency_key="key-1", extra={"agent_id": "a"}
        )
    assert ticket.ticket == "t" and ticket.url is None
    assert [r.headers["idempotency-key"] for r in fake.requests] == ["key-1", "key-1"]
    assert fake.requests[0].json()["agent_id"] == "a"


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
        client.get_user("1")
    err = info.value
    assert (err.code, err.status, err.attempts) == ("connection_error", None, 3)
    assert len(ft.sleeps) == 2 and SECRET not in str(err)


def test_dropped_connection_not_retried_for_post(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("POST", "/users", Reply(drop=True))
    with make(fake, ft) as client, pytest.raises(TransportError) as info:
        client.create_user({"first_name": "A"})
    assert info.value.attempts == 1 and len(fake.requests) == 1


def test_timeout(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/users/1", Reply(200, user_json("1"), delay=0.5))
    client = make(fake, ft, retry=RetryPolicy(max_attempts=1), timeout=0.1)
    with client, pytest.raises(TransportError) as info:
        client.get_user("1")
    assert info.value.code == "timeout"


# -- async ---------------------------------------------------------------------------------------


async def test_async_headers_forwarding_and_paging(fake: FakeBackend, ft: FakeTime) -> None:
    fake.reply("GET", "/users/123", Reply(200, user_json()))
    fake.handle("GET", "/users", paged_users(7))
    fake.reply("GET", "/api-auth/apps", Reply(200, {"data": []}))
    async with amake(fake, ft) as client:
        user = await client.get_user("123")
        ids = [u.id async for u in client.iter_users(page_size=3)]
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
        "GET", "/users/1", limited(message="Retry after 3 seconds"), Reply(200, user_json("1"))
    )
    fake.reply(
        "GET",
        "/users/2",
        Reply(404, {"errors": [{"message": "no user", "code": "user_not_found"}]}),
    )
    fake.reply("GET", "/users/3", Reply(502, body=b"Bad Gateway"))
    fake.reply("POST", "/session/tickets", Reply(503, envelope(503, "unavailable", "down")))
    async with amake(fake, ft) as client:
        assert (await client.get_user("1")).id == "1"
        with pytest.raises(NotFoundError) as missing:
            await client.get_user("2")
        with pytest.raises(ServerError) as gateway:
            await client.get_user("3")
        with pytest.raises(ServerError) as post:
            await client.create_session_ticket("api_auth_access", app_slug="a")
    assert ft.sleeps[0] == 3.0
    assert missing.value.code == "user_not_found"
    assert (gateway.value.message, gateway.value.attempts) == ("Bad Gateway", 3)
    assert post.value.attempts == 1 and len(fake.requests_to("POST", "/session/tickets")) == 1


async def test_async_retry_deadline_and_date(fake: FakeBackend, ft: FakeTime) -> None:
    when = formatdate(time.time() + 10, usegmt=True)
    fake.reply("GET", "/users/1", limited({"Retry-After": when}))
    async with amake(fake, ft, retry=RetryPolicy(max_attempts=10, deadline=4)) as client:
        with pytest.raises(RateLimitError) as info:
            await client.get_user("1")
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

    fake.reply("GET", "/users/42", Reply(200, user_json("42")))
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
            user = await wacht.get_user(session.user_id)
            return JSONResponse({"id": user.id, "email": user.primary_email_address})

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
    from wacht_auth.backend._core import parse_retry_after, retry_after_from_message

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


def test_next_page_params() -> None:
    from wacht_auth.backend import Page
    from wacht_auth.backend._core import next_page_params

    def page(body: Any) -> Page[User]:
        return Page.parse(body, User)

    one = [{"id": "1"}, {"id": "2"}]
    assert next_page_params({"limit": 2}, page({"data": one, "has_more": True})) == {
        "limit": 2,
        "offset": 2,
    }
    assert next_page_params({"limit": 2}, page({"data": one, "has_more": False})) is None
    assert next_page_params({"limit": 2}, page({"data": one, "offset": 4, "total": 6})) is None
    assert next_page_params({"limit": 2}, page({"data": one})) == {"limit": 2, "offset": 2}
    assert next_page_params({"limit": 3}, page({"data": one})) is None  # short page
    assert next_page_params({}, page({"data": one})) is None  # no limit, no has_more: stop
    cursor = page({"data": one, "has_more": True, "next_cursor": "c"})
    assert next_page_params({"limit": 2, "offset": 0}, cursor) == {"limit": 2, "cursor": "c"}
    assert next_page_params({"cursor": "c"}, cursor) is None  # a cursor that repeats ends it
    assert next_page_params({}, page([{"id": "1"}])) is None  # bare list: one final page
    assert next_page_params({}, page("nonsense")) is None


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


def test_models_tolerate_shapes() -> None:
    from wacht_auth.backend import Membership, Organization

    user = User({"id": 5, "primary_email_address": "a@b.c", "created_at": 1_700_000_000_000})
    assert user.id == "5" and user.primary_email_address == "a@b.c"
    assert user.created_at is not None and user.created_at.year == 2023
    assert User({"created_at": "not a date"}).created_at is None
    assert Membership({"user_id": 9, "role": "admin"}).roles == ("admin",)
    assert Membership({"roles": None}).roles == () and Membership({}).user is None
    org = Organization({"id": "1", "member_count": "12", "name": 3})
    assert (org.member_count, org.name) == (12, None)
    assert org == Organization({"id": "1", "member_count": "12", "name": 3})
    assert org != User(org.raw) and dict(org) == dict(org.raw)
    with pytest.raises(TypeError):
        org.raw["id"] = "2"  # type: ignore[index]
    assert "Organization(id='1'" in repr(org)


def test_events_report_requests_and_retries(fake: FakeBackend, ft: FakeTime) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    fake.reply("GET", "/users/1", limited({"Retry-After": "1"}), Reply(200, user_json("1")))
    fake.reply("GET", "/users/2", Reply(404, envelope(404, "not_found", "gone")))

    def on_event(name: str, fields: Any) -> None:
        events.append((name, dict(fields)))
        raise RuntimeError("a broken metrics hook never breaks the call")

    with make(fake, ft, on_event=on_event) as client:
        client.get_user("1")
        with pytest.raises(NotFoundError):
            client.as_user(USER_JWT).get_user("2")
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
        lambda f: f.reply("GET", "/users/1", Reply(404, envelope(404, "user_missing", "gone"))),
        "get_user",
        ("1",),
        {},
    ),
    "errors_list_422": (
        lambda f: f.reply(
            "POST", "/users", Reply(422, {"errors": [{"message": "m", "code": "c"}]})
        ),
        "create_user",
        ({"first_name": "A"},),
        {},
    ),
    "html_502_retried": (
        lambda f: f.reply("GET", "/users/1", Reply(502, body=b"<html>bad gateway</html>")),
        "get_user",
        ("1",),
        {},
    ),
    "retry_after_seconds": (
        lambda f: f.reply(
            "GET", "/users/1", limited({"Retry-After": "2"}), Reply(200, user_json("1"))
        ),
        "get_user",
        ("1",),
        {},
    ),
    "retry_after_message": (
        lambda f: f.reply(
            "GET", "/users/1", limited(message="Retry after 3 seconds"), Reply(200, user_json("1"))
        ),
        "get_user",
        ("1",),
        {},
    ),
    "retry_limit": (
        lambda f: f.reply("GET", "/organizations/1", limited({"Retry-After": "1"})),
        "get_organization",
        ("1",),
        {},
    ),
    "post_not_retried": (
        lambda f: f.reply("POST", "/session/tickets", Reply(503, envelope(503, "down", "down"))),
        "create_session_ticket",
        ("impersonation",),
        {"user_id": "5"},
    ),
    "post_with_key_retried": (
        lambda f: f.reply(
            "POST", "/session/tickets", Reply(504, body=b""), Reply(200, {"ticket": "t"})
        ),
        "create_session_ticket",
        ("api_auth_access",),
        {"app_slug": "a", "idempotency_key": "k1"},
    ),
    "dropped_post": (
        lambda f: f.reply("POST", "/users", Reply(drop=True)),
        "create_user",
        ({},),
        {},
    ),
    "paging": (
        lambda f: f.handle("GET", "/users", paged_users(12)),
        "iter_users",
        (),
        {"page_size": 5},
    ),
    "members": (
        lambda f: f.reply("GET", "/organizations/3/members", Reply(200, {"data": [{"id": "m"}]})),
        "list_organization_members",
        ("3",),
        {"limit": 5},
    ),
}


def _summary(value: Any) -> Any:
    if isinstance(value, list):
        return [_summary(v) for v in value]
    if hasattr(value, "raw"):
        return dict(value.raw)
    if hasattr(value, "data"):
        return [dict(v.raw) for v in value.data]
    return value


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_sync_and_async_clients_behave_alike(
    fake: FakeBackend, ft: FakeTime, scenario: str
) -> None:
    script, name, args, kwargs = SCENARIOS[scenario]
    outcomes = []
    for kind in ("sync", "async"):
        fake.requests.clear()
        ft.sleeps.clear()
        script(fake)
        outcome: dict[str, Any] = {}
        try:
            if kind == "sync":
                with make(fake, ft) as client:
                    result = getattr(client, name)(*args, **kwargs)
                    outcome["result"] = _summary(
                        list(result) if name.startswith("iter") else result
                    )
            else:
                async with amake(fake, ft) as aclient:
                    call = getattr(aclient, name)(*args, **kwargs)
                    if name.startswith("iter"):
                        outcome["result"] = _summary([item async for item in call])
                    else:
                        outcome["result"] = _summary(await call)
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


def test_walk_bounds_are_checked_before_any_request(fake: FakeBackend, ft: FakeTime) -> None:
    with make(fake, ft) as client:
        for kwargs in ({"page_size": 0}, {"max_pages": 0}, {"page_size": True}):
            with pytest.raises(ValueError):
                client.iter_users(**kwargs)
        with pytest.raises(ValueError):
            client.list_users(limit=-1)
    assert fake.requests == []


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
