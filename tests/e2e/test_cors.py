"""The CORS recipes of the framework pages in a real browser (issue 12, "A browser across
origins").

Each framework's API is the recipe of its docs page, run as written: the page's ``app.py`` (or
Django's ``settings.py`` and ``urls.py``) is taken from the page by the docs collector of
``tests/test_docs.py`` and imported, with two edits only, each of which must match the page
exactly once (so a page that changes fails here rather than going unproven):

- the front-end origin ``https://app.example.com`` becomes the test page's origin;
- for the cookie case, the one credentials switch the page's CORS section names
  (``allow_credentials=True``, ``CORS_ALLOW_CREDENTIALS = True``, ``supports_credentials=True``).

The API is served on ``http://127.0.0.1:<A>``; a static page on ``http://localhost:<P>``
(another origin and another site) calls it with ``fetch`` and keeps what it could read in
``window.results``. The browser must read the JSON of a 200 and of a 401 ``token_expired``
sent with ``Authorization: Bearer`` (a non-safelisted header: a real preflight first), and of
a 403 ``csrf_failed``: a credentialed ``POST`` carrying the ``__auth_<scope>`` cookie from the
foreign origin. A CORS refusal surfaces in the page as ``TypeError: Failed to fetch``.

The cookie travels cross-origin but same-site: the API is called as ``http://localhost:<A>``
for that case. Chromium sends a cookie on a cross-site ``fetch`` only when it is
``SameSite=None; Secure`` *and* third-party cookies are allowed; Debian's headless Chromium
(156 when this was written) stores such a cookie for ``127.0.0.1`` but does not send it from a
page on ``localhost`` (the API then answers 401 ``token_missing``). A front end and its API on
one site (``app.example.com`` and ``api.example.com``) is how cookie-borne tokens are used,
and CORS applies all the same (the ports differ, so the origins do).
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from selenium import webdriver

from tests.e2e.conftest import serve_asgi, serve_wsgi
from tests.test_docs import PROJECTS
from wacht_auth.testing import Issuer

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
RECIPE_FRONT_END = "https://app.example.com"

#: The test page: ``call(url, init)`` fetches, reads the JSON (or the error) and records it.
PAGE = """<!doctype html>
<html><body><pre id="results">[]</pre><script>
window.results = [];
async function call(url, init) {
  const result = {url: url, method: (init && init.method) || "GET"};
  try {
    const answer = await fetch(url, init);
    result.status = answer.status;
    result.body = await answer.json();
  } catch (error) {
    result.error = String(error);  // a CORS refusal: "TypeError: Failed to fetch"
  }
  window.results.push(result);
  document.getElementById("results").textContent = JSON.stringify(window.results);
  return result;
}
</script></body></html>
"""


def _page_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    data = PAGE.encode()
    start_response(
        "200 OK",
        [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(data)))],
    )
    return [data]


def _recipe(page: str, name: str, edits: dict[str, str]) -> str:
    """The text of ``name`` in ``page``'s recipe, each edit applied where it matches once."""
    code = PROJECTS[f"docs/{page}"][name].code
    for old, new in edits.items():
        assert code.count(old) == 1, f"docs/{page} {name}: expected {old!r} once; page changed?"
        code = code.replace(old, new)
    return code


def _module(code: str, tmp_path: Path, stem: str) -> ModuleType:
    """Import ``code`` as a fresh module (a unique name: every page calls its file app.py)."""
    name = f"recipe_{stem}_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # Flask(__name__) looks itself up there
    spec.loader.exec_module(module)
    return module


class Recorder:
    """Outermost shell around an API that only notes each request's method and path, so the
    test can see the browser's preflights."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def wsgi(self, app: Any) -> Any:
        def recorded(environ: dict[str, Any], start_response: StartResponse) -> Any:
            self.seen.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
            return app(environ, start_response)

        return recorded

    def asgi(self, app: Any) -> Any:
        async def recorded(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.seen.append((scope["method"], scope["path"]))
            await app(scope, receive, send)

        return recorded


# -- the APIs, as each page builds them ----------------------------------------------------
# Each builder takes the issuer, the front-end origin and whether to switch credentials on, and
# returns a context manager yielding the API's port (and a Recorder of its requests).

Api = Callable[[Issuer, str, bool, Path], AbstractContextManager[tuple[int, Recorder]]]


@contextmanager
def fastapi_api(
    issuer: Issuer, origin: str, credentials: bool, tmp_path: Path
) -> Iterator[tuple[int, Recorder]]:
    # docs/fastapi.md, "A complete recipe" app.py (its CORS section: add CORSMiddleware after
    # install(); allow_credentials=True for a token in the session cookie).
    edits = {RECIPE_FRONT_END: origin}
    if credentials:
        edits["allow_origins=[FRONT_END],"] = "allow_origins=[FRONT_END], allow_credentials=True,"
    module = _module(_recipe("fastapi.md", "app.py", edits), tmp_path, "fastapi")
    recorder = Recorder()
    with serve_asgi(recorder.asgi(module.create_app(issuer.config()))) as port:
        yield port, recorder


@contextmanager
def starlette_api(
    issuer: Issuer, origin: str, credentials: bool, tmp_path: Path
) -> Iterator[tuple[int, Recorder]]:
    # docs/asgi.md, "A complete recipe" app.py (its CORS section: CORSMiddleware first in
    # Starlette(middleware=[...])).
    edits = {RECIPE_FRONT_END: origin}
    if credentials:
        edits["allow_origins=[FRONT_END],"] = "allow_origins=[FRONT_END], allow_credentials=True,"
    module = _module(_recipe("asgi.md", "app.py", edits), tmp_path, "starlette")
    recorder = Recorder()
    with serve_asgi(recorder.asgi(module.create_app(issuer.config()))) as port:
        yield port, recorder


@contextmanager
def flask_api(
    issuer: Issuer, origin: str, credentials: bool, tmp_path: Path
) -> Iterator[tuple[int, Recorder]]:
    # docs/flask.md, "A complete recipe" app.py (its CORS section: CORS(app, origins=[...])
    # after init_app; supports_credentials=True for a token in the session cookie).
    edits = {RECIPE_FRONT_END: origin}
    if credentials:
        edits["CORS(app, origins=[FRONT_END])"] = (
            "CORS(app, origins=[FRONT_END], supports_credentials=True)"
        )
    module = _module(_recipe("flask.md", "app.py", edits), tmp_path, "flask")
    recorder = Recorder()
    with serve_wsgi(recorder.wsgi(module.create_app(issuer.config()))) as port:
        yield port, recorder


@contextmanager
def django_api(
    issuer: Issuer, origin: str, credentials: bool, tmp_path: Path
) -> Iterator[tuple[int, Recorder]]:
    # docs/django.md, "A complete recipe" settings.py and urls.py (its CORS section:
    # corsheaders' CorsMiddleware above WachtMiddleware; CORS_ALLOW_CREDENTIALS = True for a
    # token in the session cookie). The issuer's config goes into WACHT_AUTH, as the recipe's
    # test_views.py does.
    import django
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    urls = _module(_recipe("django.md", "urls.py", {}), tmp_path, "django_urls")
    code = _recipe("django.md", "settings.py", {f'"{RECIPE_FRONT_END}"': f'"{origin}"'})
    namespace: dict[str, Any] = {}
    exec(compile(code, "settings.py", "exec"), namespace)
    values = {key: value for key, value in namespace.items() if key.isupper()}
    values["ROOT_URLCONF"] = urls.__name__
    values["WACHT_AUTH"] = {**values["WACHT_AUTH"], "config": issuer.config()}
    if credentials:
        values["CORS_ALLOW_CREDENTIALS"] = True
    if not settings.configured:  # the recipe's settings come in override_settings below
        settings.configure(SECRET_KEY=values["SECRET_KEY"])
        django.setup()
    recorder = Recorder()
    with override_settings(**values):
        # The handler loads MIDDLEWARE now, under the recipe's settings.
        with serve_wsgi(recorder.wsgi(WSGIHandler())) as port:
            yield port, recorder


APIS: dict[str, Api] = {
    "fastapi": fastapi_api,
    "starlette": starlette_api,
    "flask": flask_api,
    "django": django_api,
}


# -- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer() as issuer:
        yield issuer


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """The static page, served on 127.0.0.1 and addressed as ``localhost``."""
    with serve_wsgi(_page_app) as port:
        yield f"http://localhost:{port}"


def _call(browser: webdriver.Chrome, url: str, init: dict[str, Any]) -> dict[str, Any]:
    """Run the page's ``call(url, init)``; bounded by the driver's script timeout."""
    done = "const done = arguments[arguments.length - 1];"
    result = browser.execute_async_script(
        f"{done} call(arguments[0], arguments[1]).then(done);", url, init
    )
    assert isinstance(result, dict), result
    return result


def _read(result: dict[str, Any]) -> tuple[int, str | None]:
    """Status and ``error.code`` as the page read them (``error`` says why it could not)."""
    assert "error" not in result, f"the page could not read {result['url']}: {result['error']}"
    error = result["body"].get("error")
    return result["status"], error["code"] if error else None


@pytest.mark.parametrize("framework", list(APIS))
def test_a_page_on_another_origin_reads_200_401_and_403(
    framework: str,
    browser: webdriver.Chrome,
    issuer: Issuer,
    page_origin: str,
    tmp_path: Path,
) -> None:
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    build = APIS[framework]

    # 1 and 2: the recipe as written, with a bearer token, from another site.
    with build(issuer, page_origin, False, tmp_path) as (port, recorder):
        api = f"http://127.0.0.1:{port}"
        browser.get(page_origin + "/")
        token = issuer.token("user_42")
        ok = _call(browser, api + "/me", {"headers": {"Authorization": f"Bearer {token}"}})
        assert _read(ok) == (200, None)
        assert ok["body"]["user_id"] == "user_42"
        assert recorder.seen[:2] == [("OPTIONS", "/me"), ("GET", "/me")], recorder.seen

        expired = {"headers": {"Authorization": f"Bearer {issuer.expired_token()}"}}
        assert _read(_call(browser, api + "/me", expired)) == (401, "token_expired")

    # 3: a credentialed POST carrying the session cookie from a foreign origin of the same
    # site, against the recipe with its page's credentials switch on.
    with build(issuer, page_origin, True, tmp_path) as (port, recorder):
        api = f"http://localhost:{port}"
        browser.get(api + "/health")  # a public route: the cookie is set for the API's host
        cookie = issuer.config().cookie_name
        assert cookie is not None
        token = issuer.token("user_42", permissions=["invoices:write"])
        browser.add_cookie(
            {"name": cookie, "value": token, "path": "/", "httpOnly": True, "sameSite": "Lax"}
        )
        browser.get(page_origin + "/")
        credentialed: dict[str, Any] = {"credentials": "include"}
        # A safe method: the cookie is sent and accepted, so the 403 below is the CSRF rule.
        signed_in = _call(browser, api + "/me", credentialed)
        assert _read(signed_in) == (200, None)
        assert signed_in["body"]["user_id"] == "user_42"
        posted = _call(browser, api + "/invoices", {**credentialed, "method": "POST"})
        assert _read(posted) == (403, "csrf_failed")
        # A POST without custom headers is a "simple" request: no preflight guards it, the
        # server receives it with the cookie, and only the CSRF rule stands in the way.
        assert ("POST", "/invoices") in recorder.seen
        assert ("OPTIONS", "/invoices") not in recorder.seen
    results = browser.execute_script("return window.results")
    assert [r["status"] for r in results] == [200, 403]  # the page kept what it read
