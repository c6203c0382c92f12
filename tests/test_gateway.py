"""API keys and OAuth access tokens: the gateway's verdicts, routing, cost (docs/credentials.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import BearerRequest
from wacht_auth import ConfigurationError, Verifier
from wacht_auth.auth import Authenticator, AuthState, Requirement
from wacht_auth.gateway import Credential, Gateway, judge
from wacht_auth.testing import FakeGateway, Issuer

IDENTITY = {"key_id": "k1", "deployment_id": "1", "app_slug": "a", "key_name": "n"}


def answer(**members: Any) -> bytes:
    return json.dumps({"request_id": "r", "permissions": [], **members}).encode()


@pytest.mark.parametrize(
    ("status", "body", "retry_after", "code", "http"),
    [
        (200, answer(allowed=True, identity=IDENTITY), None, None, None),
        (200, answer(allowed=False), None, "credential_invalid", 401),  # no identity
        (200, answer(allowed=True, identity={}), None, "credential_invalid", 401),
        (200, answer(allowed=False, identity=IDENTITY, reason="permission_denied"), None,
         "permission_denied", 403),
        (200, answer(allowed=False, identity=IDENTITY, reason="blocked"), None,
         "permission_denied", 403),
        (200, answer(allowed=False, identity=IDENTITY, reason="rate_limited", retry_after=9),
         None, "rate_limited", 429),
        (429, b"{}", "12", "rate_limited", 429),
        (401, b'{"errors":[]}', None, "credential_invalid", 401),
        (404, b"", None, "credential_invalid", 401),
        (500, b"", None, "gateway_unavailable", 503),
        (502, b"<html>", None, "gateway_unavailable", 503),
        (302, b"", None, "gateway_unavailable", 503),
        (200, b"not json", None, "gateway_unavailable", 503),
        (200, b"[1, 2]", None, "gateway_unavailable", 503),
    ],
)  # fmt: skip
def test_the_gateways_verdicts(
    status: int, body: bytes, retry_after: str | None, code: str | None, http: int | None
) -> None:
    checked = judge("api_key", status, body, retry_after)
    if code is None:
        assert checked.credential is not None and checked.error is None
        return
    assert checked.credential is None and checked.error is not None
    assert (checked.error.code, checked.error.status) == (code, http)
    if http in (429, 503):
        assert "Retry-After" in checked.error.response_headers()
    if http == 401:
        assert 'error="invalid_token"' in checked.error.response_headers()["WWW-Authenticate"]


def test_retry_after_comes_from_the_answer_or_the_header() -> None:
    limited = answer(allowed=False, identity=IDENTITY, reason="rate_limited", retry_after=9)
    assert judge("api_key", 200, limited).error.response_headers() == {"Retry-After": "9"}  # type: ignore[union-attr]
    assert judge("api_key", 429, b"", "12").error.response_headers() == {"Retry-After": "12"}  # type: ignore[union-attr]


def test_only_safe_headers_are_copied() -> None:
    headers = {
        "X-RateLimit-Remaining": "9",
        "X-Injected": "a\r\nSet-Cookie: stolen=1",
        "Bad Name": "x",
        "X-Number": 5,
    }
    checked = judge("api_key", 200, answer(allowed=True, identity=IDENTITY, headers=headers))
    assert checked.headers == (("X-RateLimit-Remaining", "9"),)


def test_the_gateway_cannot_set_framing_cookie_or_redirect_headers() -> None:
    # Copied onto our response, these would change its framing (a Content-Length or
    # Transfer-Encoding that disagrees with the body desyncs a keep-alive connection), plant
    # a cookie or redirect the client: only the rate-limit state is the gateway's to add.
    headers = {
        "Content-Length": "0",
        "Transfer-Encoding": "chunked",
        "Connection": "close",
        "Set-Cookie": "__session=planted; Path=/",
        "Location": "https://evil.example/",
        "Content-Type": "text/html",
        "Access-Control-Allow-Origin": "*",
        "X-RateLimit-Remaining": "9",
        "RateLimit-Policy": "100;w=60",
        "Retry-After": "3",
    }
    checked = judge("api_key", 200, answer(allowed=True, identity=IDENTITY, headers=headers))
    assert checked.headers == (
        ("X-RateLimit-Remaining", "9"),
        ("RateLimit-Policy", "100;w=60"),
        ("Retry-After", "3"),
    )


def test_a_credential_is_read_only_and_answers_like_a_session() -> None:
    body = answer(
        allowed=True,
        identity={**IDENTITY, "owner_user_id": 42, "organization_id": "7"},
        permissions=["invoices:read"],
        metadata={"scopes": "read write", "nested": {"a": [1]}},
    )
    credential = judge("oauth_token", 200, body).credential
    assert credential is not None
    # An OAuth token acts for the user who consented; its permissions are its scopes.
    assert (credential.user_id, credential.owner_user_id) == ("42", "42")
    assert (credential.key_id, credential.organization_id, credential.workspace_id) == (
        "k1",
        "7",
        None,
    )
    assert credential.scopes == ("read", "write") and credential.token is None
    assert credential.token_format == "opaque"
    assert credential.has_permission("read", "workspace") and credential.has_scope("write")
    assert not credential.has_permission("invoices:read")
    with pytest.raises(AttributeError):
        credential.permissions = ("admin",)  # type: ignore[misc]
    with pytest.raises(TypeError):
        credential.identity["owner_user_id"] = "1"  # type: ignore[index]
    with pytest.raises(AttributeError):
        credential.metadata["nested"]["a"].append(2)
    with pytest.raises(Exception) as refused:
        credential.forward_headers()
    assert getattr(refused.value, "code", None) == "token_missing"
    state = AuthState(credential=credential)
    assert state.is_authenticated and state.token_type == "oauth_token"
    # AuthState.user_id for OAuth tokens comes with the request layer's re-cut.
    assert (state.owner_user_id, state.organization_id) == ("42", "7")
    assert state.identity["key_id"] == "k1" and state.scopes == ("read", "write")
    assert state.require() is credential and state.permissions == ("read", "write")
    assert Requirement(("read",)).check(state) is credential


# -- routing and cost, with a fake gateway on loopback ------------------------------------------


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer() as started:
        yield started


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway() as started:
        yield started


Request = BearerRequest


def layer(issuer: Issuer, gateway: FakeGateway, *accept: str, **config: Any) -> Authenticator:
    verifier = Verifier(issuer.config(gateway_url=gateway.url, deployment_id="1", **config))
    return Authenticator(verifier, accept=accept or ("session_token", "api_key", "oauth_token"))


def test_an_api_key_is_checked_by_the_gateway(issuer: Issuer, gateway: FakeGateway) -> None:
    key = gateway.add_key(owner_user_id="42", permissions=["invoices:read"])
    auth = layer(issuer, gateway)
    request = Request(key, "POST", headers={"user-agent": "curl/8"})
    state = auth.resolve(request, required_permissions=("invoices:read",))
    assert state.token_type == "api_key" and state.owner_user_id == "42"
    assert state.user_id is None and state.permissions == ("invoices:read",)
    assert dict(state.response_headers)["X-RateLimit-Remaining"] == "99"
    sent = gateway.checks[-1]
    assert sent == {
        "principal": {"type": "api_key", "value": key},
        "resource": "/invoices",
        "method": "POST",
        "client_ip": "203.0.113.9",
        "user_agent": "curl/8",
        "required_permissions": ["invoices:read"],
    }
    denied = auth.resolve(request, required_permissions=("invoices:write",))
    assert denied.error is not None and denied.error.code == "permission_denied"
    assert auth.resolve(request).is_authenticated  # never cached: every request asks
    assert len(gateway.checks) == 3


def test_session_tokens_of_the_deployment_never_reach_the_gateway(
    issuer: Issuer, gateway: FakeGateway
) -> None:
    auth = layer(issuer, gateway)
    assert auth.resolve(Request(issuer.token(user_id="7"))).user_id == "7"
    expired = auth.resolve(Request(issuer.expired_token(user_id="7")))
    assert expired.error is not None and expired.error.code == "token_expired"  # it stands
    forged = auth.resolve(Request(issuer.forged_token(user_id="7")))
    assert forged.error is not None and forged.error.code == "signature_invalid"
    assert gateway.checks == ()


def test_a_jwt_of_another_issuer_never_reaches_the_gateway(
    issuer: Issuer, gateway: FakeGateway
) -> None:
    with Issuer() as other:
        token = other.token(user_id="x")
    gateway.add_oauth_token(token, scopes=["read"], owner_user_id="42")
    state = layer(issuer, gateway).resolve(Request(token))
    # Wacht's gateway knows opaque tokens only: a JWT of no trusted issuer is refused here.
    assert state.error is not None and state.error.code == "issuer_invalid"
    assert gateway.checks == ()


@pytest.mark.parametrize("damage", ["{}.", '"{}"', "{}..x", " x.{}"])
def test_a_damaged_session_token_never_reaches_the_gateway(
    issuer: Issuer, gateway: FakeGateway, damage: str
) -> None:
    # No API key nor opaque OAuth token has a dot (Wacht's formats): a dotted value that is
    # not a well-formed JWS is a JWT a client or proxy mangled (a trailing dot, quotes, a
    # header cut off), and it carries a live session token: it is judged here, never sent.
    token = damage.format(issuer.token(user_id="7")).strip()
    state = layer(issuer, gateway).resolve(Request(token))
    assert state.error is not None and state.error.code == "token_malformed"
    assert gateway.checks == ()


def test_kinds_not_accepted_are_never_tried(issuer: Issuer, gateway: FakeGateway) -> None:
    key = gateway.add_key()
    sessions_only = Authenticator(
        Verifier(issuer.config(gateway_url=gateway.url, deployment_id="1"))
    )
    assert sessions_only.gateway is None
    state = sessions_only.resolve(Request(key))
    assert state.error is not None and state.error.code == "token_malformed"
    keys_only = layer(issuer, gateway, "api_key")
    refused = keys_only.resolve(Request(issuer.token(user_id="7")))
    assert refused.error is not None and refused.error.code == "credential_invalid"
    assert keys_only.resolve(Request(key)).token_type == "api_key"
    assert len(gateway.checks) == 1


def test_a_route_narrows_the_kinds_it_takes(issuer: Issuer, gateway: FakeGateway) -> None:
    auth = layer(issuer, gateway)
    key_state = auth.resolve(Request(gateway.add_key()))
    session_state = auth.resolve(Request(issuer.token(user_id="7")))
    keys_only = Requirement(accept=("api_key",))
    assert keys_only.check(key_state) is key_state.credential
    with pytest.raises(Exception) as refused:
        keys_only.check(session_state)
    assert getattr(refused.value, "code", None) == "credential_invalid"
    with pytest.raises(ConfigurationError):
        Requirement(accept=("password",))
    with pytest.raises(ConfigurationError):
        Authenticator(Verifier(issuer.config()), accept=())


def test_sequential_checks_reuse_one_connection(issuer: Issuer, gateway: FakeGateway) -> None:
    auth = layer(issuer, gateway)
    key = gateway.add_key()
    for _ in range(20):
        assert auth.resolve(Request(key)).is_authenticated
    assert gateway.connections == 1

    async def many() -> None:
        for _ in range(20):
            assert (await auth.aresolve(Request(key))).is_authenticated

    asyncio.run(many())
    assert gateway.connections == 2  # one more: the async pool of that event loop
    assert len(gateway.checks) == 40


def test_a_hanging_gateway_is_a_503_within_the_timeout(
    issuer: Issuer, gateway: FakeGateway
) -> None:
    key = gateway.add_key()
    gateway.delay(3)
    auth = layer(issuer, gateway, gateway_timeout=0.3)
    started = time.monotonic()
    state = auth.resolve(Request(key))
    assert state.error is not None and state.error.code == "gateway_unavailable"
    assert state.error.status == 503
    astate = asyncio.run(auth.aresolve(Request(key)))
    assert astate.error is not None and astate.error.code == "gateway_unavailable"
    assert time.monotonic() - started < 2.0  # two calls, each bounded by 0.3 s


def test_a_gateway_that_cannot_be_reached_is_a_503(issuer: Issuer) -> None:
    with FakeGateway() as gone:
        url = gone.url
    verifier = Verifier(issuer.config(gateway_url=url, deployment_id="1"))
    auth = Authenticator(verifier, accept=("session_token", "api_key"))
    state = auth.resolve(Request("wk_test_value"))
    assert state.error is not None and state.error.code == "gateway_unavailable"


def test_the_value_never_reaches_logs_or_reprs(
    issuer: Issuer, gateway: FakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = gateway.add_key()
    auth = layer(issuer, gateway)
    state = auth.resolve(Request(key))
    gateway.fail(500)
    failed = auth.resolve(Request(key))
    texts = [repr(state), repr(state.credential), repr(failed), caplog.text]
    texts += [str(failed.error), repr(Gateway(gateway.url)), repr(auth)]
    assert not [text for text in texts if key in text]


def test_the_gateway_url_is_https_or_loopback(issuer: Issuer) -> None:
    with pytest.raises(ConfigurationError):
        issuer.config(gateway_url="http://gateway.example")
    assert issuer.config().gateway_url == "https://gateway.wacht.dev"


def test_importing_the_package_does_not_import_httpx() -> None:
    code = "import sys, wacht_auth, wacht_auth.auth; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_credential_repr_names_the_key_id_only() -> None:
    credential = Credential("api_key", IDENTITY)
    assert repr(credential) == (
        "Credential(token_type='api_key', token_format='opaque', key_id='k1')"
    )


def test_a_layer_taking_no_session_tokens_takes_no_cached_one(
    issuer: Issuer, gateway: FakeGateway
) -> None:
    verifier = Verifier(issuer.config(gateway_url=gateway.url, deployment_id="1"))
    token = issuer.token(user_id="7")
    verifier.verify(token)  # cached by another layer sharing this verifier
    keys_only = Authenticator(verifier, accept=("api_key",))
    state = keys_only.resolve(Request(token))
    assert state.error is not None and state.error.code == "credential_invalid"


# -- answers bound to this deployment; allow-lists; the answer's size ---------------------------


def test_an_answer_counts_only_for_this_deployment(caplog: pytest.LogCaptureFixture) -> None:
    ours = answer(allowed=True, identity={**IDENTITY, "deployment_id": 1})  # Wacht: a number
    theirs = answer(allowed=True, identity={**IDENTITY, "deployment_id": 999})
    assert judge("api_key", 200, ours, deployment_id="1").credential is not None
    with caplog.at_level(logging.WARNING, logger="wacht_auth"):
        refused = judge("api_key", 200, theirs, deployment_id="1")
    assert refused.credential is None and refused.error is not None
    assert (refused.error.code, refused.error.status) == ("credential_invalid", 401)
    assert refused.headers == ()  # another deployment's rate-limit state is not copied
    assert "999" in caplog.text and "deployment" in caplog.text
    # Denied or rate-limited answers about another deployment's key say nothing of it either.
    limited = answer(
        allowed=False, reason="rate_limited", identity={**IDENTITY, "deployment_id": 2}
    )
    error = judge("api_key", 200, limited, deployment_id=1).error
    assert error is not None and error.code == "credential_invalid"
    missing = answer(allowed=True, identity={"key_id": "k"})
    error = judge("oauth_token", 200, missing, deployment_id=1).error
    assert error is not None and error.code == "credential_invalid"


def test_allow_lists_of_app_slugs_and_client_ids() -> None:
    key = answer(allowed=True, identity=IDENTITY)  # app_slug "a"
    assert judge("api_key", 200, key, app_slugs=frozenset({"a"})).credential is not None
    error = judge("api_key", 200, key, app_slugs=frozenset({"b"})).error
    assert error is not None and error.code == "credential_invalid"
    token = answer(allowed=True, identity=IDENTITY, metadata={"client_id": "oc_1", "scopes": []})
    credential = judge("oauth_token", 200, token, client_ids=frozenset({"oc_1"})).credential
    assert credential is not None and credential.client_id == "oc_1"
    error = judge("oauth_token", 200, token, client_ids=frozenset({"oc_2"})).error
    assert error is not None and error.code == "credential_invalid"
    # Each list applies to its own kind only.
    assert judge("oauth_token", 200, token, app_slugs=frozenset({"b"})).credential is not None


def test_a_key_of_another_deployment_is_refused_through_the_fake_gateway() -> None:
    with FakeGateway() as gateway:
        ours = gateway.add_key(deployment_id="1", permissions=["invoices:write"])
        theirs = gateway.add_key(deployment_id="999", permissions=["invoices:write"])
        client = Gateway(gateway.url, timeout=2, deployment_id=1)
        try:
            good = client.check("api_key", ours, resource="/x", method="GET")
            bad = client.check("api_key", theirs, resource="/x", method="GET")
            abad = asyncio.run(client.acheck("api_key", theirs, resource="/x", method="GET"))
        finally:
            client.close()
    assert good.credential is not None and good.credential.deployment_id == "1"
    assert bad.error is not None and bad.error.code == "credential_invalid"
    assert abad.error is not None and abad.error.code == "credential_invalid"


def test_an_oversized_answer_is_gateway_unavailable() -> None:
    big = answer(allowed=True, identity=IDENTITY, metadata={"pad": "x" * 70_000})
    with FakeGateway() as gateway:
        key = gateway.add_key()
        gateway.answer_raw(big)
        client = Gateway(gateway.url, timeout=2, deployment_id=1)
        try:
            sync = client.check("api_key", key, resource="/x", method="GET")
            async_ = asyncio.run(client.acheck("api_key", key, resource="/x", method="GET"))
            small = Gateway(gateway.url, timeout=2, deployment_id=1, max_answer_bytes=100_000)
            fits = small.check("api_key", key, resource="/x", method="GET")
            small.close()
        finally:
            client.close()
    for checked in (sync, async_):
        assert checked.error is not None
        assert (checked.error.code, checked.error.status) == ("gateway_unavailable", 503)
    assert fits.credential is not None


@pytest.mark.parametrize(
    "url", ["http://gateway.wacht.dev", "http://10.0.0.5:8080", "ftp://gateway.wacht.dev", "x"]
)
def test_a_gateway_is_reached_over_https_only(url: str) -> None:
    # Every check sends a live API key or OAuth token: plain http only to a loopback host.
    with pytest.raises(ConfigurationError):
        Gateway(url, deployment_id=1)
    assert Gateway("https://gateway.wacht.dev/", deployment_id=1).url == (
        "https://gateway.wacht.dev"
    )


def test_gateway_settings_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        Gateway("http://127.0.0.1:1", deployment_id="  ")
    with pytest.raises(ConfigurationError):
        Gateway("http://127.0.0.1:1", deployment_id=1, app_slugs=[""])


# -- one deadline for the whole call; pooled sockets closed ------------------------------------


class Dripper:
    """A loopback server that answers one byte every ``interval`` seconds, for at most
    ``limit`` seconds: each read is quick, the whole answer slow."""

    def __init__(self, interval: float = 0.05, limit: float = 4.0) -> None:
        import socket
        import threading

        self.interval, self.limit = interval, limit
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                body = answer(allowed=True, identity=IDENTITY)
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                stop = time.monotonic() + self.limit
                for byte in head + body:
                    if time.monotonic() > stop:
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(self.interval)
            except OSError:
                return

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=6)


@pytest.mark.parametrize("shell", ["sync", "async"])
def test_a_dripping_gateway_is_cut_off_at_the_whole_call_deadline(shell: str) -> None:
    dripper = Dripper()
    client = Gateway(dripper.url, timeout=0.4, deployment_id=1)
    started = time.monotonic()
    try:
        if shell == "sync":
            checked = client.check("api_key", "sk_x", resource="/x", method="GET")
        else:
            checked = asyncio.run(client.acheck("api_key", "sk_x", resource="/x", method="GET"))
    finally:
        elapsed = time.monotonic() - started
        client.close()
        dripper.close()
    assert checked.error is not None and checked.error.code == "gateway_unavailable"
    # Every single read is far quicker than the timeout; only a whole-call deadline stops
    # the call near 0.4 s (per-read timeouts would let it run to the end of the drip, ~4 s).
    assert elapsed < 1.5


@pytest.mark.parametrize("shell", ["sync", "async"])
def test_pooled_connections_are_closed_when_the_gateway_client_goes(shell: str) -> None:
    code = f"""
import asyncio, gc
from wacht_auth.gateway import Gateway
from wacht_auth.testing import FakeGateway
with FakeGateway() as fake:
    key = fake.add_key()
    gateway = Gateway(fake.url, timeout=2, deployment_id=1)
    if {shell!r} == "sync":
        checked = gateway.check("api_key", key, resource="/", method="GET")
    else:
        checked = asyncio.run(gateway.acheck("api_key", key, resource="/", method="GET"))
    assert checked.credential is not None
del gateway
gc.collect()
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-W", "default::ResourceWarning", "-X", "dev", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "ok", out.stderr
    assert "ResourceWarning" not in out.stderr, out.stderr
