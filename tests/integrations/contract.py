"""The adapter contract: one table of requests and the answers every framework must give.

Each framework's test builds an app with these routes (all answering JSON):

- ``GET /public``: open; ``{"user_id": <id or null>}`` from the request's auth state.
- ``GET /protected``, ``POST /protected``: ``require_auth``; ``{"user_id", "session_id"}``.
- ``GET /admin``: ``require_permission("invoices:write")``.
- ``GET /org``: ``require_organization()``.

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


USER = "2741598367104"

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
        "bearer on POST from foreign origin",
        "/protected",
        "valid",
        200,
        method="POST",
        origin=FOREIGN_ORIGIN,
        user_id=USER,
    ),
]


def make_token(issuer: Issuer, variant: str) -> str:
    """The token of a contract variant, minted by the local issuer."""
    if variant == "valid":
        return issuer.token(user_id=USER)
    if variant == "with_permission":
        return issuer.token(
            user_id=USER, organization="77", permissions={"organization": ["invoices:write"]}
        )
    if variant == "expired":
        return issuer.expired_token(user_id=USER)
    if variant == "forged":
        return issuer.forged_token(user_id=USER)
    if variant == "transport":
        return issuer.transport_token()
    if variant == "wrong_issuer":
        return issuer.token(user_id=USER, claims={"iss": "https://other.example"})
    if variant == "garbage":
        return "not.a.jwt"
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


def request_for(case: Case, issuer: Issuer, cookie_name: str) -> Request:
    """Build the request of ``case``: headers and cookies, ready for any test client."""
    headers = dict(case.extra_headers)
    cookies: dict[str, str] = {}
    if case.token is not None:
        token = make_token(issuer, case.token)
        if case.via == "cookie":
            cookies[cookie_name] = token
        elif case.via == "header-lower":
            headers["Authorization"] = f"bearer   {token}"
        else:
            headers["Authorization"] = f"Bearer {token}"
    if case.origin is not None:
        headers["Origin"] = case.origin
    return Request(case.method, case.path, headers, cookies)


def check(case: Case, status: int, headers: Mapping[str, str], body: bytes) -> None:
    """Assert that an answer meets the contract row (``headers`` looked up case-insensitively)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    assert status == case.status, (case.name, status, body[:300])
    data: Any = json.loads(body)
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
