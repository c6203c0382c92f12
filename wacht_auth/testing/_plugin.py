"""The pytest plugin: the ``wacht`` marker and the ``wacht_*`` fixtures.

:mod:`wacht_auth.testing` (the ``pytest11`` entry point) re-exports these names, which is how
pytest finds them. Importing this module needs pytest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ..config import Config
from ._issuer import Issuer


def _marker_kwargs(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The ``wacht`` markers' arguments, module first so the closest one wins."""
    kwargs: dict[str, Any] = {}
    config: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("wacht"))):
        kwargs.update(marker.kwargs)
        config.update(marker.kwargs.get("config") or {})
    kwargs["config"] = config
    return kwargs


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``wacht`` marker, so ``--strict-markers`` accepts it."""
    config.addinivalue_line(
        "markers",
        "wacht(**kwargs): arguments for the wacht_issuer fixture's Issuer (algorithms=, "
        "include_kid=, clock=) and config={...} overrides for wacht_config",
    )


@pytest.fixture
def wacht_issuer(request: pytest.FixtureRequest) -> Iterator[Issuer]:
    """A started :class:`Issuer` (ES256 unless a marker says otherwise), stopped after.

    ``@pytest.mark.wacht(algorithms=("RS256",), include_kid=True)`` on a test, class or
    module passes those arguments to :class:`Issuer`; markers at several levels merge, the
    closest winning.
    """
    kwargs = _marker_kwargs(request)
    kwargs.pop("config", None)
    with Issuer(**kwargs) as issuer:
        yield issuer


@pytest.fixture
def wacht_issuer_rs256() -> Iterator[Issuer]:
    """A started RS256 :class:`Issuer`, stopped after the test."""
    with Issuer(algorithms=("RS256",)) as issuer:
        yield issuer


@pytest.fixture
def wacht_config(request: pytest.FixtureRequest, wacht_issuer: Issuer) -> Config:
    """``wacht_issuer.config()``: a :class:`~wacht_auth.Config` trusting ``wacht_issuer``.

    ``@pytest.mark.wacht(config={"jwks_cooldown": 0})`` passes overrides to it.
    """
    return wacht_issuer.config(**_marker_kwargs(request)["config"])


@pytest.fixture
def wacht_token(wacht_issuer: Issuer) -> str:
    """A valid token from ``wacht_issuer`` for ``user_1`` / ``sess_1``."""
    return wacht_issuer.token()
