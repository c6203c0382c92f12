"""The testing kit names the active organization and workspace as the session does."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from wacht_auth import Session
from wacht_auth.testing import Issuer


def payload(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def test_organization_id_and_workspace_id_mint_the_claims(wacht_issuer: Issuer) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        token = wacht_issuer.token(organization_id="7", workspace_id="8")
        claims = wacht_issuer.claims(organization_id="7", workspace_id="8")
    assert payload(token)["organization"] == claims["organization"] == "7"
    assert payload(token)["workspace"] == claims["workspace"] == "8"
    session = Session.from_claims(payload(token), token)
    assert (session.organization_id, session.workspace_id) == ("7", "8")


Minter = Callable[[Issuer, dict[str, Any]], dict[str, Any]]
MINTERS: dict[str, Minter] = {
    "token": lambda issuer, kw: payload(issuer.token(**kw)),
    "claims": lambda issuer, kw: issuer.claims(**kw),
    "expired_token": lambda issuer, kw: payload(issuer.expired_token(**kw)),
    "forged_token": lambda issuer, kw: payload(issuer.forged_token(**kw)),
}


@pytest.mark.parametrize("keyword", ["organization", "workspace"])
@pytest.mark.parametrize("minter", sorted(MINTERS))
def test_the_old_keywords_still_work_with_a_deprecation_warning(
    wacht_issuer: Issuer, minter: str, keyword: str
) -> None:
    with pytest.warns(DeprecationWarning) as record:
        claims = MINTERS[minter](wacht_issuer, {keyword: "7"})
    assert claims[keyword] == "7"
    assert len(record) == 1
    assert record[0].filename == __file__  # points at the caller, not at the kit


def test_old_and_new_keyword_together_is_a_type_error(wacht_issuer: Issuer) -> None:
    with pytest.raises(TypeError):
        wacht_issuer.token(organization_id="7", organization="7")
