"""Messages that say what to fix (issue 12): each names the setting, variable or URL at fault.

Tests elsewhere assert on codes only; here the message is the feature, so each test checks
the code first and then that the message names what the user has to edit or look at.
"""

from __future__ import annotations

import base64

import pytest

from wacht_auth import (
    Config,
    ConfigurationError,
    IssuerInvalidError,
    JWKSUnavailableError,
    Verifier,
    WachtAuthError,
)
from wacht_auth.config import decode_publishable_key
from wacht_auth.settings import Settings
from wacht_auth.testing import Issuer

FRONTEND = "https://frontend.example.com"


def _refusal(env: dict[str, str]) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        Config.from_env(env)
    assert caught.value.code == "configuration_error"
    return caught.value


def _pk(url: str) -> str:
    return "pk_test_" + base64.b64encode(url.encode()).decode()


def test_plain_http_frontend_names_the_frontend_setting_not_jwks_url() -> None:
    error = _refusal({"WACHT_FRONTEND_API_URL": "http://frontend.example.com"})
    assert "WACHT_FRONTEND_API_URL" in error.message
    assert "https://" in error.message
    assert "jwks_url" not in error.message


def test_frontend_host_alias_is_named_as_given() -> None:
    error = _refusal({"WACHT_FRONTEND_HOST": "http://frontend.example.com"})
    assert "WACHT_FRONTEND_HOST" in error.message


def test_frontend_without_a_scheme_is_refused_with_a_suggestion() -> None:
    error = _refusal({"WACHT_FRONTEND_API_URL": "frontend.example.com"})
    assert "WACHT_FRONTEND_API_URL" in error.message
    assert "'https://frontend.example.com'" in error.message  # did you mean ...


def test_plain_http_is_fine_on_loopback() -> None:
    config = Config.from_env({"WACHT_FRONTEND_API_URL": "http://127.0.0.1:8123"})
    assert config.jwks_url == "http://127.0.0.1:8123/.well-known/jwks.json"


@pytest.mark.parametrize(
    "key", ["nope", "pk_test_!!!!", "pk_live_aGVsbG8=", _pk("ftp://x.example"), "pk_test_"]
)
def test_bad_publishable_key_names_the_variable(key: str) -> None:
    error = _refusal({"WACHT_PUBLISHABLE_KEY": key})
    assert "WACHT_PUBLISHABLE_KEY" in error.message
    error = _refusal({"NEXT_PUBLIC_WACHT_PUBLISHABLE_KEY": key})  # the Next.js SDK's name
    assert "WACHT_PUBLISHABLE_KEY" in error.message
    with pytest.raises(ConfigurationError) as caught:
        decode_publishable_key(key)  # called directly: the usual variable
    assert "WACHT_PUBLISHABLE_KEY" in caught.value.message


def test_publishable_key_in_django_settings_is_named_there() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.load({"publishable_key": "pk_test_!!!!"}, where="settings.WACHT_AUTH", env={})
    assert caught.value.code == "configuration_error"
    assert "settings.WACHT_AUTH['publishable_key']" in caught.value.message
    assert "WACHT_PUBLISHABLE_KEY " not in caught.value.message  # not the env variable


def test_publishable_key_of_a_plain_http_frontend_is_refused() -> None:
    error = _refusal({"WACHT_PUBLISHABLE_KEY": _pk("http://frontend.example.com")})
    assert "WACHT_PUBLISHABLE_KEY" in error.message and "https://" in error.message


@pytest.mark.parametrize(
    "issuer",
    [
        "notaurl",
        "frontend.example.com",
        "http://frontend.example.com",
        "https://frontend.example.com/",
        "https://frontend.example.com/path",
        "https://user@frontend.example.com",
        "ftp://frontend.example.com",
    ],
)
def test_issuer_must_be_an_https_origin(issuer: str) -> None:
    error = _refusal({"WACHT_FRONTEND_API_URL": FRONTEND, "WACHT_ISSUER": issuer})
    assert "WACHT_ISSUER" in error.message
    with pytest.raises(ConfigurationError) as caught:
        Config(issuer=issuer, jwks_url=FRONTEND + "/.well-known/jwks.json")
    assert caught.value.code == "configuration_error"
    assert "issuer" in caught.value.message


@pytest.mark.parametrize(
    "issuer", ["https://frontend.example.com", "https://a.example:8443", "http://127.0.0.1:9"]
)
def test_issuer_origins_are_accepted(issuer: str) -> None:
    assert Config(issuer=issuer, jwks_url=FRONTEND + "/jwks").issuer == issuer


def _issuer_error(verifier: Verifier, token: str) -> WachtAuthError:
    with pytest.raises(IssuerInvalidError) as caught:
        verifier.verify(token)
    assert caught.value.code == "issuer_invalid"
    return caught.value


def test_issuer_invalid_says_expected_and_received(wacht_issuer: Issuer) -> None:
    verifier = Verifier(wacht_issuer.config())
    error = _issuer_error(verifier, wacht_issuer.token(claims={"iss": "https://other.example"}))
    assert "'https://other.example'" in error.message
    assert repr(wacht_issuer.url) in error.message
    assert "https://other.example" in error.to_dict()["error"]["message"]


def test_issuer_invalid_strips_control_characters_and_truncates(wacht_issuer: Issuer) -> None:
    verifier = Verifier(wacht_issuer.config())
    hostile = "https://evil.example/\r\nSet-Cookie: x=1\x00" + "a" * 5000
    error = _issuer_error(verifier, wacht_issuer.token(claims={"iss": hostile}))
    assert "\r" not in error.message and "\n" not in error.message and "\x00" not in error.message
    assert "evil.example" in error.message
    assert len(error.message) < 400


def test_issuer_invalid_with_several_deployments_lists_the_trusted_ones(
    wacht_issuer: Issuer,
) -> None:
    with Issuer() as other:
        verifier = Verifier([wacht_issuer.config(), other.config()])
        error = _issuer_error(verifier, wacht_issuer.token(claims={"iss": "https://x.example"}))
    assert "'https://x.example'" in error.message
    assert repr(wacht_issuer.url) in error.message and repr(other.url) in error.message


def test_jwks_unavailable_names_the_jwks_url(wacht_issuer: Issuer) -> None:
    verifier = Verifier(wacht_issuer.config())
    wacht_issuer.fail(500)
    with pytest.raises(JWKSUnavailableError) as caught:
        verifier.verify(wacht_issuer.token())
    assert caught.value.code == "jwks_unavailable" and caught.value.status == 503
    assert wacht_issuer.jwks_url in caught.value.to_dict()["error"]["message"]
    assert caught.value.url == wacht_issuer.jwks_url


def test_jwks_unavailable_when_down_names_the_jwks_url(wacht_issuer: Issuer) -> None:
    verifier = Verifier(wacht_issuer.config(jwks_timeout=2))
    token = wacht_issuer.token()
    wacht_issuer.down()
    with pytest.raises(JWKSUnavailableError) as caught:
        verifier.verify(token)
    assert caught.value.code == "jwks_unavailable"
    assert wacht_issuer.jwks_url in caught.value.message


def test_jwks_unavailable_never_shows_user_info_or_a_query(wacht_issuer: Issuer) -> None:
    host = wacht_issuer.url.split("://", 1)[1]
    url = f"http://me:s3cret@{host}/.well-known/jwks.json?key=s3cret#s3cret"
    error = JWKSUnavailableError("fetching the signing keys failed", url=url)
    assert error.code == "jwks_unavailable"
    assert "s3cret" not in error.message
    assert f"http://{host}/.well-known/jwks.json" in error.message
    with pytest.raises(ConfigurationError) as caught:  # the config message hides them too
        Config(issuer=FRONTEND, jwks_url="http://me:s3cret@jwks.example/keys?key=s3cret")
    assert "jwks_url" in caught.value.message and "s3cret" not in caught.value.message
