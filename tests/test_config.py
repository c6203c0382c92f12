"""Config: resolution order, publishable keys, cookie names, validation (DESIGN.md §2)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from wacht_auth import Config, ConfigurationError
from wacht_auth.config import cookie_name_for, decode_publishable_key, is_loopback_host

FRONTEND = "https://frontend.acme-app.wacht.services"


def pk(url: str, *, prefix: str = "pk_live_", urlsafe: bool = False, pad: bool = True) -> str:
    raw = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(url.encode()).decode()
    return prefix + (raw if pad else raw.rstrip("="))


def pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def test_issuer_and_jwks_url_derive_from_the_frontend_origin() -> None:
    config = Config(frontend_api_url=FRONTEND + "/some/path/")
    assert config.frontend_api_url == FRONTEND
    assert config.issuer == FRONTEND
    assert config.jwks_url == FRONTEND + "/.well-known/jwks.json"
    assert config.algorithms == ("RS256", "ES256")
    assert config.leeway == 5 and config.max_token_bytes == 8192


@pytest.mark.parametrize(
    "key",
    [
        pk(FRONTEND),
        pk(FRONTEND, prefix="pk_test_"),
        pk(FRONTEND, pad=False),
        pk(FRONTEND + "$"),
        pk(FRONTEND + "/", urlsafe=True, pad=False),
    ],
)
def test_publishable_key_decodes_to_the_origin(key: str) -> None:
    assert decode_publishable_key(key) == FRONTEND


def test_publishable_key_urlsafe_alphabet() -> None:
    # "?>" encodes to characters that differ between the standard and URL-safe alphabets.
    url = "https://a.example/?>?"
    assert "_" in base64.urlsafe_b64encode(url.encode()).decode()
    assert decode_publishable_key(pk(url, urlsafe=True)) == "https://a.example"


@pytest.mark.parametrize("key", ["sk_live_abc", "pk_live_!!!!", pk("ftp://x.example")])
def test_bad_publishable_keys_are_configuration_errors(key: str) -> None:
    with pytest.raises(ConfigurationError):
        decode_publishable_key(key)


def test_from_env_resolution_order() -> None:
    env = {
        "WACHT_FRONTEND_API_URL": "https://one.example",
        "WACHT_FRONTEND_HOST": "https://two.example",
        "WACHT_PUBLISHABLE_KEY": pk("https://three.example"),
        "NEXT_PUBLIC_WACHT_PUBLISHABLE_KEY": pk("https://four.example"),
    }
    assert Config.from_env(env, frontend_api_url="https://zero.example").issuer == (
        "https://zero.example"
    )
    assert Config.from_env(env).issuer == "https://one.example"
    del env["WACHT_FRONTEND_API_URL"]
    assert Config.from_env(env).issuer == "https://two.example"
    del env["WACHT_FRONTEND_HOST"]
    assert Config.from_env(env).issuer == "https://three.example"
    del env["WACHT_PUBLISHABLE_KEY"]
    assert Config.from_env(env).issuer == "https://four.example"
    del env["NEXT_PUBLIC_WACHT_PUBLISHABLE_KEY"]
    with pytest.raises(ConfigurationError, match="WACHT_FRONTEND_API_URL"):
        Config.from_env(env)


def test_from_env_reads_the_other_settings() -> None:
    config = Config.from_env(
        {
            "WACHT_FRONTEND_API_URL": FRONTEND,
            "WACHT_AUDIENCE": "api, web",
            "WACHT_AUTHORIZED_PARTIES": "https://app.example",
            "WACHT_API_KEY": "wacht_live_sk_x",
            "WACHT_DEPLOYMENT_ID": "42",
        }
    )
    assert config.audience == ("api", "web")
    assert config.authorized_parties == ("https://app.example",)
    assert config.secret_key == "wacht_live_sk_x"
    assert config.deployment_id == "42"
    assert "wacht_live_sk_x" not in repr(config)


def test_pinned_pem_key_is_networkless() -> None:
    key = pem()
    config = Config.from_env(
        {"WACHT_PUBLIC_SIGNING_KEY": key.replace("\n", "\\n"), "WACHT_ISSUER": FRONTEND}
    )
    assert config.jwks_url is None and config.public_key == key


def test_bad_pem_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="PEM"):
        Config(issuer=FRONTEND, public_key="-----BEGIN PUBLIC KEY-----\nnope\n")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"issuer": FRONTEND},
        {"frontend_api_url": "ftp://x.example"},
        {"frontend_api_url": FRONTEND, "jwks_url": "http://keys.example/jwks.json"},
        {"frontend_api_url": FRONTEND, "algorithms": ("HS256",)},
        {"frontend_api_url": FRONTEND, "algorithms": ("none",)},
        {"frontend_api_url": FRONTEND, "algorithms": ("es256",)},
        {"frontend_api_url": FRONTEND, "algorithms": ()},
        {"frontend_api_url": FRONTEND, "leeway": 301},
        {"frontend_api_url": FRONTEND, "leeway": -1},
        {"frontend_api_url": FRONTEND, "max_token_bytes": 0},
        {"frontend_api_url": FRONTEND, "token_cache_size": -1},
        {"frontend_api_url": FRONTEND, "jwks_timeout": 0},
        {"frontend_api_url": FRONTEND, "audience": ("",)},
    ],
)
def test_bad_settings_raise_configuration_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError) as info:
        Config(**kwargs)  # type: ignore[arg-type]
    assert info.value.code == "configuration_error"


def test_plain_http_is_allowed_for_loopback_only() -> None:
    assert Config(frontend_api_url="http://127.0.0.1:8000").jwks_url == (
        "http://127.0.0.1:8000/.well-known/jwks.json"
    )
    assert Config(frontend_api_url="http://localhost:1").jwks_url is not None
    with pytest.raises(ConfigurationError, match="loopback"):
        Config(frontend_api_url="http://frontend.example")
    assert is_loopback_host("::1") and not is_loopback_host("10.0.0.1")


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://frontend.acme-app.wacht.services", "__auth_frontend_acme_app_wacht_services"),
        ("https://Clerk.EXAMPLE.com", "__auth_clerk_example_com"),
        ("http://127.0.0.1:8000", "__auth_127_0_0_1_8000"),
        ("https://--x--.example.", "__auth_x_example"),
        ("https://" + "a" * 80 + ".example", "__auth_" + "a" * 64),
    ],
)
def test_cookie_name_follows_the_nextjs_sdk(url: str, name: str) -> None:
    assert cookie_name_for(url) == name


def test_cookie_name_can_be_overridden() -> None:
    assert Config(frontend_api_url=FRONTEND).cookie_name == (
        "__auth_frontend_acme_app_wacht_services"
    )
    assert Config(frontend_api_url=FRONTEND, cookie_name="tok").cookie_name == "tok"


def test_config_is_frozen() -> None:
    config = Config(frontend_api_url=FRONTEND)
    with pytest.raises(AttributeError):
        config.issuer = "x"  # type: ignore[misc]
