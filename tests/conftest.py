"""Fixtures shared by the core tests: a fake clock and a local issuer running on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import FakeClock
from wacht_auth.testing import Issuer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def issuer(clock: FakeClock) -> Iterator[Issuer]:
    with Issuer(clock=clock) as issuer:
        yield issuer
