"""A misspelt setting gets the closest known name, not the list of every setting."""

from __future__ import annotations

import pytest

from wacht_auth import ConfigurationError
from wacht_auth.settings import SETTINGS, Settings


def test_a_django_typo_names_the_setting_it_is_close_to() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.load({"protect_al": True}, where="settings.WACHT_AUTH", env={})
    assert info.value.code == "configuration_error"
    assert "settings.WACHT_AUTH['protect_all']" in info.value.message
    assert "jwks_cooldown" not in info.value.message  # not the whole list


def test_a_flask_typo_names_the_setting_it_is_close_to() -> None:
    config = {"WACHT_PROTECT_AL": True, "SECRET_KEY": "x"}
    with pytest.raises(ConfigurationError) as info:
        Settings.load(config, prefixed=True, where="app.config", env={})
    assert info.value.code == "configuration_error"
    assert "app.config['WACHT_PROTECT_ALL']" in info.value.message
    assert "WACHT_JWKS_COOLDOWN" not in info.value.message


def test_a_flask_app_gets_the_suggestion_too() -> None:
    flask = pytest.importorskip("flask")
    from wacht_auth.integrations.flask import Wacht

    app = flask.Flask(__name__)
    app.config.update(WACHT_FRONTEND_API_URL="https://x.wacht.services", WACHT_PROTECT_AL=True)
    with pytest.raises(ConfigurationError) as info:
        Wacht(app)
    assert "WACHT_PROTECT_ALL" in info.value.message


def test_a_name_close_to_none_gets_no_guess() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.load({"zzzz": 1}, where="settings.WACHT_AUTH", env={})
    assert "did you mean" not in info.value.message
    assert not any(f"['{name}']" in info.value.message for name in SETTINGS)
