"""Hostile input to the request layer and the page handshake (a security review): each test
is an attack that got through before its fix."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest

from tests.test_pages_network import Page, _layer
from wacht_auth import Verifier
from wacht_auth.auth import Authenticator, AuthState, PathParam, requirement
from wacht_auth.auth.pages import SignedIn
from wacht_auth.auth.signout import sign_out
from wacht_auth.auth.view import origin
from wacht_auth.errors import OrganizationRequiredError, WorkspaceRequiredError
from wacht_auth.proxies import authority, public_url
from wacht_auth.testing import FrontendAPI, Issuer


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


def _signed_in(layer: Authenticator, page: Page) -> SignedIn | None:
    """The handshake's answer for ``page``, its steps performed by ``layer``."""
    flow = layer.handshake.flow(page)
    try:
        step = next(flow)
        while True:
            step = flow.send(layer._perform(step))
    except StopIteration as stop:
        return cast("SignedIn | None", stop.value)


def test_the_handshakes_answer_never_shows_its_cookies_in_a_repr(frontend: FrontendAPI) -> None:
    layer = _layer(frontend)
    name = f"__dev_session___{(frontend.config().cookie_name or '')[len('__auth_') :]}"
    for page in (
        Page(cookies={"__session": frontend.sign_in()}),
        Page(cookies={name: frontend.dev_session()}),
    ):
        signed = _signed_in(layer, page)
        assert signed is not None and signed.session is not None
        values = [v.split(";")[0].partition("=")[2] for k, v in signed.headers if k == "Set-Cookie"]
        assert values and all(values)
        text = repr(signed)
        for value in values:
            assert value not in text


def test_an_empty_path_parameter_is_no_organization_nor_workspace() -> None:
    # Starlette's {org_id:path} (".*") and a Django re_path may match an empty segment: the
    # guard must compare with "" (no caller's id), not fall back to "any active one".
    both = requirement(organization=PathParam("org_id"), workspace=PathParam("ws_id"))
    with Issuer() as issuer:
        verifier = Verifier(issuer.config())
        claims = {"organization_id": "77", "workspace_id": "5"}
        state = AuthState(verifier.verify(issuer.token("42", **claims)))
    assert both.check(state, {"org_id": "77", "ws_id": "5"}).user_id == "42"
    with pytest.raises(OrganizationRequiredError):
        both.check(state, {"org_id": "", "ws_id": "5"})
    with pytest.raises(WorkspaceRequiredError):
        both.check(state, {"org_id": "77", "ws_id": ""})


@pytest.mark.parametrize(
    "host", ["[fe80::1%x@evil.example]:8080", "[::1%@evil.example]", "[fe80::1%eth0]"]
)
def test_the_host_rule_refuses_an_ipv6_zone_id(host: str) -> None:
    # ipaddress accepts any zone id, "@" included: urlsplit then reads the host as
    # "evil.example]" in the redirect built from it.
    assert authority(host, "http") is None
    with pytest.raises(ValueError):
        public_url(scheme="http", host=host, path="/page")
    assert origin(Page(host_header=host)) is None
    assert authority("[fe80::1]:8080", "http") == "[fe80::1]:8080"


def test_the_flask_development_link_wrapper_keeps_flasks_trusted_hosts(
    frontend: FrontendAPI,
) -> None:
    # The WSGI wrapper answers before Flask checks TRUSTED_HOSTS: a Host Flask refuses must
    # not get a redirect there (nor an exchange); Flask answers it with its 400.
    flask = pytest.importorskip("flask")
    from wacht_auth.integrations.flask import Wacht

    app = flask.Flask(__name__)
    app.config["TRUSTED_HOSTS"] = ["app.test"]
    Wacht(app, config=frontend.config())
    app.add_url_rule("/page", "page", lambda: "ok")
    client = app.test_client()
    link = f"/page?__dev_session__={frontend.dev_session()}"
    foreign = client.get(link, base_url="http://evil.example")
    assert foreign.status_code == 400 and "Location" not in foreign.headers
    ours = client.get(link, base_url="http://app.test")
    assert (ours.status_code, ours.headers["Location"]) == (302, "http://app.test/page")
