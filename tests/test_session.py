"""Session: claim shapes old and new (docs/architecture.md, Verification policy, rule 10)."""

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


def test_session_is_read_only() -> None:
    session = Session.from_claims({**BASE, "sid": "1"}, "tok")
    for name in ("user_id", "session_id", "organization_permissions", "token", "claims"):
        with pytest.raises(AttributeError):
            setattr(session, name, "other")
    with pytest.raises(AttributeError):
        session.extra = 1  # type: ignore[attr-defined]  # slots: no new attributes
    assert session.user_id == "123" and session.session_id == "1"


def test_fields_are_read_once_from_the_claims_they_wrap() -> None:
    claims: dict[str, Any] = {**BASE, "permissions": {"organization": ["a"], "workspace": []}}
    session = Session.from_claims(claims, "tok")
    first = session.organization_permissions
    assert first == ("a",) and session.organization_permissions is first
    assert session.expires_at is session.expires_at
    assert "user_id='123'" in repr(session)


@pytest.mark.parametrize("sub", [None, "", 5])
def test_a_session_needs_a_string_sub(sub: Any) -> None:
    with pytest.raises(ValueError):
        Session.from_claims({**BASE, "sub": sub}, "tok")


def test_sessions_can_be_held_weakly() -> None:
    """Adapters may keep per-session objects in weak mappings (no session kept alive)."""
    import weakref

    session = Session.from_claims(dict(BASE), "tok")
    ref = weakref.ref(session)
    assert ref() is session
    del session
    assert ref() is None
