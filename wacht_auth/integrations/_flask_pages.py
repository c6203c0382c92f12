"""The page pieces of the Flask adapter: the state's headers on the response and the sign-out
view (imported by :mod:`wacht_auth.integrations.flask` first; this module reaches back into
the adapter only inside functions)."""

from __future__ import annotations

from flask import after_this_request, current_app, redirect, request
from werkzeug.wrappers import Response

from ..auth import AuthState, signout
from ..auth.pages import merged_header
from ..errors import WachtAuthError

__all__ = ["sign_out"]


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
