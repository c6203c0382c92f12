"""Config: resolution order, publishable keys, cookie names, validation (docs/configuration.md)."""

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


# -- one spelling, one validation: the environment, Django's dict, Flask's app.config ---------

from wacht_auth.settings import SETTINGS, Settings  # noqa: E402

ENV = {"WACHT_FRONTEND_API_URL": "https://env.example"}


def load_three_ways(name: str, value: object) -> list[Settings | ConfigurationError]:
    """``name = value`` through each source; the Settings, or the error each raised."""
    attempts = [
        lambda: Settings.load(env={**ENV, f"WACHT_{name.upper()}": str(value)}),
        lambda: Settings.load({name: value}, where="settings.WACHT_AUTH", env=ENV),
        lambda: Settings.load(
            {f"WACHT_{name.upper()}": value, "SECRET_KEY": "flask's own"},
            prefixed=True,
            where="app.config",
            env=ENV,
        ),
    ]
    out: list[Settings | ConfigurationError] = []
    for attempt in attempts:
        try:
            out.append(attempt())
        except ConfigurationError as error:
            out.append(error)
    return out


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("protect_all", "true", True),
        ("protect_all", "off", False),
        ("read_cookies", "0", False),
        ("leeway", "7.5", 7.5),
        ("token_cache_size", "12", 12),
        ("public_paths", "/health, /docs/*", ("/health", "/docs/*")),
        ("audience", "api,web", ("api", "web")),
    ],
)
def test_every_source_reads_a_setting_alike(name: str, value: str, expected: object) -> None:
    target = SETTINGS[name][0]
    for loaded in load_three_ways(name, value):
        assert isinstance(loaded, Settings), loaded
        assert loaded.values[target] == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [("protect_all", "maybe"), ("leeway", "soon"), ("token_cache_size", "1.5")],
)
def test_every_source_refuses_a_bad_value_alike_and_names_it(name: str, value: str) -> None:
    errors = load_three_ways(name, value)
    assert all(isinstance(e, ConfigurationError) for e in errors), errors
    env, django, flask = (str(e) for e in errors)
    assert f"WACHT_{name.upper()}" in env
    assert f"settings.WACHT_AUTH['{name}']" in django
    assert f"app.config['WACHT_{name.upper()}']" in flask


def test_a_config_error_names_the_setting_that_gave_the_value() -> None:
    for loaded in load_three_ways("leeway", "900"):
        assert isinstance(loaded, Settings)
        with pytest.raises(ConfigurationError) as raised:
            loaded.build_config()
        assert "leeway" in str(raised.value) and "(check " in str(raised.value)


def test_unknown_names_are_refused_in_mappings_and_ignored_in_the_environment() -> None:
    with pytest.raises(ConfigurationError, match="protectall"):
        Settings.load({"protectall": True}, where="settings.WACHT_AUTH", env=ENV)
    with pytest.raises(ConfigurationError, match="WACHT_PROTECTALL"):
        Settings.load({"WACHT_PROTECTALL": True}, prefixed=True, where="app.config", env=ENV)
    loaded = Settings.load(env={**ENV, "WACHT_SOMETHING_ELSE": "1"})
    assert loaded.build_config().issuer == "https://env.example"
    with pytest.raises(ConfigurationError):
        Settings.load("https://x.example", where="settings.WACHT_AUTH")  # type: ignore[arg-type]


def test_precedence_code_over_mapping_over_environment_and_first_alias() -> None:
    mapping = {"frontend_host": "https://dict.example", "publishable_key": "pk_test_bad"}
    loaded = Settings.load(mapping, env={"WACHT_FRONTEND_API_URL": "https://env.example"})
    assert loaded.values["frontend_api_url"] == "https://dict.example"
    assert loaded.labels["frontend_api_url"] == "the environment['frontend_host']"
    code = Settings.load(mapping, env=ENV, frontend_api_url="https://code.example")
    assert code.build_config().issuer == "https://code.example"
    env = {
        "WACHT_FRONTEND_HOST": "https://host.example",
        "WACHT_FRONTEND_API_URL": ENV["WACHT_FRONTEND_API_URL"],
    }
    assert Settings.load(env=env).values["frontend_api_url"] == "https://env.example"


def test_objects_only_from_code() -> None:
    with pytest.raises(ConfigurationError, match="WACHT_CLOCK"):
        Settings.load(env={**ENV, "WACHT_CLOCK": "time.time"})
    loaded = Settings.load({"clock": lambda: 5.0}, where="settings.WACHT_AUTH", env=ENV)
    assert loaded.build_config().clock() == 5.0
