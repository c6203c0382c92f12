"""The test kit's fake Backend API: every operation routed and answered from its schema,
answers and errors set per operation, requests recorded, and a user's view tested with it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from wacht_auth.backend import (
    OPERATIONS,
    AuthenticationError,
    BackendClient,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from wacht_auth.backend._generate import load_table
from wacht_auth.testing import BackendAnswer, BackendRequest, FakeBackendAPI, Issuer

TABLE = load_table()
RESPONSES = {op["id"]: op.get("response", {}) for op in TABLE["operations"]}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBackendAPI]:
    with FakeBackendAPI() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeBackendAPI) -> FakeBackendAPI:
    server.reset()
    return server


def test_every_operation_is_routed_and_answers_a_value_of_its_schema(
    fake: FakeBackendAPI,
) -> None:
    headers = {"Authorization": f"Bearer {fake.secret_key}"}
    with httpx.Client(base_url=fake.url, headers=headers, timeout=5) as http:
        for op in OPERATIONS.values():
            path = op.path
            for param in op.path_params:
                path = path.replace("{" + param + "}", f"{param}-7")
            answer = http.request(op.method, path)
            assert answer.status_code == 200, op.name
            jsonschema.Draft202012Validator(
                {"$defs": TABLE["schemas"], **RESPONSES[op.id]}
            ).validate(answer.json())
            last = fake.requests[-1]
            assert (last.operation, last.method) == (op.name, op.method)
            assert last.path_params == {p: f"{p}-7" for p in op.path_params}
    assert len(fake.requests) == len(OPERATIONS)


def test_the_typed_answer_has_every_field_of_its_schema(fake: FakeBackendAPI) -> None:
    with fake.client() as client:
        user = client.users.get_user_details("42")
    fields = TABLE["schemas"]["UserDetails"]["properties"]
    assert set(user) == set(fields)
    assert user["id"] == "1" and user["email_addresses"][0]["id"] == "1"


def test_an_answer_an_error_and_a_handler_per_operation(fake: FakeBackendAPI) -> None:
    user = fake.example("get_user_details")
    user["first_name"] = "Ada"
    fake.set_answer("get_user_details", user)
    fake.set_error("delete_user", 404, message="gone")
    fake.set_handler(
        "update_user_email",
        lambda request: BackendAnswer({"email": request.json()["email"]}, status=201),
    )
    with fake.client(retry=RetryPolicy(max_attempts=1)) as client:
        assert client.users.get_user_details("42")["first_name"] == "Ada"
        with pytest.raises(NotFoundError) as info:
            client.users.delete_user("42")
        assert info.value.code == "not_found" and info.value.status == 404
        email = client.users.update_user_email("42", "5", email="ada@example.com")
        assert email == {"email": "ada@example.com"}
        fake.set_error("get_user_details", 429, headers={"Retry-After": "0"})
        with pytest.raises(RateLimitError) as limited:
            client.users.get_user_details("42")
        assert limited.value.code == "rate_limited"
        fake.restore("get_user_details")
        assert client.users.get_user_details("42")["first_name"] == "first_name"
    (update,) = fake.requests_for("update_user_email")
    assert isinstance(update, BackendRequest) and update.json() == {"email": "ada@example.com"}
    assert update.path_params == {"user_id": "42", "email_id": "5"}
    assert update.headers["authorization"] == f"Bearer {fake.secret_key}"


def test_an_unknown_operation_name_is_a_key_error_with_a_suggestion(fake: FakeBackendAPI) -> None:
    with pytest.raises(KeyError, match="get_user_details"):
        fake.set_answer("get_user_detail", {})
    fake.set_answer("getUserDetails", {"id": "9"})  # the description's operationId works too
    with fake.client() as client:
        assert client.users.get_user_details("9")["id"] == "9"


def test_a_handler_that_raises_is_answered_500(fake: FakeBackendAPI) -> None:
    fake.set_handler("get_user_details", lambda request: request.json())  # no body: raises
    with fake.client(retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(ServerError) as info:
            client.users.get_user_details("42")
    assert info.value.code == "fake_handler_error"


def test_a_wrong_secret_key_is_answered_401(fake: FakeBackendAPI) -> None:
    with fake.client(secret_key="sk_test_wrong") as client:
        with pytest.raises(AuthenticationError) as info:
            client.users.get_user_details("42")
    assert info.value.code == "unauthorized"


def test_a_path_no_operation_has_is_answered_404_and_recorded(fake: FakeBackendAPI) -> None:
    with fake.client() as client, pytest.raises(NotFoundError):
        client.request("GET", "/no/such/path")
    assert fake.requests[-1].operation is None


def test_from_env_reaches_the_fake(fake: FakeBackendAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in fake.env.items():
        monkeypatch.setenv(name, value)
    with BackendClient.from_env() as client:
        client.users.get_user_details("42")
    assert fake.requests_for("get_user_details")[0].path == "/users/42/details"


async def test_the_async_client_reaches_the_fake(fake: FakeBackendAPI) -> None:
    async with fake.async_client() as client:
        user = await client.users.get_user_details("42")
    assert user["id"] == "1"


# -- a user's view that calls the Backend API, tested with the fixtures ---------------------


def create_app(config: Any) -> Any:
    flask = pytest.importorskip("flask")
    from wacht_auth.integrations.flask import Wacht, require_auth

    app = flask.Flask(__name__)
    Wacht(app, config=config)
    wacht = BackendClient.from_env()

    @app.get("/profile")
    @require_auth
    def profile() -> Any:
        try:
            user = wacht.users.get_user_details(flask.request.wacht.user_id)
        except NotFoundError:
            return flask.jsonify(error="no such user"), 404
        return flask.jsonify(name=f"{user['first_name']} {user['last_name']}")

    app.extensions["backend"] = wacht
    return app


def test_a_view_calling_the_backend_client(
    monkeypatch: pytest.MonkeyPatch, wacht_backend: FakeBackendAPI, wacht_issuer: Issuer
) -> None:
    for name, value in wacht_backend.env.items():
        monkeypatch.setenv(name, value)
    app = create_app(wacht_issuer.config())
    user = wacht_backend.example("get_user_details")
    user.update(first_name="Ada", last_name="Lovelace")
    wacht_backend.set_answer("get_user_details", user)
    headers = {"Authorization": f"Bearer {wacht_issuer.token('42')}"}
    try:
        client = app.test_client()
        assert client.get("/profile", headers=headers).json == {"name": "Ada Lovelace"}
        wacht_backend.set_error("get_user_details", 404)
        assert client.get("/profile", headers=headers).status_code == 404
    finally:
        app.extensions["backend"].close()
    assert [r.path_params for r in wacht_backend.requests_for("get_user_details")] == [
        {"user_id": "42"}
    ] * 2
