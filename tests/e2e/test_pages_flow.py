"""The page examples through their adapters in a real browser (issue 11, "A real browser").

``examples/django_pages.py`` and ``examples/flask_pages.py`` are served as written on
127.0.0.1 (addressed as ``localhost``) against a fake frontend API, also on ``localhost`` (so
the host-only ``__session`` cookie its sign-in page sets is sent to the app: cookies ignore
ports, RFC 6265 §8.5). Headless Chromium goes through the whole flow the adapters handle:

anonymous visit to ``/app`` → 302 to the fake sign-in page → it sets ``__session`` and 302s
back → the adapter exchanges ``__session`` (one exchange), shows the user and sets
``__auth_<scope>`` → a second page load is served from that cookie, with no new exchange.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import serve_wsgi
from wacht_auth.config import cookie_name_for
from wacht_auth.testing import FrontendAPI

WAIT = 10


@contextmanager
def django_pages(frontend: FrontendAPI) -> Iterator[int]:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    from examples import django_pages

    django_pages.configure()  # no-op when another test configured Django first
    with override_settings(**django_pages.settings_for(frontend.config())):
        # The handler loads MIDDLEWARE now, under the example's settings.
        with serve_wsgi(WSGIHandler()) as port:
            yield port


@contextmanager
def flask_pages(frontend: FrontendAPI) -> Iterator[int]:
    from examples import flask_pages

    with serve_wsgi(flask_pages.create_app(frontend.config())) as port:
        yield port


EXAMPLES: dict[str, Any] = {"django": django_pages, "flask": flask_pages}


def _text(browser: webdriver.Chrome, element_id: str) -> str:
    WebDriverWait(browser, WAIT).until(lambda b: b.find_elements(By.ID, element_id))
    return str(browser.find_element(By.ID, element_id).text)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_a_visitor_signs_in_through_the_adapter(browser: webdriver.Chrome, name: str) -> None:
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    with FrontendAPI(host="localhost") as frontend:
        serving: AbstractContextManager[int] = EXAMPLES[name](frontend)
        with serving as port:
            page = f"http://localhost:{port}/app"
            browser.get(page)
            # Anonymous → sign-in page (sets __session) → back on the page, signed in.
            assert _text(browser, "user") == "user_1"
            assert browser.current_url == page
            assert frontend.sign_in_count == 1 and frontend.exchange_count == 1

            auth_name = cookie_name_for(frontend.url)
            auth = {c["name"]: c for c in browser.get_cookies()}.get(auth_name)
            assert auth is not None, browser.get_cookies()
            assert (auth["httpOnly"], auth["secure"], auth["sameSite"]) == (True, True, "Lax")

            # The second load (another page of the area) is served from __auth_<scope>.
            browser.get(f"http://localhost:{port}/app/reports")
            assert _text(browser, "user") == "user_1"
            assert frontend.exchange_count == 1 and frontend.sign_in_count == 1


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_an_html_403_and_the_sign_out(browser: webdriver.Chrome, name: str) -> None:
    """A page the visitor may not open shows the app's own HTML 403 page (Django's
    ``403.html``, Flask's ``errorhandler(403)``); the sign-out button (a POST form) ends the
    session at the frontend API and deletes ``__auth_<scope>``, so the next page load sends
    the visitor to sign in again."""
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    with FrontendAPI(host="localhost") as frontend:
        serving: AbstractContextManager[int] = EXAMPLES[name](frontend)
        with serving as port:
            browser.get(f"http://localhost:{port}/app")
            assert _text(browser, "user") == "user_1"

            browser.get(f"http://localhost:{port}/app/admin")  # needs reports:admin
            assert "You may not open this page" in _text(browser, "forbidden")
            assert not browser.find_elements(By.TAG_NAME, "pre")  # no JSON shown

            browser.get(f"http://localhost:{port}/app")
            browser.find_element(By.ID, "sign-out").click()
            WebDriverWait(browser, WAIT).until(
                lambda b: b.current_url == f"http://localhost:{port}/"
            )
            assert "Not signed in" in _text(browser, "user")
            assert frontend.sign_out_count == 1
            names = {c["name"] for c in browser.get_cookies()}
            assert cookie_name_for(frontend.url) not in names and "__session" not in names

            browser.get(f"http://localhost:{port}/app")  # signed out: to the sign-in page
            assert _text(browser, "user") == "user_1"
            assert frontend.sign_in_count == 2
