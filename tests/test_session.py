"""Session: claim shapes old and new (DESIGN.md §2 claims table, §3 rule 10)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from wacht_auth import Session

BASE: dict[str, Any] = {"iss": "https://f.example", "sub": "123", "iat": 1000, "exp": 1035}


def test_current_claim_shape() -> None:
    claims = {
        **BASE,
        "sid": "456",
        "organization": "7",
        "workspace": "8",
        "permissions": {"organization": ["organization:admin"], "workspace": ["invoices:read"]},
        "metadata": {"plan": "pro"},
    }
    session = Session.from_claims(claims, "tok")
    assert (session.user_id, session.session_id) == ("123", "456")
    assert (session.organization_id, session.workspace_id) == ("7", "8")
    assert session.organization_permissions == ("organization:admin",)
    assert session.workspace_permissions == ("invoices:read",)
    assert session.permissions == ("organization:admin", "invoices:read")
    assert session.metadata == {"plan": "pro"}
    assert session.claims["sid"] == "456"
    assert session.expires_at == datetime.fromtimestamp(1035, timezone.utc)
    assert session.issued_at == datetime.fromtimestamp(1000, timezone.utc)
    assert session.token == "tok"


def test_older_claim_shapes() -> None:
    claims = {
        **BASE,
        "session_id": 99,
        "organization_permissions": ["a"],
        "workspace_permissions": None,
        "permissions": {},
    }
    session = Session.from_claims(claims, "tok")
    assert session.session_id == "99"
    assert session.organization_permissions == ("a",)
    assert session.workspace_permissions == ()
    assert session.metadata == {}


def test_null_permission_arrays_are_empty() -> None:
    claims = {**BASE, "permissions": {"organization": None, "workspace": None}}
    session = Session.from_claims(claims, "tok")
    assert session.permissions == ()
    assert not session.has_permission("organization:admin")


def test_has_permission_scopes() -> None:
    claims = {**BASE, "permissions": {"organization": ["x"], "workspace": ["y"]}}
    session = Session.from_claims(claims, "tok")
    assert session.has_permission("x") and session.has_permission("y")
    assert session.has_permission("x", "organization")
    assert not session.has_permission("x", "workspace")
    assert session.has_permission("y", "workspace")
    assert not session.has_permission("y", "organization")
    with pytest.raises(ValueError):
        session.has_permission("x", "team")  # type: ignore[arg-type]


def test_claims_are_read_only_and_token_stays_out_of_repr() -> None:
    session = Session.from_claims(dict(BASE), "secret.token.value")
    with pytest.raises(TypeError):
        session.claims["sub"] = "other"  # type: ignore[index]
    assert "secret.token.value" not in repr(session)
    assert session.forward_headers() == {"Authorization": "Bearer secret.token.value"}
