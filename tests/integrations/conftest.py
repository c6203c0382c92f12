"""Integration-test set-up. Django: settings configured in-process, once, from
``django_settings`` (only when Django is installed and nothing configured it before)."""

from __future__ import annotations

try:
    import django
    from django.conf import settings
except ImportError:  # pragma: no cover - the Django tests skip themselves
    django = None  # type: ignore[assignment]

if django is not None and not settings.configured:
    from . import django_settings

    settings.configure(
        **{name: getattr(django_settings, name) for name in dir(django_settings) if name.isupper()}
    )
    django.setup()


import pytest

from wacht_auth.testing import FakeGateway, FrontendAPI, OAuthServer

from .contract import register_keys


@pytest.fixture(scope="session")
def gateway() -> object:
    """Wacht's gateway, faked on loopback for the API-key rows of the contract."""
    with FakeGateway() as started:
        yield started


@pytest.fixture(scope="session")
def oauth() -> object:
    """A Wacht OAuth server on loopback, for the OAuth JWT rows of the contract."""
    with OAuthServer() as started:
        yield started


@pytest.fixture(scope="session")
def keys(gateway: FakeGateway, oauth: OAuthServer) -> dict[str, str]:
    """The contract's credentials: registered with :func:`gateway`, minted by :func:`oauth`."""
    return register_keys(gateway, oauth)


@pytest.fixture(scope="session")
def frontend() -> object:
    """A fake frontend API (keys, session exchange, sign-in page) for the page rows."""
    with FrontendAPI() as started:
        yield started
