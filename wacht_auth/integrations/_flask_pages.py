"""The page pieces of the Flask adapter: the state's headers on the response, the
development-session links and the sign-out view (imported by
:mod:`wacht_auth.integrations.flask` first; this module reaches back into the adapter only
inside functions)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from flask import after_this_request, current_app, redirect, request
from werkzeug.exceptions import SecurityError
from werkzeug.wrappers import Response
from werkzeug.wsgi import get_host

from ..auth import Authenticator, AuthState, signout
from ..auth.pages import merged_header
from ..errors import WachtAuthError
from ..exchange import DEV_SESSION_PARAM
from ._wsgi import EnvironView

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]

__all__ = ["dev_links", "sign_out"]


def _copy_headers(state: AuthState) -> None:
    """Only requests whose state has headers to copy (an exchange's cookies, the gateway's
    rate-limit state, the private cache headers) register a hook; the others pay nothing.
    ``Set-Cookie`` lines are added; the others merged with the view's
    (:func:`~wacht_auth.auth.pages.merged_header`)."""

    def add(response: Response) -> Response:
        for name, value in state.response_headers:
            got = None if name == "Set-Cookie" else response.headers.pop(name, None)
            response.headers.add(name, merged_header(name, got, value))
        return response

    after_this_request(add)


def dev_links(
    layer: Authenticator,
    wsgi_app: WSGIApp,
    trusted_hosts: Callable[[], Collection[str] | None] = lambda: None,
) -> WSGIApp:
    """``wsgi_app`` behind the check of a ``?__dev_session__=`` link, for apps without
    ``protect_all`` (whose hook does it): one substring test per request and no Flask hook;
    a link is exchanged and the browser sent to the clean URL with the new cookies, on any
    route, so the long-lived development session never stays in the address bar. A Host
    that Flask's ``TRUSTED_HOSTS`` (``trusted_hosts()``) refuses is left to Flask (its 400)."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        query = environ.get("QUERY_STRING", "")
        if (
            DEV_SESSION_PARAM in query  # the quick test, inline: this runs on every request
            and layer.dev_link(environ.get("REQUEST_METHOD", "GET"), query)
            and _trusted_host(environ, trusted_hosts())
        ):
            state = layer.resolve(EnvironView(environ, environ.get("PATH_INFO", "")))
            if state.redirect:
                headers = [("Location", state.redirect), ("Content-Length", "0")]
                start_response("302 Found", [*headers, *state.response_headers])
                return [b""]
        return wsgi_app(environ, start_response)

    return app


def _trusted_host(environ: dict[str, Any], trusted: Collection[str] | None) -> bool:
    if trusted is None:
        return True
    try:
        get_host(environ, trusted)
    except SecurityError:
        return False
    return True


def sign_out(next: str = "/") -> Response:
    """The sign-out view (POST): ends the Wacht session at the frontend API, deletes our
    cookies and redirects (303) to ``next``.
    ``app.add_url_rule("/sign-out", view_func=sign_out, methods=["POST"])``, or return
    ``sign_out(next=...)`` from your own view. Public under ``protect_all``."""
    from .flask import _answer, _View

    req = request._get_current_object()  # type: ignore[attr-defined]  # not the proxy
    try:
        done = signout.sign_out(current_app.extensions["wacht"], _View(req), next)
    except WachtAuthError as error:
        return _answer(error)
    response = redirect(done.location, done.status)
    for name, value in done.headers:
        response.headers.add(name, value)
    return response


sign_out.wacht_public = True  # type: ignore[attr-defined]  # open under protect_all
