"""The test kit's minting helpers take the arguments the docs say they take."""

from __future__ import annotations

import json
import urllib.request

import jwt
import pytest

from wacht_auth import Session, TokenExpiredError, Verifier
from wacht_auth.errors import WachtAuthError
from wacht_auth.testing import FrontendAPI, Issuer


def test_expired_token_takes_the_user_id_positionally(wacht_issuer: Issuer) -> None:
    token = wacht_issuer.expired_token("42", organization_id="7")
    with pytest.raises(TokenExpiredError) as info:
        Verifier(wacht_issuer.config()).verify(token)
    assert info.value.code == "token_expired"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sub"], claims["organization"]) == ("42", "7")


def test_forged_token_takes_the_user_id_positionally(wacht_issuer: Issuer) -> None:
    token = wacht_issuer.forged_token("42", permissions=["a"])
    with pytest.raises(WachtAuthError) as info:
        Verifier(wacht_issuer.config()).verify(token)
    assert info.value.code == "signature_invalid"
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "42"


def exchange(api: FrontendAPI, transport: str) -> Session:
    request = urllib.request.Request(
        api.url + "/session/token", headers={"Cookie": f"__session={transport}"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        token = json.load(answer)["data"]["token"]
    return Verifier(api.config()).verify(token)


def test_sign_in_takes_the_active_organization_and_workspace_like_token() -> None:
    with FrontendAPI() as api:
        transport = api.sign_in(
            "42",
            organization_id="7",
            workspace_id="8",
            permissions={"organization": ["a"], "workspace": ["b"]},
        )
        session = exchange(api, transport)
        assert (session.user_id, session.organization_id, session.workspace_id) == ("42", "7", "8")
        assert session.organization_permissions == ("a",)
        assert session.workspace_permissions == ("b",)
        plain = exchange(api, api.sign_in("43", claims={"organization": "9"}))
        assert plain.organization_id == "9"  # raw claims still work
