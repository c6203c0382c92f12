"""The verified session: who the caller is, read from a token's claims."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal

__all__ = ["PermissionScope", "Session"]

#: Where a permission is held: the active organization or the active workspace.
PermissionScope = Literal["organization", "workspace"]


def _id(value: object) -> str | None:
    """Ids are decimal strings in Wacht tokens; older ones may send numbers."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


def _permission_list(value: object) -> tuple[str, ...]:
    """A permission array; ``null`` or a missing key is empty, non-strings are dropped."""
    if not isinstance(value, list) or not value:
        return ()
    items = tuple(value)
    for item in items:
        if type(item) is not str or not item:  # verified claims never get here
            return tuple(p for p in items if isinstance(p, str) and p)
    return items


@dataclass(frozen=True, eq=False)
class Session:
    """A verified Wacht session token, as the backend sees it.

    Built only by the verifier, after the signature and every claim check passed.

    Attributes:
        user_id: the ``sub`` claim.
        session_id: ``sid`` (older tokens: ``session_id``).
        organization_id: the active organization, when one is active.
        workspace_id: the active workspace, when one is active.
        organization_permissions: permissions held in the active organization.
        workspace_permissions: permissions held in the active workspace.
        metadata: the custom claims of the JWT template (empty when none).
        claims: every claim of the token (read-only).
        token: the raw token, for forwarding to the Backend API; never shown in ``repr``.
        issued_at: ``iat`` as an aware UTC datetime, when present.
        expires_at: ``exp`` as an aware UTC datetime.
    """

    user_id: str
    session_id: str | None
    organization_id: str | None
    workspace_id: str | None
    organization_permissions: tuple[str, ...]
    workspace_permissions: tuple[str, ...]
    metadata: Mapping[str, Any]
    claims: Mapping[str, Any]
    token: str = field(repr=False)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], token: str) -> Session:
        """Build a session from claims that already passed verification.

        Tolerates the older shapes: ``session_id`` for ``sid``, flat
        ``organization_permissions``/``workspace_permissions`` arrays, ``null`` arrays. The
        verifier hands over the claims it parsed and owns; they are wrapped, not copied (this
        runs on every fresh verification, DESIGN.md §8).
        """
        get = claims.get
        perms = get("permissions")
        if type(perms) is dict or isinstance(perms, Mapping):  # dict first: no ABC check
            org_perms = _permission_list(perms.get("organization"))
            ws_perms = _permission_list(perms.get("workspace"))
        else:
            org_perms = ws_perms = ()
        if not org_perms and "organization_permissions" in claims:
            org_perms = _permission_list(get("organization_permissions"))
        if not ws_perms and "workspace_permissions" in claims:
            ws_perms = _permission_list(get("workspace_permissions"))
        metadata = get("metadata")
        view = claims if type(claims) is MappingProxyType else MappingProxyType(claims)
        return cls(
            user_id=claims["sub"],
            session_id=_id(get("sid")) or _id(get("session_id")),
            organization_id=_id(get("organization")),
            workspace_id=_id(get("workspace")),
            organization_permissions=org_perms,
            workspace_permissions=ws_perms,
            metadata=MappingProxyType(metadata) if isinstance(metadata, dict) else _EMPTY,
            claims=view,
            token=token,
        )

    @cached_property
    def issued_at(self) -> datetime | None:
        """``iat`` as an aware UTC datetime, when present."""
        iat = self.claims.get("iat")
        if isinstance(iat, (int, float)) and not isinstance(iat, bool):
            return datetime.fromtimestamp(iat, timezone.utc)
        return None

    @cached_property
    def expires_at(self) -> datetime:
        """``exp`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.claims["exp"], timezone.utc)

    @property
    def permissions(self) -> tuple[str, ...]:
        """Organization permissions followed by workspace permissions."""
        return self.organization_permissions + self.workspace_permissions

    def has_permission(self, permission: str, scope: PermissionScope | None = None) -> bool:
        """Whether the session holds ``permission``.

        ``scope`` limits the check to the ``"organization"`` or ``"workspace"`` permissions;
        ``None`` accepts either.
        """
        if scope is None:
            return permission in self.organization_permissions or (
                permission in self.workspace_permissions
            )
        if scope == "organization":
            return permission in self.organization_permissions
        if scope == "workspace":
            return permission in self.workspace_permissions
        raise ValueError(f"scope must be 'organization', 'workspace' or None, got {scope!r}")

    def forward_headers(self) -> dict[str, str]:
        """Headers that pass the user's token forward to a Backend API call made for them."""
        return {"Authorization": f"Bearer {self.token}"}


_EMPTY: Mapping[str, Any] = MappingProxyType({})
