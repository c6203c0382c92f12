"""The security review of the request layer and the page handshake: each test is an attack
that got through before its fix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.test_pages_network import Page, _layer
from wacht_auth.auth.signout import sign_out
from wacht_auth.testing import FrontendAPI


@pytest.fixture
def frontend() -> Iterator[FrontendAPI]:
    with FrontendAPI() as api:
        yield api


@pytest.mark.parametrize(
    "bad",
    [
        "/\t/evil.example",  # browsers drop tabs and newlines from a URL: "//evil.example"
        "/\n/evil.example",
        "/bye\r\nSet-Cookie: a=b",  # a header of its own in a raw ASGI Location
        "https://app.example/\r\nSet-Cookie: a=b",  # urlsplit drops CR/LF before checking
        "/ /evil.example",
        "/bye\x00",
    ],
)
def test_sign_out_next_refuses_control_characters(frontend: FrontendAPI, bad: str) -> None:
    post = Page("/s", method="POST", headers={"origin": "http://app.test"})
    with pytest.raises(ValueError):
        sign_out(_layer(frontend), post, next=bad)
    assert sign_out(_layer(frontend), post, next="/bye?x=1").location == "/bye?x=1"
