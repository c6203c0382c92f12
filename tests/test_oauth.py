"""OAuth JWT access tokens verified locally (wacht_auth.oauth) against the test kit's server."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator

import pytest

from wacht_auth import ConfigurationError, WachtAuthError
from wacht_auth.gateway import Credential, judge
from wacht_auth.oauth import OAuthIssuer, OAuthVerifier
from wacht_auth.testing import OAuthServer, OAuthSigningKey

ORG = "urn:wacht:organization:7"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def oauth(clock: Clock) -> Iterator[OAuthServer]:
    with OAuthServer(app_id="5", clock=clock) as server:
        yield server


def code_of(verifier: OAuthVerifier, token: str) -> tuple[str, int]:
    with pytest.raises(WachtAuthError) as caught:
        verifier.verify(token)
    return caught.value.code, caught.value.status


def test_an_access_token_becomes_an_oauth_credential(oauth: OAuthServer) -> None:
    verifier = OAuthVerifier(oauth.issuer_settings())
    token = oauth.access_token(
        "42", client_id="oc_9", scopes=["invoices:read", "profile"], resource=ORG, session_id="s1"
    )
    credential = verifier.verify(token)
    assert isinstance(credential, Credential)
    assert (credential.token_type, credential.token_format) == ("oauth_token", "jwt")
    assert (credential.user_id, credential.session_id, credential.client_id) == ("42", "s1", "oc_9")
    assert credential.scopes == ("invoices:read", "profile")
    assert (credential.resource, credential.organization_id, credential.workspace_id) == (
        ORG,
        "7",
        None,
    )
    assert credential.has_permission("invoices:read") and credential.has_scope("profile")
    assert not credential.has_permission("invoices:write")
    assert credential.claims["token_use"] == "access_token" and credential.token is None
    assert oauth.signing_key.kid == "oas-5-1"


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("urn:wacht:workspace:8", (None, "8", "42")),
        ("urn:wacht:user:42", (None, None, "42")),
        (None, (None, None, "42")),  # aud = the client id
    ],
)
def test_the_granted_resource_names_the_scope(
    oauth: OAuthServer, resource: str | None, expected: tuple[str | None, ...]
) -> None:
    credential = OAuthVerifier(oauth.issuer_settings()).verify(
        oauth.access_token("42", resource=resource)
    )
    assert (credential.organization_id, credential.workspace_id, credential.user_id) == expected
    assert credential.session_id is None


def test_jwt_and_opaque_tokens_give_the_same_answers(oauth: OAuthServer) -> None:
    jwt_credential = OAuthVerifier(oauth.issuer_settings()).verify(
        oauth.access_token(
            "42", client_id="oc_9", scopes=["a:read", "b"], resource=ORG, session_id="s1"
        )
    )
    body = json.dumps(
        {
            "allowed": True,
            "identity": {"key_id": "t1", "deployment_id": 1, "owner_user_id": 42},
            "permissions": ["something:else"],
            "metadata": {
                "scopes": ["a:read", "b"],
                "client_id": "oc_9",
                "resource": ORG,
                "session_id": "s1",
            },
        }
    ).encode()
    opaque = judge("oauth_token", 200, body, deployment_id="1").credential
    assert opaque is not None
    for name in (
        "token_type",
        "user_id",
        "session_id",
        "client_id",
        "scopes",
        "resource",
        "organization_id",
        "workspace_id",
        "permissions",
        "token",
    ):
        assert getattr(jwt_credential, name) == getattr(opaque, name), name
    for permission in ("a:read", "b", "something:else"):
        assert jwt_credential.has_permission(permission) == opaque.has_permission(permission)
    assert (jwt_credential.token_format, opaque.token_format) == ("jwt", "opaque")


def test_an_id_token_is_not_a_bearer(oauth: OAuthServer) -> None:
    verifier = OAuthVerifier(oauth.issuer_settings())
    assert code_of(verifier, oauth.id_token("42")) == ("token_use_invalid", 401)
    other = oauth.access_token(claims={"token_use": "refresh_token"})
    assert code_of(verifier, other) == ("token_use_invalid", 401)
    missing = oauth.access_token(claims={"token_use": None})
    assert code_of(verifier, missing)[0] == "token_use_invalid"


def test_the_header_rules(oauth: OAuthServer) -> None:
    verifier = OAuthVerifier(oauth.issuer_settings())
    assert code_of(verifier, oauth.access_token(headers={"kid": None}))[0] == "token_malformed"
    # RS256 only: the same RSA signature under another RSA alg name is refused unread.
    assert code_of(verifier, oauth.access_token(headers={"alg": "RS384"}))[0] == (
        "algorithm_not_allowed"
    )
    assert code_of(verifier, oauth.access_token(headers={"alg": "ES256"}))[0] == (
        "algorithm_not_allowed"
    )
    assert code_of(verifier, "oat_" + "a" * 43)[0] == "token_malformed"


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"exp": None}, "claims_invalid"),
        ({"sub": None}, "claims_invalid"),
        ({"client_id": None}, "claims_invalid"),
        ({"client_id": 5}, "claims_invalid"),
        ({"scope": ["a"]}, "claims_invalid"),
        ({"sid": {"x": 1}}, "claims_invalid"),
        ({"iss": "https://other.example"}, "issuer_invalid"),
        ({"iat": 1_800_000_100}, "token_not_yet_valid"),
    ],
)
def test_the_claim_rules(oauth: OAuthServer, claims: dict[str, object], code: str) -> None:
    verifier = OAuthVerifier(oauth.issuer_settings())
    assert code_of(verifier, oauth.access_token(claims=claims)) == (code, 401)


def test_expiry_uses_the_clock_and_the_leeway(oauth: OAuthServer, clock: Clock) -> None:
    verifier = OAuthVerifier(oauth.issuer_settings(leeway=5))
    token = oauth.access_token(expires_in=60)
    assert verifier.verify(token).user_id == "1"
    clock.now += 64
    assert verifier.verify(token).user_id == "1"  # a cache hit re-checks the time claims
    clock.now += 1
    assert code_of(verifier, token)[0] == "token_expired"


def test_allow_lists_of_audiences_and_client_ids(oauth: OAuthServer) -> None:
    verifier = OAuthVerifier(oauth.issuer_settings(audiences=[ORG], client_ids=["oc_9"]))
    assert verifier.verify(oauth.access_token(client_id="oc_9", resource=ORG)).client_id == "oc_9"
    other_resource = oauth.access_token(client_id="oc_9", resource="urn:wacht:organization:8")
    assert code_of(verifier, other_resource)[0] == "audience_invalid"
    other_client = oauth.access_token(client_id="oc_1", resource=ORG)
    assert code_of(verifier, other_client)[0] == "party_not_authorized"


def test_rotation_refreshes_once_and_retired_keys_keep_verifying(
    oauth: OAuthServer, clock: Clock
) -> None:
    verifier = OAuthVerifier(oauth.issuer_settings(jwks_cooldown=30))
    old = oauth.access_token("1")
    assert verifier.verify(old).user_id == "1" and oauth.fetch_count == 1
    oauth.rotate()
    assert [k["kid"] for k in oauth.jwks()["keys"]] == ["oas-5-2", "oas-5-1"]  # newest first
    new = oauth.access_token("2")
    # Within the cooldown of the first fetch an unknown kid earns no refresh (§4) ...
    assert code_of(verifier, new)[0] == "key_not_found" and oauth.fetch_count == 1
    clock.now += 31
    # ... after it, exactly one.
    assert verifier.verify(new).user_id == "2" and oauth.fetch_count == 2
    assert verifier.verify(oauth.access_token("3", key=oauth.keys[1])).user_id == "3"
    # A flood of unknown kids costs at most one fetch per cooldown, and good keys stay.
    stranger = OAuthSigningKey("oas-5-99")
    for _ in range(20):
        forged = oauth.sign(
            json.loads(
                json.dumps(
                    {
                        "iss": oauth.url,
                        "sub": "x",
                        "exp": clock.now + 60,
                        "client_id": "oc",
                        "token_use": "access_token",
                        "jti": secrets.token_hex(4),
                    }
                )
            ),
            key=stranger,
        )
        assert code_of(verifier, forged)[0] == "key_not_found"
    assert oauth.fetch_count == 2
    assert verifier.verify(oauth.access_token("4")).user_id == "4"
    clock.now += 31
    oauth.remove_key("oas-5-1")
    assert code_of(verifier, oauth.access_token("5", key=stranger))[0] == "key_not_found"
    assert oauth.fetch_count == 3


def test_a_repeated_token_is_a_cache_hit(oauth: OAuthServer) -> None:
    verifier = OAuthVerifier(oauth.issuer_settings())
    token = oauth.access_token("42", scopes=["a"])
    assert verifier.cached(token) is None
    first = verifier.verify(token)
    assert verifier.cached(token) is first and verifier.verify(token) is first
    assert asyncio.run(verifier.averify(token)) is first
    fresh = oauth.access_token("43")
    assert asyncio.run(verifier.averify(fresh)).user_id == "43"


def test_stale_keys_serve_while_the_key_server_fails(oauth: OAuthServer, clock: Clock) -> None:
    verifier = OAuthVerifier(oauth.issuer_settings(jwks_max_age=600, token_cache_size=0))
    verifier.prefetch()
    oauth.fail(503)
    clock.now += 700  # keys expired; the refresh fails; stale-if-error keeps them serving
    assert verifier.verify(oauth.access_token("1")).user_id == "1"


def test_no_keys_at_all_is_503(oauth: OAuthServer) -> None:
    oauth.fail(500)
    verifier = OAuthVerifier(oauth.issuer_settings())
    assert code_of(verifier, oauth.access_token())[1] == 503


def test_several_issuers_route_by_iss_without_fetching_for_strangers(clock: Clock) -> None:
    with OAuthServer(app_id="1", clock=clock) as one, OAuthServer(app_id="2", clock=clock) as two:
        verifier = OAuthVerifier([one.issuer_settings(), two.issuer_settings()])
        assert verifier.verify(one.access_token("a")).user_id == "a"
        assert verifier.verify(two.access_token("b")).user_id == "b"
        assert verifier.trusts(one.access_token()) and not verifier.trusts("oat_x")
        stranger = one.access_token(claims={"iss": "https://elsewhere.example"})
        assert not verifier.trusts(stranger)
        before = one.fetch_count + two.fetch_count
        assert code_of(verifier, stranger)[0] == "issuer_invalid"
        assert one.fetch_count + two.fetch_count == before


def test_issuer_settings_are_checked() -> None:
    settings = OAuthIssuer(issuer="https://auth.example.com")
    assert settings.jwks_url == "https://auth.example.com/.well-known/jwks.json"
    assert OAuthVerifier("https://auth.example.com").issuers[0] == settings
    for bad in ("http://auth.example.com", "https://auth.example.com/", "auth.example.com", ""):
        with pytest.raises(ConfigurationError):
            OAuthIssuer(issuer=bad)
    with pytest.raises(ConfigurationError):
        OAuthIssuer(issuer="https://a.example", jwks_url="http://a.example/keys")
    with pytest.raises(ConfigurationError):
        OAuthIssuer(issuer="https://a.example", client_ids=[""])
    with pytest.raises(ConfigurationError):
        OAuthVerifier([])
    with pytest.raises(ConfigurationError):
        OAuthVerifier(["https://a.example", "https://a.example"])
    assert OAuthIssuer(issuer="http://127.0.0.1:8000").issuer == "http://127.0.0.1:8000"


def test_settings_from_a_deployment_share_its_clock_and_cache_settings(clock: Clock) -> None:
    from wacht_auth import Config

    config = Config(frontend_api_url="https://x.example", clock=clock, leeway=9, jwks_cooldown=7)
    settings = OAuthIssuer.for_deployment(config, "https://oauth.example", client_ids=["oc_1"])
    assert (settings.clock, settings.leeway, settings.jwks_cooldown) == (clock, 9, 7)
    assert settings.client_ids == ("oc_1",)


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("urn:wacht:organization:7", ("7", None, None)),
        ("urn:wacht:workspace:123456789012345678", (None, "123456789012345678", None)),
        ("urn:wacht:user:42", (None, None, "42")),
        ("oc_client", (None, None, None)),
        ("urn:wacht:organization:", (None, None, None)),
        ("urn:wacht:organization:7:8", (None, None, None)),
        ("urn:wacht:organization:7 ", (None, None, None)),
        ("urn:wacht:team:7", (None, None, None)),
        ("urn:wacht:organization:" + "9" * 65, (None, None, None)),
        (["urn:wacht:organization:7"], (None, None, None)),
    ],
)
def test_resource_scope_reads_only_well_formed_urns(
    resource: object, expected: tuple[str | None, ...]
) -> None:
    from wacht_auth.gateway import resource_scope

    assert resource_scope(resource) == expected


def test_a_verified_token_is_deeply_read_only(oauth: OAuthServer) -> None:
    credential = OAuthVerifier(oauth.issuer_settings()).verify(
        oauth.access_token(claims={"ext": {"roles": ["a"]}})
    )
    assert credential.claims["ext"]["roles"] == ("a",)
    with pytest.raises(TypeError):
        credential.claims["ext"]["roles"] = ["b"]
    with pytest.raises(TypeError):
        credential.metadata["scopes"] = ("admin",)  # type: ignore[index]
    with pytest.raises(AttributeError):
        credential.scopes = ("admin",)  # type: ignore[misc]
