"""Every credential as Wacht issues it, through the request layer (docs/credentials.md).

Routing by Wacht's formats, the settings that bind the gateway to this deployment and build
the OAuth verifier, the state of an OAuth token (both formats), and the layer's own ``accept``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.helpers import BearerRequest
from wacht_auth import ConfigurationError, Verifier
from wacht_auth.auth import Authenticator, AuthState, configure, requirement
from wacht_auth.errors import WachtAuthError
from wacht_auth.testing import FakeGateway, Issuer, OAuthServer

ALL = ("session_token", "api_key", "oauth_token")


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer() as started:
        yield started


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway() as started:
        yield started


@pytest.fixture(scope="module")
def oauth() -> Iterator[OAuthServer]:
    with OAuthServer() as started:
        yield started


@dataclass
class Request(BearerRequest):
    """A bearer from a peer inside the proxies' network (``10.0.0.2``)."""

    peer: str = "10.0.0.2"


def layer(
    issuer: Issuer,
    gateway: FakeGateway | None,
    oauth: OAuthServer | None,
    *accept: str,
    deployment_id: str | None = "1",
    **options: Any,
) -> Authenticator:
    config = issuer.config(
        gateway_url=gateway.url if gateway else "https://gateway.wacht.dev",
        deployment_id=deployment_id,
    )
    if oauth is not None:
        options.setdefault("oauth_issuers", [oauth.url])
    return Authenticator(Verifier(config), accept=accept or ALL, **options)


# ------------------------------------------------------------------------- routing


def test_each_bearer_goes_where_its_format_says(
    issuer: Issuer, gateway: FakeGateway, oauth: OAuthServer
) -> None:
    auth = layer(issuer, gateway, oauth)
    session = auth.resolve(Request(issuer.token(user_id="7")))
    assert session.token_type == "session_token" and session.user_id == "7"
    jwt = auth.resolve(Request(oauth.access_token("42", scopes=["invoices:read"])))
    assert jwt.token_type == "oauth_token" and jwt.token_format == "jwt"
    assert gateway.checks == ()  # neither a session token nor a JWT leaves the process
    opaque = gateway.add_oauth_token(user_id="42", scopes=["invoices:read"])
    state = auth.resolve(Request(opaque))
    assert state.token_type == "oauth_token" and state.token_format == "opaque"
    assert gateway.checks[-1]["principal"] == {"type": "oauth_access_token", "value": opaque}
    key = gateway.add_key(owner_user_id="9")
    assert auth.resolve(Request(key)).token_type == "api_key"
    assert gateway.checks[-1]["principal"] == {"type": "api_key", "value": key}
    assert len(gateway.checks) == 2  # one call per gateway credential


def test_a_jwt_of_an_unknown_issuer_is_refused_and_sent_nowhere(
    issuer: Issuer, gateway: FakeGateway, oauth: OAuthServer
) -> None:
    with Issuer() as other:
        token = other.token(user_id="x")
        state = layer(issuer, gateway, oauth).resolve(Request(token))
        assert state.error is not None and state.error.code == "issuer_invalid"
        assert other.fetch_count == 0  # not even its keys were asked for
    assert gateway.checks == ()


def test_only_the_kinds_the_app_accepts(
    issuer: Issuer, gateway: FakeGateway, oauth: OAuthServer
) -> None:
    key = gateway.add_key()
    opaque = gateway.add_oauth_token()
    jwt = oauth.access_token("42")
    no_oauth = layer(issuer, gateway, oauth, "session_token", "api_key")
    for token in (opaque, jwt):
        refused = no_oauth.resolve(Request(token))
        assert refused.error is not None and refused.error.code == "credential_invalid"
    no_keys = layer(issuer, gateway, oauth, "session_token", "oauth_token")
    refused = no_keys.resolve(Request(key))
    assert refused.error is not None and refused.error.code == "credential_invalid"
    assert gateway.checks == ()  # a kind not accepted is never tried
    # Session tokens only: every bearer is a session token, as before (no routing).
    sessions = Authenticator(Verifier(issuer.config()))
    malformed = sessions.resolve(Request(opaque))
    assert malformed.error is not None and malformed.error.code == "token_malformed"


def test_an_oauth_jwt_repeat_is_a_cache_hit(issuer: Issuer, oauth: OAuthServer) -> None:
    auth = layer(issuer, None, oauth, "session_token", "oauth_token", deployment_id=None)
    token = oauth.access_token("42", scopes=["a"])
    assert auth.lookup(f"Bearer {token}") is None  # not verified yet
    first = auth.resolve(Request(token))
    assert first.is_authenticated
    fetches = oauth.fetch_count
    assert auth.lookup(f"Bearer {token}") is first  # one shared state, no I/O
    assert auth.resolve(Request(token)) is first
    assert oauth.fetch_count == fetches


def test_an_id_token_as_a_bearer_is_refused(issuer: Issuer, oauth: OAuthServer) -> None:
    auth = layer(issuer, None, oauth, "oauth_token", deployment_id=None)
    state = auth.resolve(Request(oauth.id_token("42")))
    assert state.error is not None and state.error.code == "token_use_invalid"


# ------------------------------------------------------------------------- the state


def test_an_oauth_token_gives_one_shape_in_both_formats(
    issuer: Issuer, gateway: FakeGateway, oauth: OAuthServer
) -> None:
    auth = layer(issuer, gateway, oauth)
    grant: dict[str, Any] = {
        "client_id": "oc_1",
        "scopes": ["invoices:read", "invoices:write"],
        "resource": "urn:wacht:organization:77",
        "session_id": "s1",
    }
    jwt = auth.resolve(Request(oauth.access_token("42", **grant)))
    opaque = auth.resolve(Request(gateway.add_oauth_token(user_id="42", **grant)))
    for state in (jwt, opaque):
        assert state.user_id == "42" and state.owner_user_id == "42"
        assert state.session_id == "s1" and state.client_id == "oc_1"
        assert state.organization_id == "77" and state.workspace_id is None
        assert state.scopes == ("invoices:read", "invoices:write")
        assert state.has_scope("invoices:write") and not state.has_scope("admin")
        assert state.has_permission("invoices:read")
    assert jwt.claims["client_id"] == "oc_1" and opaque.claims == {}


def test_an_api_key_has_no_user(issuer: Issuer, gateway: FakeGateway) -> None:
    state = layer(issuer, gateway, None).resolve(Request(gateway.add_key(owner_user_id="9")))
    assert state.user_id is None and state.owner_user_id == "9" and state.client_id is None
    assert state.token_format == "opaque" and state.scopes == ()


def test_permissions_and_scopes_judge_both_formats_alike(
    issuer: Issuer, gateway: FakeGateway, oauth: OAuthServer
) -> None:
    auth = layer(issuer, gateway, oauth)
    tokens = [
        oauth.access_token("42", scopes=["invoices:read"]),
        gateway.add_oauth_token(user_id="42", scopes=["invoices:read"]),
    ]
    for token in tokens:
        needs = ("invoices:read",)
        state = auth.resolve(Request(token), required_permissions=needs)
        assert requirement(*needs).check(state) is state.credential
        assert requirement(scopes=needs).check(state) is state.credential
        for refused in (requirement("invoices:write"), requirement(scopes=["invoices:write"])):
            with pytest.raises(WachtAuthError) as caught:
                refused.check(state)
            assert caught.value.code == "permission_denied"
    # The gateway is never asked for an OAuth token's permissions: they are its scopes.
    assert all("required_permissions" not in check for check in gateway.checks)


def test_require_scope_refuses_a_caller_without_scopes(
    issuer: Issuer, gateway: FakeGateway
) -> None:
    auth = layer(issuer, gateway, None)
    key = gateway.add_key(permissions=["invoices:read"])
    for state in (
        auth.resolve(Request(issuer.token(user_id="7"))),
        auth.resolve(Request(key)),
    ):
        with pytest.raises(WachtAuthError) as caught:
            requirement(scopes=["invoices:read"]).check(state)
        assert caught.value.code == "permission_denied"
    with pytest.raises(TypeError):
        requirement(scopes=[print])  # type: ignore[list-item]


# ------------------------------------------------------------------------- settings


def test_gateway_kinds_without_the_deployment_fail_at_start_up(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = {"frontend_api_url": issuer.url}
    spellings = [
        ("WACHT_DEPLOYMENT_ID", lambda: configure(env=True)),
        (
            "settings.WACHT_AUTH['deployment_id']",
            lambda: configure({**base, "accept": ["api_key"]}, where="settings.WACHT_AUTH"),
        ),
        (
            "app.config['WACHT_DEPLOYMENT_ID']",
            lambda: configure(
                {"WACHT_FRONTEND_API_URL": issuer.url, "WACHT_ACCEPT": "oauth_token"},
                where="app.config",
                prefixed=True,
            ),
        ),
    ]
    monkeypatch.setenv("WACHT_FRONTEND_API_URL", issuer.url)
    monkeypatch.setenv("WACHT_ACCEPT", "session_token,api_key")
    for spelled, build in spellings:
        with pytest.raises(ConfigurationError) as caught:
            build()
        assert spelled in caught.value.message  # names the setting to edit, as spelled
    monkeypatch.setenv("WACHT_DEPLOYMENT_ID", "1")
    assert configure().gateway is not None


def test_oauth_jwts_need_no_deployment_and_opaque_ones_are_then_refused(
    issuer: Issuer, oauth: OAuthServer, gateway: FakeGateway
) -> None:
    auth = layer(issuer, gateway, oauth, "oauth_token", deployment_id=None)
    assert auth.gateway is None
    assert auth.resolve(Request(oauth.access_token("42"))).user_id == "42"
    refused = auth.resolve(Request(gateway.add_oauth_token()))
    assert refused.error is not None and refused.error.code == "credential_invalid"
    assert gateway.checks == ()


def test_the_settings_build_the_gateway_and_the_oauth_verifier(
    issuer: Issuer, oauth: OAuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "WACHT_FRONTEND_API_URL": issuer.url,
        "WACHT_DEPLOYMENT_ID": "12",
        "WACHT_ACCEPT": "session_token,api_key,oauth_token",
        "WACHT_OAUTH_ISSUERS": f"{oauth.url}, https://oauth.example.com",
        "WACHT_OAUTH_AUDIENCES": "urn:wacht:organization:77",
        "WACHT_OAUTH_CLIENT_IDS": "oc_1,oc_2",
        "WACHT_API_AUTH_APPS": "billing",
        "WACHT_LEEWAY": "30",
    }.items():
        monkeypatch.setenv(name, value)
    auth = configure()
    assert auth.gateway is not None and auth.gateway.deployment_id == "12"
    assert auth.gateway.app_slugs == {"billing"} and auth.gateway.client_ids == {"oc_1", "oc_2"}
    assert auth.oauth is not None
    issuers = auth.oauth.issuers
    assert [i.issuer for i in issuers] == [oauth.url, "https://oauth.example.com"]
    assert all(i.leeway == 30 and i.client_ids == ("oc_1", "oc_2") for i in issuers)
    assert issuers[0].audiences == ("urn:wacht:organization:77",)
    monkeypatch.setenv("WACHT_OAUTH_ISSUERS", "oauth.example.com")
    with pytest.raises(ConfigurationError) as caught:
        configure()
    assert "WACHT_OAUTH_ISSUERS" in caught.value.message


def test_the_allow_lists_apply_to_both_formats(
    issuer: Issuer, gateway: FakeGateway, oauth: OAuthServer
) -> None:
    auth = layer(
        issuer, gateway, oauth, oauth_client_ids=["oc_1"], oauth_audiences=["urn:wacht:user:42"]
    )
    good = {"client_id": "oc_1", "resource": "urn:wacht:user:42"}
    for bad, code in (
        ({"client_id": "oc_2"}, ("party_not_authorized", "credential_invalid")),
        ({"resource": "urn:wacht:user:43"}, ("audience_invalid",)),
    ):
        grant = {**good, **bad}
        for token in (oauth.access_token("42", **grant), gateway.add_oauth_token(**grant)):
            state = auth.resolve(Request(token))
            assert state.error is not None and state.error.code in code, (grant, state)
    for token in (oauth.access_token("42", **good), gateway.add_oauth_token(**good)):
        assert auth.resolve(Request(token)).is_authenticated


def test_the_oauth_audiences_do_not_refuse_api_keys(
    issuer: Issuer, gateway: FakeGateway, oauth: OAuthServer
) -> None:
    # An API key names no OAuth resource: the OAuth allow-list is not its to pass.
    auth = layer(issuer, gateway, oauth, oauth_audiences=["urn:wacht:user:42"])
    state = auth.resolve(Request(gateway.add_key()))
    assert state.error is None and state.token_type == "api_key"


def test_a_key_of_another_deployment_is_refused_and_logged_without_it(
    issuer: Issuer, gateway: FakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wacht_auth")
    foreign = gateway.add_key(deployment_id="999", permissions=["invoices:write"])
    state = layer(issuer, gateway, None).resolve(Request(foreign))
    assert state.error is not None and state.error.code == "credential_invalid"
    assert "999" in caplog.text and foreign not in caplog.text


# ------------------------------------------------------------------------- review findings


def test_a_layer_decides_with_its_own_accept(issuer: Issuer, gateway: FakeGateway) -> None:
    verifier = Verifier(issuer.config(gateway_url=gateway.url, deployment_id="1"))
    keys = Authenticator(verifier, accept=("session_token", "api_key"))
    sessions = Authenticator(verifier)
    key = gateway.add_key()
    outer = keys.resolve(Request(key))
    assert outer.token_type == "api_key"
    inner = sessions.resolve(Request(key), outer)  # an admin sub-app: session tokens only
    assert not inner.is_authenticated and inner.error is not None
    # The other way round: a key the outer layer refused is one the inner layer takes.
    refused = sessions.resolve(Request(key))
    assert refused.error is not None
    assert keys.resolve(Request(key), refused).token_type == "api_key"
    # The same decision is reused: no second gateway call for one request.
    calls = len(gateway.checks)
    again = Authenticator(verifier, accept=("session_token", "api_key"))
    assert again.resolve(Request(key), outer) is outer
    assert len(gateway.checks) == calls


def test_the_gateway_is_told_the_client_behind_trusted_proxies(
    issuer: Issuer, gateway: FakeGateway
) -> None:
    key = gateway.add_key()
    forwarded = {"x-forwarded-for": "198.51.100.7, 10.0.0.9"}
    behind = layer(issuer, gateway, None, trusted_proxies=1)
    behind.resolve(Request(key, headers=forwarded, peer="10.0.0.2"))
    assert gateway.checks[-1]["client_ip"] == "10.0.0.9"  # one trusted hop
    layer(issuer, gateway, None, trusted_proxies=2).resolve(Request(key, headers=forwarded))
    assert gateway.checks[-1]["client_ip"] == "198.51.100.7"
    layer(issuer, gateway, None).resolve(Request(key, headers=forwarded))
    assert gateway.checks[-1]["client_ip"] == "10.0.0.2"  # no proxy trusted: the peer


def test_an_anonymous_state_is_reused_only_under_the_same_accept(issuer: Issuer) -> None:
    verifier = Verifier(issuer.config(deployment_id="1"))
    sessions = Authenticator(verifier)
    anonymous = sessions.resolve(Request(None))
    assert isinstance(anonymous, AuthState) and anonymous.accept == ("session_token",)
    assert Authenticator(verifier).resolve(Request(None), anonymous) is anonymous


def test_a_layer_set_up_in_code_names_the_setting_by_its_name(issuer: Issuer) -> None:
    with pytest.raises(ConfigurationError) as caught:
        configure(env=False, config=issuer.config(), accept=["api_key"])
    assert "deployment_id" in caught.value.message
    assert "WACHT_DEPLOYMENT_ID" not in caught.value.message  # the environment is not read
