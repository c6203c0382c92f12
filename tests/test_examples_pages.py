"""The server-rendered page examples (``examples/django_pages.py``, ``examples/flask_pages.py``)
against a fake frontend API on loopback (issue 11, "Examples and docs").

Each test drives one example through its framework's test client, the way a browser would:
an anonymous page visit is sent to the derived sign-in URL with ``redirect_uri``; the fake
sign-in page (a real HTTP request to :class:`~wacht_auth.testing.FrontendAPI`) sets
``__session`` and sends the browser back; the page is then signed in from that cookie by one
exchange and sets ``__auth_<scope>``; a second load with that cookie makes no exchange; the
API route answers 401 JSON to an anonymous caller. ``tests/e2e/test_pages_flow.py`` runs the
same flow in a real browser.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import quote

import pytest

from wacht_auth.config import cookie_name_for
from wacht_auth.testing import FrontendAPI

USER = "user_1"  # whom the fake sign-in page signs in


@dataclass(frozen=True)
class Answer:
    """What a browser sees of one answer: status, redirect target, cookies set, body."""

    status: int
    location: str | None
    set_cookies: tuple[str, ...]
    text: str
    content_type: str

    def json(self) -> Any:
        return json.loads(self.text)

    def cookie(self, name: str) -> str | None:
        """The ``Set-Cookie`` value for ``name`` (the whole header line), or None."""
        for line in self.set_cookies:
            if line.split("=", 1)[0].strip() == name:
                return line
        return None


@dataclass
class Site:
    """One example app behind its framework's test client: ``get(path, cookies)``."""

    name: str
    base: str  # the origin the test client's requests have: redirect_uri starts with it
    get: Callable[..., Answer]


def _django_site(frontend: FrontendAPI) -> Iterator[Site]:
    pytest.importorskip("django")
    from examples import django_pages

    django_pages.configure()  # no-op when another test module configured Django first
    from django.test import Client, override_settings

    def get(path: str, cookies: dict[str, str] | None = None) -> Answer:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())}
        # Host localhost: the fake sign-in page redirects to loopback URLs only.
        response = Client(HTTP_HOST="localhost").get(path, headers=headers if cookies else {})
        return Answer(
            response.status_code,
            response.headers.get("Location"),
            tuple(morsel.OutputString() for morsel in response.cookies.values()),
            response.content.decode(),
            response.headers.get("Content-Type", ""),
        )

    with override_settings(**django_pages.settings_for(frontend.config())):
        yield Site("django", "http://localhost", get)


def _flask_site(frontend: FrontendAPI) -> Iterator[Site]:
    pytest.importorskip("flask")
    from examples import flask_pages

    client = flask_pages.create_app(frontend.config()).test_client(use_cookies=False)

    def get(path: str, cookies: dict[str, str] | None = None) -> Answer:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())}
        response = client.get(path, headers=headers if cookies else {})
        return Answer(
            response.status_code,
            response.headers.get("Location"),
            tuple(response.headers.getlist("Set-Cookie")),
            response.get_data(as_text=True),
            response.headers.get("Content-Type", ""),
        )

    yield Site("flask", "http://localhost", get)


@pytest.fixture(scope="module")
def frontend() -> Iterator[FrontendAPI]:
    with FrontendAPI() as started:
        yield started


@pytest.fixture(params=["django", "flask"])
def site(request: pytest.FixtureRequest, frontend: FrontendAPI) -> Iterator[Site]:
    """A fresh example app (a fresh exchange cache) for each test; counters reset."""
    frontend.restore_exchange()
    frontend.reset_exchange_count()
    make = _django_site if request.param == "django" else _flask_site
    yield from make(frontend)
    frontend.restore_exchange()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the test follows each 302 itself, as it decides


def _visit(url: str) -> tuple[int, Message]:
    """A real GET to the fake frontend API (its sign-in page), redirects not followed."""
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(url, timeout=5) as answer:
            return answer.status, answer.headers
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers


def _sign_in_url(frontend: FrontendAPI, page: str) -> str:
    return f"{frontend.sign_in_url}?redirect_uri={quote(page, safe='')}"


def _user_shown(answer: Answer) -> bool:
    return f'<span id="user">{USER}</span>' in answer.text


def test_an_anonymous_visitor_signs_in_and_comes_back_signed_in(
    site: Site, frontend: FrontendAPI
) -> None:
    # Anonymous: sent to the sign-in page derived from the frontend API, redirect_uri = page.
    anonymous = site.get("/app")
    assert anonymous.status == 302
    assert anonymous.location == _sign_in_url(frontend, site.base + "/app")

    # The (fake) sign-in page signs the visitor in, sets __session and sends them back.
    assert anonymous.location is not None
    status, headers = _visit(anonymous.location)
    assert status == 302 and headers["Location"] == site.base + "/app"
    session = next(
        value.split(";", 1)[0].split("=", 1)[1]
        for value in headers.get_all("Set-Cookie") or []
        if value.startswith("__session=")
    )
    assert frontend.sign_in_count == 1 and frontend.exchange_count == 0

    # Back on the page with __session: one exchange, signed in, __auth_<scope> set.
    back = site.get("/app", {"__session": session})
    assert back.status == 200 and _user_shown(back), back.text
    assert frontend.exchange_count == 1
    auth_name = cookie_name_for(frontend.url)
    auth = back.cookie(auth_name)
    assert auth is not None, back.set_cookies
    attributes = {part.strip().split("=", 1)[0].lower() for part in auth.split(";")[1:]}
    assert {"httponly", "secure", "samesite", "path", "max-age"} <= attributes
    assert "samesite=lax" in auth.lower() and "path=/" in auth.lower()
    token = auth.split(";", 1)[0].split("=", 1)[1]

    # The next load (another page of the area) is served from __auth_<scope>: no exchange.
    again = site.get("/app/reports", {"__session": session, auth_name: token})
    assert again.status == 200 and _user_shown(again)
    assert frontend.exchange_count == 1
    assert again.cookie(auth_name) is None  # nothing to renew


def test_the_api_route_keeps_the_401(site: Site, frontend: FrontendAPI) -> None:
    anonymous = site.get("/api/me")
    assert anonymous.status == 401 and anonymous.location is None
    assert anonymous.content_type.startswith("application/json")
    assert anonymous.json()["error"]["code"] == "token_missing"
    # A browser that is signed in calls it with its cookie like any page.
    signed_in = site.get("/api/me", {cookie_name_for(frontend.url): frontend.token(USER)})
    assert signed_in.status == 200 and signed_in.json() == {"user_id": USER}


def test_a_guarded_page_outside_the_area_redirects_too(site: Site, frontend: FrontendAPI) -> None:
    anonymous = site.get("/account")
    assert anonymous.status == 302
    assert anonymous.location == _sign_in_url(frontend, site.base + "/account")
    session = frontend.sign_in()
    signed_in = site.get("/account", {"__session": session})
    assert signed_in.status == 200 and _user_shown(signed_in)
    assert signed_in.cookie(cookie_name_for(frontend.url)) is not None


def test_the_public_home_page_is_open_and_signs_in_from_the_cookie(
    site: Site, frontend: FrontendAPI
) -> None:
    anonymous = site.get("/")
    assert anonymous.status == 200 and "Not signed in" in anonymous.text
    assert frontend.exchange_count == 0
    signed_in = site.get("/", {"__session": frontend.sign_in()})
    assert signed_in.status == 200 and _user_shown(signed_in)
    assert frontend.exchange_count == 1


def test_the_frontend_api_down_is_a_503_never_a_redirect(site: Site, frontend: FrontendAPI) -> None:
    session = frontend.sign_in()
    frontend.fail_exchange(503)
    answer = site.get("/app", {"__session": session})
    assert answer.status == 503 and answer.location is None
    assert answer.json()["error"]["code"] == "session_exchange_unavailable"


def test_a_session_that_is_over_sends_the_visitor_to_sign_in(
    site: Site, frontend: FrontendAPI
) -> None:
    session = frontend.sign_in()
    frontend.end_session(session)
    answer = site.get("/app", {"__session": session})
    assert answer.status == 302
    assert answer.location == _sign_in_url(frontend, site.base + "/app")


def test_require_permission_redirect_sends_an_anonymous_visitor_to_sign_in(
    frontend: FrontendAPI,
) -> None:
    pytest.importorskip("flask")
    from flask import Flask

    from wacht_auth.integrations.flask import Wacht, require_permission

    app = Flask(__name__)
    Wacht(app, config=frontend.config())

    @app.get("/reports")
    @require_permission("reports:read", redirect=True)
    def reports() -> str:
        return "reports"

    answer = app.test_client().get("/reports")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(frontend.sign_in_url + "?redirect_uri=")
