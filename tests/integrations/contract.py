"""The adapter contract: one table of requests and the answers every framework must give.

Each framework's test builds an app with these routes (all answering JSON):

- ``GET /public``: open; ``{"user_id": <id or null>}`` from the request's auth state.
- ``GET /protected``, ``POST /protected``: ``require_auth``; ``{"user_id", "session_id"}``.
- ``GET /admin``: ``require_permission("invoices:write")``.
- ``GET /org``: ``require_organization()``.
- ``GET /granted``: ``require_scope("invoices:read")`` (the credential rows only).
- ``GET /tamper``: ``require_auth``; answers :func:`tamper` of the request's auth state (the
  example apps have no such route: rows with ``needs="tamper"`` are skipped there).

:data:`PROTECT_ALL_CASES` run on an app built with ``protect_all`` and the same routes. The
nested-middleware row (two verifiers on one request) exists where one request can pass two
middlewares: ASGI (``test_asgi.py``); the core rule is in ``tests/test_auth.py``.

and runs every :data:`CASES` row through its framework's own test client with
:func:`request_for`, then :func:`check` on the answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wacht_auth.testing import Issuer

APP_ORIGIN = "http://testserver"
FOREIGN_ORIGIN = "https://evil.example"


@dataclass(frozen=True)
class Case:
    """One request of the contract and the answer it must get."""

    name: str
    path: str
    token: str | None  # a key of make_token(), or None for no token
    status: int
    code: str | None = None
    method: str = "GET"
    via: str = "header"  # "header", "cookie", or "header-lower" (scheme in lower case)
    origin: str | None = None
    challenge: str | None = None  # a substring WWW-Authenticate must contain
    no_challenge: bool = False  # WWW-Authenticate must be absent
    user_id: str | None = None  # expected user_id in a 200 body
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict)  # expected members of the JSON body
    needs: str | None = None  # a route the example apps lack ("tamper")
    headers: tuple[str, ...] = ()  # response headers that must be present (lower case)
    location: str | None = None  # a 302's Location must start with this ("{frontend}": its URL)
    set_cookies: tuple[str, ...] = ()  # substrings the Set-Cookie headers must contain
    frontend_fails: int | None = None  # the fake frontend API answers exchanges with this
    header_values: Mapping[str, str] = field(default_factory=dict)  # header: a substring
    accept: tuple[str, ...] | None = None  # credential rows: the app's accept (None: all)


USER = "2741598367104"

TAMPER_ATTEMPTS = 4

CASES: list[Case] = [
    Case("public without token", "/public", None, 200),
    Case("public with valid token", "/public", "valid", 200, user_id=USER),
    Case("public with expired token stays open", "/public", "expired", 200),
    Case("valid token", "/protected", "valid", 200, user_id=USER),
    Case(
        "bearer scheme is case-insensitive",
        "/protected",
        "valid",
        200,
        via="header-lower",
        user_id=USER,
    ),
    Case("no token", "/protected", None, 401, "token_missing", challenge='Bearer realm="wacht"'),
    Case(
        "expired token",
        "/protected",
        "expired",
        401,
        "token_expired",
        challenge='error="invalid_token"',
    ),
    Case(
        "forged token",
        "/protected",
        "forged",
        401,
        "signature_invalid",
        challenge='error="invalid_token"',
    ),
    Case(
        "garbage token",
        "/protected",
        "garbage",
        401,
        "token_malformed",
        challenge='error="invalid_token"',
    ),
    Case("transport cookie token", "/protected", "transport", 401, "claims_invalid"),
    Case("wrong issuer", "/protected", "wrong_issuer", 401, "issuer_invalid"),
    Case("HS256 token", "/protected", "hs256", 401, "algorithm_not_allowed"),
    Case("permission held", "/admin", "with_permission", 200, user_id=USER),
    Case(
        "permission missing",
        "/admin",
        "valid",
        403,
        "permission_denied",
        challenge='error="insufficient_scope"',
    ),
    Case("permission route without token", "/admin", None, 401, "token_missing"),
    Case("organization active", "/org", "with_permission", 200, user_id=USER),
    Case("organization missing", "/org", "valid", 403, "organization_required"),
    Case("token from cookie", "/protected", "valid", 200, via="cookie", user_id=USER),
    Case(
        "cookie on POST from own origin",
        "/protected",
        "valid",
        200,
        method="POST",
        via="cookie",
        origin=APP_ORIGIN,
        user_id=USER,
    ),
    Case(
        "cookie on POST from foreign origin",
        "/protected",
        "valid",
        403,
        "csrf_failed",
        method="POST",
        via="cookie",
        origin=FOREIGN_ORIGIN,
        no_challenge=True,
    ),
    Case(
        "cookie on POST without origin",
        "/protected",
        "valid",
        403,
        "csrf_failed",
        method="POST",
        via="cookie",
    ),
    Case(
        "cookie on POST with Origin null and a same-site Referer",
        "/protected",
        "valid",
        403,
        "csrf_failed",
        method="POST",
        via="cookie",
        origin="null",
        extra_headers={"Referer": APP_ORIGIN + "/form"},
    ),
    Case(
        "cookie on POST from foreign Origin and a same-site Referer",
        "/protected",
        "valid",
        403,
        "csrf_failed",
        method="POST",
        via="cookie",
        origin=FOREIGN_ORIGIN,
        extra_headers={"Referer": APP_ORIGIN + "/form"},
    ),
    Case(
        "mutating the shared state is refused",
        "/tamper",
        "with_permission",
        200,
        user_id=USER,
        body={"refused": TAMPER_ATTEMPTS, "permissions": ["invoices:write"]},
        needs="tamper",
    ),
    Case(
        "bearer on POST from foreign origin",
        "/protected",
        "valid",
        200,
        method="POST",
        origin=FOREIGN_ORIGIN,
        user_id=USER,
    ),
]


PREFLIGHT = {"Access-Control-Request-Method": "POST", "Origin": FOREIGN_ORIGIN}

#: Rows for an app with ``protect_all``: one CORS preflight rule for every framework.
PROTECT_ALL_CASES: list[Case] = [
    Case("protect_all: no token", "/public", None, 401, "token_missing"),
    Case("protect_all: valid token", "/public", "valid", 200, user_id=USER),
    Case("protect_all: expired token", "/public", "expired", 401, "token_expired"),
    Case(
        "protect_all: plain OPTIONS needs a caller",
        "/public",
        None,
        401,
        "token_missing",
        method="OPTIONS",
    ),
    # A real preflight passes to the app, which answers it (200, 204 or 405 without CORS).
    Case(
        "protect_all: real preflight passes",
        "/public",
        None,
        0,
        method="OPTIONS",
        extra_headers=PREFLIGHT,
    ),
]


#: Rows for an app accepting every credential (or ``accept``; :func:`credential_options`):
#: API keys and opaque OAuth tokens of :func:`register_keys` checked by a
#: :class:`~wacht_auth.testing.FakeGateway` of deployment 1, OAuth JWT access tokens of an
#: :class:`~wacht_auth.testing.OAuthServer` verified locally.
RATE = "x-ratelimit-remaining"
OAUTH_USER = "4242"
KEYS_ONLY = ("session_token", "api_key")
OAUTH_ONLY = ("oauth_token",)
KEY_CASES: list[Case] = [
    Case("API key on a protected route", "/protected", "key", 200, body={"user_id": None},
         headers=(RATE,)),
    Case("API key with the permission", "/admin", "key", 200, headers=(RATE,)),
    Case("API key without the permission", "/admin", "key_without_permission", 403,
         "permission_denied", challenge='error="insufficient_scope"', headers=(RATE,)),
    Case("API key of an organization", "/org", "key", 200),
    Case("API key of no organization", "/org", "key_without_permission", 403,
         "organization_required"),
    Case("unknown API key", "/protected", "unknown_key", 401, "credential_invalid",
         challenge='error="invalid_token"'),
    Case("rate-limited API key", "/protected", "key_rate_limited", 429, "rate_limited",
         no_challenge=True, headers=("retry-after", RATE)),
    Case("gateway failing", "/protected", "key_gateway_fails", 503, "gateway_unavailable",
         no_challenge=True, headers=("retry-after",)),
    Case("session token beside keys", "/protected", "valid", 200, user_id=USER),
    Case("expired session token beside keys", "/protected", "expired", 401, "token_expired"),
    Case("no credential beside keys", "/protected", None, 401, "token_missing"),
    # Every credential as Wacht issues it (docs/credentials.md).
    Case("opaque OAuth token", "/protected", "oat", 200, user_id=OAUTH_USER, headers=(RATE,)),
    Case("opaque OAuth token: a scope is a permission", "/admin", "oat", 200),
    Case("opaque OAuth token without the scope", "/admin", "oat_no_scope", 403,
         "permission_denied"),
    Case("opaque OAuth token on a scoped route", "/granted", "oat", 200),
    Case("opaque OAuth token lacking the route's scope", "/granted", "oat_no_scope", 403,
         "permission_denied"),
    Case("OAuth JWT access token", "/protected", "oauth_jwt", 200, user_id=OAUTH_USER),
    Case("OAuth JWT: a scope is a permission", "/admin", "oauth_jwt", 200),
    Case("OAuth JWT without the scope", "/admin", "oauth_jwt_no_scope", 403,
         "permission_denied", challenge='error="insufficient_scope"'),
    Case("OAuth JWT on a scoped route", "/granted", "oauth_jwt", 200),
    Case("session token on a scoped route", "/granted", "valid", 403, "permission_denied"),
    Case("API key on a scoped route", "/granted", "key", 403, "permission_denied"),
    Case("id token as a bearer", "/protected", "id_token", 401, "token_use_invalid",
         challenge='error="invalid_token"'),
    Case("API key of this deployment", "/admin", "key", 200, body={"user_id": None}),
    Case("API key of another deployment", "/admin", "foreign_key", 401, "credential_invalid"),
    # The gateway would accept this JWT (registered there): a 401 proves it was never sent.
    Case("JWT of an unknown issuer", "/protected", "unknown_issuer_jwt", 401, "issuer_invalid"),
    # The accept matrix: only the kinds the app accepts.
    Case("keys only: opaque OAuth token refused", "/protected", "oat", 401,
         "credential_invalid", accept=KEYS_ONLY),
    Case("keys only: OAuth JWT refused", "/protected", "oauth_jwt", 401, "credential_invalid",
         accept=KEYS_ONLY),
    Case("keys only: API key", "/protected", "key", 200, accept=KEYS_ONLY),
    Case("OAuth only: API key refused", "/protected", "key", 401, "credential_invalid",
         accept=OAUTH_ONLY),
    Case("OAuth only: session token refused", "/protected", "valid", 401,
         "credential_invalid", accept=OAUTH_ONLY),
    Case("OAuth only: OAuth JWT", "/protected", "oauth_jwt", 200, user_id=OAUTH_USER,
         accept=OAUTH_ONLY),
    Case("OAuth only: opaque OAuth token", "/protected", "oat", 200, user_id=OAUTH_USER,
         accept=OAUTH_ONLY),
]  # fmt: skip


def credential_options(case: Case, oauth: Any) -> dict[str, Any]:
    """The request layer's options for a :data:`KEY_CASES` row (the config has the fake
    gateway's URL and ``deployment_id="1"``)."""
    accept = case.accept or ("session_token", "api_key", "oauth_token")
    return {"accept": list(accept), "oauth_issuers": [oauth.url]}


def register_keys(gateway: Any, oauth: Any = None) -> dict[str, str]:
    """The credentials :data:`KEY_CASES` name: API keys and opaque OAuth tokens registered
    with ``gateway``, JWT access tokens and an id token of ``oauth``."""
    limited = gateway.add_key(owner_user_id="owner-1")
    gateway.rate_limit(limited, retry_after=7)
    scopes = ["invoices:read", "invoices:write"]
    credentials = {
        "key": gateway.add_key(
            owner_user_id="owner-1", organization_id="77", permissions=["invoices:write"]
        ),
        "key_without_permission": gateway.add_key(owner_user_id="owner-1"),
        "key_rate_limited": limited,
        "key_gateway_fails": gateway.add_key(status=502),
        "unknown_key": "wk_test_nobody_issued_this",
        "foreign_key": gateway.add_key(deployment_id="999", permissions=["invoices:write"]),
        "oat": gateway.add_oauth_token(user_id=OAUTH_USER, scopes=scopes),
        "oat_no_scope": gateway.add_oauth_token(user_id=OAUTH_USER, scopes=["profile"]),
    }
    with Issuer() as other:
        # An issuer no test runs: a loopback one could reuse a port a later deployment gets.
        foreign = other.token(user_id=USER, claims={"iss": "https://unknown-issuer.example"})
    gateway.add_oauth_token(foreign, user_id=OAUTH_USER, scopes=scopes)
    credentials["unknown_issuer_jwt"] = foreign
    if oauth is not None:
        hour = 3600  # the fixtures live for the whole session
        credentials["oauth_jwt"] = oauth.access_token(OAUTH_USER, scopes=scopes, expires_in=hour)
        credentials["oauth_jwt_no_scope"] = oauth.access_token(
            OAUTH_USER, scopes=["profile"], expires_in=hour
        )
        later = int(oauth.clock()) + hour
        credentials["id_token"] = oauth.id_token(OAUTH_USER, claims={"exp": later})
    return credentials


#: Rows for pages (``GET /page``: ``require_auth(redirect=True)``) and the session handshake,
#: with a :class:`~wacht_auth.testing.FrontendAPI` as the deployment. ``via="session"`` sends
#: the token as the ``__session`` transport cookie, ``via="dev-query"`` as
#: ``?__dev_session__=``.
AUTH_COOKIE = ("HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=")
#: A cookie-signed answer, and one that sets our cookies: never stored by a shared cache.
PRIVATE = {"vary": "Cookie", "cache-control": "private, no-store"}
PAGE_CASES: list[Case] = [
    Case("page: anonymous visitor is sent to sign in", "/page", None, 302,
         location="{frontend}/sign-in?redirect_uri=http%3A%2F%2Ftestserver%2Fpage"),
    Case("page: signed in from the __session cookie", "/page", "signed_in", 200, via="session",
         body={"user_id": "user_1"}, set_cookies=("__auth_", *AUTH_COOKIE),
         header_values=PRIVATE),
    Case("page: the __auth cookie alone", "/page", "valid", 200, via="cookie", user_id=USER,
         header_values=PRIVATE),
    Case("page: an expired __auth cookie and a __session", "/page", "expired+signed_in", 200,
         via="cookie", body={"user_id": "user_1"}, set_cookies=("__auth_",),
         header_values=PRIVATE),
    Case("page: a development session in the URL", "/page", "dev", 302, via="dev-query",
         location="http://testserver/page", set_cookies=("__auth_", "__dev_session___"),
         header_values=PRIVATE),
    Case("page: a session that is over", "/page", "ended", 302, via="session",
         location="{frontend}/sign-in", set_cookies=("Max-Age=0",), header_values=PRIVATE),
    Case("public: a development link is made clean on any route", "/public", "dev", 302,
         via="dev-query", location="http://testserver/public", set_cookies=("__auth_",),
         header_values=PRIVATE),
    Case("page: a development link under a Host that is no host", "/page", "dev", 302,
         via="dev-query", extra_headers={"Host": "evil.example/@testserver"}, location="/page"),
    Case("page: a junk __session is anonymous", "/page", "junk", 302, via="session",
         location="{frontend}/sign-in"),
    Case("page: another deployment's __session is anonymous", "/page", "foreign_transport",
         302, via="session", location="{frontend}/sign-in"),
    Case("page: the frontend API is down", "/page", "signed_in", 503,
         "session_exchange_unavailable", via="session", frontend_fails=503,
         headers=("retry-after",), no_challenge=True),
    Case("API: signed in from the __session cookie", "/protected", "signed_in", 200,
         via="session", body={"user_id": "user_1"}),
    Case("API: anonymous keeps the 401", "/protected", None, 401, "token_missing"),
    Case("API: __session on a POST from a foreign origin", "/protected", "signed_in", 403,
         "csrf_failed", method="POST", via="session", origin=FOREIGN_ORIGIN),
    Case("API: the transport token as a bearer is no session", "/protected", "transport", 401,
         "claims_invalid"),
]  # fmt: skip


def tamper(state: Any) -> dict[str, Any]:
    """Try to change a request's auth state and the claims it shares with every request that
    carries the same token; answer how many attempts were refused (all must be)."""
    attempts = [
        lambda: setattr(state, "session", None),
        lambda: state.claims["permissions"]["organization"].append("organization:admin"),
        lambda: state.claims.__setitem__("sub", "someone-else"),
        lambda: state.session.claims["permissions"].__setitem__("organization", ["x"]),
    ]
    refused = 0
    for attempt in attempts:
        try:
            attempt()
        except (AttributeError, TypeError):
            refused += 1
    return {"user_id": state.user_id, "refused": refused, "permissions": list(state.permissions)}


def make_token(issuer: Issuer, variant: str) -> str:
    """The token of a contract variant, minted by the local issuer."""
    if variant == "valid":
        return issuer.token(user_id=USER)
    if variant == "with_permission":
        return issuer.token(
            user_id=USER, organization_id="77", permissions={"organization": ["invoices:write"]}
        )
    if variant == "expired":
        return issuer.expired_token(user_id=USER)
    if variant == "forged":
        return issuer.forged_token(user_id=USER)
    if variant == "transport":
        return issuer.transport_token()
    if variant == "wrong_issuer":
        return issuer.token(user_id=USER, claims={"iss": "https://other.example"})
    if variant in ("signed_in", "ended", "dev"):
        frontend: Any = issuer  # a FrontendAPI
        if variant == "dev":
            return str(frontend.dev_session())
        transport = str(frontend.sign_in())
        if variant == "ended":
            frontend.end_session(transport)
        return transport
    if variant == "garbage":
        return "not.a.jwt"
    if variant == "junk":
        return "sess_not_a_token"
    if variant == "foreign_transport":  # validly signed, but naming another deployment
        return issuer.transport_token(claims={"iss": "https://other.example"})
    if variant == "hs256":
        import jwt

        return jwt.encode({"sub": USER, "iss": issuer.url, "exp": 2**33}, "k" * 32, "HS256")
    raise ValueError(variant)


@dataclass(frozen=True)
class Request:
    """What a framework's test client must send for a case."""

    method: str
    path: str
    headers: dict[str, str]
    cookies: dict[str, str]


def request_for(
    case: Case, issuer: Issuer, cookie_name: str, keys: Mapping[str, str] | None = None
) -> Request:
    """Build the request of ``case``: headers and cookies, ready for any test client;
    ``keys`` are the API keys of :func:`register_keys`."""
    headers = dict(case.extra_headers)
    cookies: dict[str, str] = {}
    path = case.path
    if case.token == "expired+signed_in":
        cookies[cookie_name] = make_token(issuer, "expired")
        cookies["__session"] = make_token(issuer, "signed_in")
    elif case.token is not None:
        token = (keys or {}).get(case.token) or make_token(issuer, case.token)
        if case.via == "session":
            cookies["__session"] = token
        elif case.via == "dev-query":
            path = f"{path}?__dev_session__={token}"
        elif case.via == "cookie":
            cookies[cookie_name] = token
        elif case.via == "header-lower":
            headers["Authorization"] = f"bearer   {token}"
        else:
            headers["Authorization"] = f"Bearer {token}"
    if case.origin is not None:
        headers["Origin"] = case.origin
    return Request(case.method, path, headers, cookies)


def check(
    case: Case,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    set_cookies: list[str] | None = None,
    frontend: str = "",
) -> None:
    """Assert that an answer meets the contract row (``headers`` looked up case-insensitively;
    ``set_cookies`` every Set-Cookie value, which many clients fold)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, part in case.header_values.items():
        assert part in lowered.get(name, ""), (case.name, name, lowered)
    for wanted in case.set_cookies:
        assert any(wanted in cookie for cookie in set_cookies or ()), (case.name, set_cookies)
    if case.location is not None:
        assert status == case.status, (case.name, status, body[:300])
        location = lowered.get("location", "")
        assert location.startswith(case.location.format(frontend=frontend)), (case.name, location)
        return
    if case.status == 0:  # passed through to the app: anything but our refusal
        assert status not in (401, 403), (case.name, status, body[:300])
        return
    assert status == case.status, (case.name, status, body[:300])
    data: Any = json.loads(body)
    for key, value in case.body.items():
        assert data[key] == value, (case.name, data)
    if case.code is not None:
        assert data["error"]["code"] == case.code, (case.name, data)
        assert data["error"]["status"] == case.status, (case.name, data)
        assert isinstance(data["error"]["message"], str) and data["error"]["message"]
        assert lowered.get("content-type", "").startswith("application/json"), case.name
    if case.user_id is not None:
        assert data["user_id"] == case.user_id, (case.name, data)
    if case.challenge is not None:
        assert case.challenge in lowered.get("www-authenticate", ""), (case.name, lowered)
    if case.no_challenge:
        assert "www-authenticate" not in lowered, (case.name, lowered)
    for name in case.headers:
        assert name in lowered, (case.name, name, lowered)
