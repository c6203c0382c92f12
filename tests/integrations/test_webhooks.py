"""Webhook receivers through every framework: one table of deliveries, the same answers.

Django (sync and async views), Flask (sync and async views), Starlette and FastAPI (the
endpoint helper and the dependency) receive the same deliveries; each way to break one is
refused with its code and status, and the replay guard counts only handlers that succeeded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from django.test import AsyncClient, Client, override_settings

from wacht_auth.testing import Delivery, WebhookSigner

from . import webhook_apps
from .webhook_apps import NEW, OLD, SECRETS, SEEN

Post = Callable[[Delivery, str], tuple[int, Any]]
DAY = 86400


def _answer(status: int, content: bytes) -> tuple[int, Any]:
    try:
        return status, json.loads(content) if content else None
    except ValueError:
        return status, content


@pytest.fixture(autouse=True)
def _no_wacht_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("WACHT_", "NEXT_PUBLIC_WACHT_")):
            monkeypatch.delenv(name)


def _django(prefix: str) -> Iterator[Post]:
    settings = {"ROOT_URLCONF": "tests.integrations.webhook_apps", "MIDDLEWARE": []}
    with override_settings(WACHT_AUTH={"webhook_secret": SECRETS}, **settings):
        client = Client(raise_request_exception=False)

        def post(delivery: Delivery, method: str) -> tuple[int, Any]:
            url = f"/{prefix}/webhooks"
            if method != "POST":
                response = client.generic(method, url)
            else:
                response = delivery.post(client, url)
            return _answer(response.status_code, response.content)

        yield post


def _flask(prefix: str) -> Iterator[Post]:
    client = webhook_apps.flask_app().test_client()

    def post(delivery: Delivery, method: str) -> tuple[int, Any]:
        url = f"/{prefix}/webhooks"
        response = (
            client.open(url, method=method) if method != "POST" else delivery.post(client, url)
        )
        return _answer(response.status_code, response.data)

    yield post


def _httpx(app: Any, url: str) -> Iterator[Post]:
    from starlette.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as client:

        def post(delivery: Delivery, method: str) -> tuple[int, Any]:
            if method != "POST":
                response = client.request(method, url)
            else:
                response = delivery.post(client, url)
            return _answer(response.status_code, response.content)

        yield post


FRAMEWORKS = [
    "django-sync",
    "django-async",
    "flask-sync",
    "flask-async",
    "starlette",
    "fastapi-endpoint",
    "fastapi-dependency",
]


@pytest.fixture(params=FRAMEWORKS)
def post(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Post]:
    name: str = request.param
    monkeypatch.setenv("WACHT_WEBHOOK_SECRET", SECRETS)  # Starlette, FastAPI's dependency
    if name.startswith("django"):
        yield from _django(name.split("-")[1])
    elif name.startswith("flask"):
        yield from _flask(name.split("-")[1])
    elif name == "starlette":
        yield from _httpx(webhook_apps.starlette_app(), "/webhooks")
    else:
        yield from _httpx(webhook_apps.fastapi_app(), f"/{name.split('-')[1]}/webhooks")


@dataclass(frozen=True)
class Case:
    """A delivery made from a fresh one, and the answer every framework must give."""

    name: str
    make: Callable[[Delivery], Delivery]
    status: int
    code: str | None = None
    method: str = "POST"


def _signed(body: bytes, **kwargs: Any) -> Callable[[Delivery], Delivery]:
    return lambda fresh: NEW.delivery(body=body, **kwargs)


def _at(offset: float) -> Callable[[Delivery], Delivery]:
    return lambda fresh: NEW.delivery("user.updated", timestamp=time.time() + offset)


def _respaced(fresh: Delivery) -> Delivery:
    # The same JSON, re-serialized with other spacing: no longer the bytes Wacht signed.
    return replace(fresh, body=json.dumps(json.loads(fresh.body), indent=1).encode())


def _tampered(fresh: Delivery) -> Delivery:
    return replace(fresh, body=fresh.body.replace(b'"entity_id":1', b'"entity_id":2'))


CASES = [
    Case("accepted", lambda fresh: fresh, 204),
    Case("signed with the secret rolled over from", lambda f: OLD.delivery(), 204),
    Case("Wacht's 5th retry, 21.5 minutes late", _at(-21.5 * 60), 204),
    Case("Wacht's last retry, about 7 days late", _at(-7 * DAY + 600), 204),
    Case("unknown event name", lambda f: NEW.delivery("agent.hook.custom"), 204),
    Case("tampered body", _tampered, 503, "webhook_signature_invalid"),
    Case("JSON re-serialized", _respaced, 503, "webhook_signature_invalid"),
    Case("wrong secret", lambda f: WebhookSigner().delivery(), 503, "webhook_signature_invalid"),
    Case(
        "signature of another id",
        lambda f: f.with_headers(webhook_id="msg_other"),
        503,
        "webhook_signature_invalid",
    ),
    Case(
        "no webhook-id", lambda f: f.with_headers(webhook_id=None), 400, "webhook_headers_missing"
    ),
    Case(
        "no webhook-timestamp",
        lambda f: f.with_headers(webhook_timestamp=None),
        400,
        "webhook_headers_missing",
    ),
    Case(
        "no webhook-signature",
        lambda f: f.with_headers(webhook_signature=None),
        400,
        "webhook_headers_missing",
    ),
    Case(
        "timestamp not whole seconds",
        lambda f: f.with_headers(webhook_timestamp=f"{f.timestamp}.5"),
        400,
        "webhook_headers_malformed",
    ),
    Case("8 days old", _at(-8 * DAY), 400, "webhook_timestamp_too_old"),
    Case("10 minutes ahead", _at(600), 503, "webhook_timestamp_in_future"),
    Case(
        "over 1 MiB",
        _signed(b'{"type":"x","pad":"' + b"a" * (1 << 20) + b'"}'),
        413,
        "webhook_payload_too_large",
    ),
    Case("body not JSON", _signed(b"type=user.created"), 400, "webhook_payload_invalid"),
    Case("JSON without type", _signed(b'{"data":{}}'), 400, "webhook_payload_invalid"),
    Case("JSON array", _signed(b'[{"type":"user.created"}]'), 400, "webhook_payload_invalid"),
    Case("GET", lambda f: f, 405, "webhook_method_not_allowed", method="GET"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_framework_answers_alike(post: Post, case: Case) -> None:
    delivery = case.make(NEW.delivery())
    seen = len(SEEN)
    status, body = post(delivery, case.method)
    assert status == case.status, body
    if case.code is None:
        assert SEEN[-1].id == delivery.id and SEEN[-1].body == delivery.body
        return
    assert len(SEEN) == seen  # a refused delivery never reaches the handler
    error = body["error"]
    assert (error["code"], error["status"]) == (case.code, case.status)


def test_a_replayed_id_is_refused_once_handled(post: Post) -> None:
    delivery = NEW.delivery("session.created")
    assert post(delivery, "POST")[0] == 204
    status, body = post(delivery, "POST")
    assert (status, body["error"]["code"]) == (409, "webhook_replayed")


@pytest.mark.parametrize("fail", ["raise", "status"])
def test_a_failed_handler_does_not_count_as_seen(post: Post, fail: str) -> None:
    delivery = NEW.delivery("user.created", {"entity_id": "u_1", "fail": fail})
    assert post(delivery, "POST")[0] == 500  # Wacht retries a 5xx with the same id ...
    assert post(delivery, "POST")[0] == 204  # ... and the retry runs the handler again
    assert post(delivery, "POST")[0] == 409
    assert [e.id for e in SEEN[-2:]] == [delivery.id] * 2


async def test_django_async_client() -> None:
    delivery = NEW.delivery("organization.member.added", {"entity_id": 7})
    settings = {"ROOT_URLCONF": "tests.integrations.webhook_apps", "MIDDLEWARE": []}
    with override_settings(WACHT_AUTH={"webhook_secret": [NEW.secret]}, **settings):
        response = await delivery.post(AsyncClient(), "/async/webhooks")
        assert response.status_code == 204
        assert SEEN[-1].data == {"entity_id": 7}
        again = await delivery.post(AsyncClient(), "/async/webhooks")
        assert json.loads(again.content)["error"]["code"] == "webhook_replayed"
        old = await OLD.delivery().post(AsyncClient(), "/async/webhooks")
        assert json.loads(old.content)["error"]["code"] == "webhook_signature_invalid"


def test_django_views_are_csrf_exempt_and_the_secret_named_on_error() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from wacht_auth.integrations.django import webhook_receiver

    assert webhook_apps.django_sync.csrf_exempt is True
    with override_settings(WACHT_AUTH={"webhook_secret": "whsec_short"}):
        with pytest.raises(ImproperlyConfigured) as raised:
            webhook_receiver()
        assert "settings.WACHT_AUTH['webhook_secret']" in str(raised.value)
        assert "short" not in str(raised.value)
    with override_settings(WACHT_AUTH={}), pytest.raises(ImproperlyConfigured):
        webhook_receiver()


def test_flask_receiver_fails_at_start_up_naming_the_setting() -> None:
    from wacht_auth.errors import ConfigurationError
    from wacht_auth.integrations.flask import webhook_receiver

    app = webhook_apps.flask_app(secret="whsec_!!!")
    with pytest.raises(ConfigurationError) as raised:
        webhook_receiver(app)
    assert "app.config['WACHT_WEBHOOK_SECRET']" in str(raised.value)
    assert webhook_receiver(webhook_apps.flask_app()) is not None


def test_starlette_receiver_fails_at_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wacht_auth.errors import ConfigurationError

    monkeypatch.setenv("WACHT_WEBHOOK_SECRET", f"{NEW.secret},not-base64!")
    with pytest.raises(ConfigurationError) as raised:
        webhook_apps.starlette_app()
    assert "WACHT_WEBHOOK_SECRET (secret 2 of 2)" in str(raised.value)
    monkeypatch.delenv("WACHT_WEBHOOK_SECRET")
    with pytest.raises(ConfigurationError) as missing:
        webhook_apps.starlette_app()
    assert "WACHT_WEBHOOK_SECRET" in str(missing.value)


class _Endless:
    """A request body of unknown length (chunked): counts what the receiver reads of it."""

    def __init__(self, size: int) -> None:
        self.left, self.read_bytes = size, 0

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        self.read_bytes += n
        return b" " * n

    def close(self) -> None:
        """Nothing to release."""


CAP = 4096
HUGE = 8 << 20  # 8 MiB sent without Content-Length


def test_flask_reads_a_chunked_body_only_up_to_the_cap() -> None:
    from werkzeug.test import EnvironBuilder

    app = webhook_apps.flask_app()
    app.config["WACHT_WEBHOOK_MAX_BYTES"] = CAP
    delivery = NEW.delivery()
    environ = EnvironBuilder(path="/sync/webhooks", method="POST", headers=delivery.headers)
    env = environ.get_environ()
    body = _Endless(HUGE)
    env.pop("CONTENT_LENGTH", None)
    # A server that de-chunks the body (gunicorn, Werkzeug's own) says the stream ends.
    env.update({"wsgi.input": body, "wsgi.input_terminated": True})
    answer: list[str] = []
    content = b"".join(app.wsgi_app(env, lambda status, headers: answer.append(status)))
    assert answer[0].startswith("413")
    assert json.loads(content)["error"]["code"] == "webhook_payload_too_large"
    assert body.read_bytes <= CAP + 1  # not the 8 MiB


def test_flask_still_takes_a_chunked_delivery_under_the_cap() -> None:
    import io

    from werkzeug.test import EnvironBuilder

    app = webhook_apps.flask_app()
    delivery = NEW.delivery()
    env = EnvironBuilder(path="/sync/webhooks", method="POST", headers=delivery.headers)
    environ = env.get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": io.BytesIO(delivery.body), "wsgi.input_terminated": True})
    answer: list[str] = []
    b"".join(app.wsgi_app(environ, lambda status, headers: answer.append(status)))
    assert answer[0].startswith("204") and SEEN[-1].body == delivery.body
