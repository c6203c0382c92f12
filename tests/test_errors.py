"""The error table (docs/errors.md): codes, statuses, envelopes and challenges."""

from __future__ import annotations

import json

import pytest

import wacht_auth
from wacht_auth import errors

TABLE = {
    "TokenMissingError": ("token_missing", 401),
    "TokenMalformedError": ("token_malformed", 401),
    "TokenTooLargeError": ("token_too_large", 401),
    "AlgorithmNotAllowedError": ("algorithm_not_allowed", 401),
    "KeyNotFoundError": ("key_not_found", 401),
    "SignatureInvalidError": ("signature_invalid", 401),
    "TokenExpiredError": ("token_expired", 401),
    "TokenNotYetValidError": ("token_not_yet_valid", 401),
    "IssuerInvalidError": ("issuer_invalid", 401),
    "AudienceInvalidError": ("audience_invalid", 401),
    "PartyNotAuthorizedError": ("party_not_authorized", 401),
    "ClaimsInvalidError": ("claims_invalid", 401),
    "TokenUseInvalidError": ("token_use_invalid", 401),
    "PermissionDeniedError": ("permission_denied", 403),
    "OrganizationRequiredError": ("organization_required", 403),
    "WorkspaceRequiredError": ("workspace_required", 403),
    "CsrfFailedError": ("csrf_failed", 403),
    "JWKSUnavailableError": ("jwks_unavailable", 503),
}


@pytest.mark.parametrize(("name", "expected"), TABLE.items())
def test_codes_and_statuses_are_stable(name: str, expected: tuple[str, int]) -> None:
    cls = getattr(wacht_auth, name)
    error = cls()
    assert (error.code, error.status) == expected
    assert isinstance(error, wacht_auth.WachtAuthError)
    assert error.message
    body = json.loads(error.to_json())
    assert body == {"error": {"code": expected[0], "message": error.message, "status": expected[1]}}


def test_401_challenge_follows_rfc_6750() -> None:
    headers = wacht_auth.TokenExpiredError('the "token" expired').response_headers()
    value = headers["WWW-Authenticate"]
    assert value.startswith('Bearer realm="wacht", error="invalid_token", error_description=')
    assert '\\"token\\"' in value
    missing = wacht_auth.TokenMissingError().response_headers()
    assert missing == {"WWW-Authenticate": 'Bearer realm="wacht"'}


def test_403_and_503_headers() -> None:
    assert (
        'error="insufficient_scope"'
        in (wacht_auth.PermissionDeniedError().response_headers()["WWW-Authenticate"])
    )
    assert wacht_auth.CsrfFailedError().response_headers() == {}
    assert wacht_auth.JWKSUnavailableError(retry_after=12).response_headers() == {
        "Retry-After": "12"
    }


def test_challenge_strips_control_characters() -> None:
    value = errors.TokenMalformedError("bad\r\nX-Injected: 1").response_headers()
    assert "\r" not in value["WWW-Authenticate"] and "\n" not in value["WWW-Authenticate"]
