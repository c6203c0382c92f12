"""Flask's sign-out view (re-exported by :mod:`wacht_auth.integrations.flask`)."""

from __future__ import annotations

from flask import current_app, redirect, request
from werkzeug.wrappers import Response

from ..auth import signout
from ..errors import WachtAuthError

__all__ = ["sign_out"]


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
