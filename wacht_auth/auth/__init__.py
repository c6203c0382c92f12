"""The request layer: one place that reads a request and decides everything about its caller.

Every adapter wraps its framework's request in a :class:`RequestView` and asks one
:class:`Authenticator` once per request (:meth:`~Authenticator.lookup` for a repeated bearer
token, :meth:`~Authenticator.resolve` / :meth:`~Authenticator.aresolve` for the rest). The
layer decides where the token comes from, whether a state attached earlier may be reused, the
CSRF rule for cookie-borne tokens, the CORS preflight rule, which routes are open under
``protect_all``, the page handshake, and what a route's requirements mean; it answers with an
immutable :class:`AuthState`. An adapter only translates: native request in, native state and
response out. The modules, each one concern:

* :mod:`~wacht_auth.auth.view`: the request view, the token's source, origins and CSRF;
* :mod:`~wacht_auth.auth.state`: the immutable state, and the one lazy holder of it;
* :mod:`~wacht_auth.auth.decide`: the decider, one decision driven by a sync and an async loop;
* :mod:`~wacht_auth.auth.steps`: the I/O the decision asks for, as values;
* :mod:`~wacht_auth.auth.pages`: the page handshake (Wacht's session cookies), cookies, URLs;
* :mod:`~wacht_auth.auth.guards`: requirements and decorators;
* :mod:`~wacht_auth.auth.options`: the layer's options and the one settings constructor.
"""

from __future__ import annotations

from ..errors import WachtAuthError
from .decide import Authenticator
from .guards import (
    Decorator,
    Guards,
    PathParam,
    Requirement,
    Requirements,
    public,
    request_argument,
    requirement,
)
from .options import Options, Paths, configure
from .pages import Handshake
from .state import AuthState, Caller, LazyState, PageError, Redirect, Refused
from .view import (
    SAFE_METHODS,
    RequestView,
    TokenSource,
    bearer_token,
    check_csrf,
    cookie_reader,
    is_preflight,
    origin,
    origin_of,
)

__all__ = [
    "SAFE_METHODS",
    "AuthState",
    "Authenticator",
    "Caller",
    "Decorator",
    "Guards",
    "Handshake",
    "LazyState",
    "Options",
    "PageError",
    "PathParam",
    "Paths",
    "Redirect",
    "Refused",
    "RequestView",
    "Requirement",
    "Requirements",
    "TokenSource",
    "bearer_token",
    "check_csrf",
    "configure",
    "cookie_reader",
    "error_response",
    "is_preflight",
    "origin",
    "origin_of",
    "public",
    "request_argument",
    "requirement",
]


def error_response(
    error: WachtAuthError, *, token_presented: bool = True
) -> tuple[int, dict[str, str], bytes]:
    """The HTTP answer for ``error``: status, headers (``Content-Type`` included), JSON body."""
    headers = {"Content-Type": "application/json"}
    headers.update(error.response_headers(token_presented=token_presented))
    return error.status, headers, error.to_json()
