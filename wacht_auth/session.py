"""The verified session: who the caller is, read from a token's claims."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Literal

__all__ = ["PermissionScope", "Session", "freeze"]

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


def freeze(value: Any) -> Any:
    """``value`` made deeply read-only: JSON objects become read-only mappings, arrays tuples.

    A verified Session is shared by every request that carries its token (the token cache
    returns the same object), so nothing reachable from it may be changed by one of them.
    """
    kind = type(value)
    if kind is dict or kind is MappingProxyType:
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if kind is list or kind is tuple:
        return tuple([freeze(item) for item in value])
    return value


def _freeze_claims(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    """:func:`freeze` for a claims object, copying only what holds containers: most claims
    are strings and numbers, and this runs once per fresh token (docs/performance.md)."""
    copy = dict(claims)
    for key, value in copy.items():
        kind = type(value)
        if kind is dict or kind is list or kind is tuple or kind is MappingProxyType:
            copy[key] = freeze(value)
    return MappingProxyType(copy)


def _permission_list(value: object) -> tuple[str, ...]:
    """A permission array; ``null`` or a missing key is empty, non-strings are dropped."""
    if not isinstance(value, (list, tuple)) or not value:
        return ()
    items = tuple(value)
    for item in items:
        if type(item) is not str or not item:  # verified claims never get here
            return tuple(p for p in items if isinstance(p, str) and p)
    return items


class Session:
    """A verified Wacht session token, as the backend sees it.

    Built only by the verifier, after the signature and every claim check passed (or by
    :meth:`from_claims`). Deeply read-only: every attribute is a property without a setter,
    and the claims are frozen when the session is built (objects as read-only mappings,
    arrays as tuples), so one request cannot change what another sees. Only
    ``user_id``, ``claims`` and ``token`` are stored when it is built; the other fields are
    read from the claims on first access and then remembered, so a fresh verification does
    not pay for fields a request never reads (docs/performance.md).

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

    # __weakref__: adapters may remember per-session objects in weak mappings.
    # _state: the request layer's immutable AuthState of this session, made on its first
    # cache hit and reused by later ones (the verifier's cache returns this same object).
    __slots__ = ("__weakref__", "_claims", "_ids", "_perms", "_state", "_sub", "_times", "_token")

    def __init__(self, claims: Mapping[str, Any], token: str) -> None:
        """Wrap verified ``claims`` (frozen, see :func:`freeze`); prefer :meth:`from_claims`."""
        sub = claims.get("sub")
        if type(sub) is not str or not sub:
            raise ValueError("a session needs a non-empty string sub claim")
        self._sub: str = sub
        self._claims: Mapping[str, Any] = _freeze_claims(claims)
        self._token = token
        self._state: object = None
        self._ids: tuple[str | None, str | None, str | None] | None = None
        self._perms: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self._times: tuple[datetime | None, datetime] | None = None

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], token: str) -> Session:
        """Build a session from claims that already passed verification.

        Tolerates the older shapes: ``session_id`` for ``sid``, flat
        ``organization_permissions``/``workspace_permissions`` arrays, ``null`` arrays. The
        claims are copied into a deeply read-only structure.

        Raises:
            ValueError: ``sub`` is missing or not a non-empty string.
        """
        return cls(claims, token)

    def __repr__(self) -> str:
        return (
            f"Session(user_id={self._sub!r}, session_id={self.session_id!r}, "
            f"organization_id={self.organization_id!r}, workspace_id={self.workspace_id!r})"
        )

    @property
    def user_id(self) -> str:
        """The ``sub`` claim."""
        return self._sub

    @property
    def token(self) -> str:
        """The raw token, for forwarding to the Backend API."""
        return self._token

    @property
    def claims(self) -> Mapping[str, Any]:
        """Every claim of the token, deeply read-only (objects are mappings, arrays tuples)."""
        return self._claims

    def _read_ids(self) -> tuple[str | None, str | None, str | None]:
        ids = self._ids
        if ids is None:
            get = self._claims.get
            ids = (
                _id(get("sid")) or _id(get("session_id")),
                _id(get("organization")),
                _id(get("workspace")),
            )
            self._ids = ids
        return ids

    @property
    def session_id(self) -> str | None:
        """``sid`` (older tokens: ``session_id``)."""
        return self._read_ids()[0]

    @property
    def organization_id(self) -> str | None:
        """The active organization, when one is active."""
        return self._read_ids()[1]

    @property
    def workspace_id(self) -> str | None:
        """The active workspace, when one is active."""
        return self._read_ids()[2]

    def _read_permissions(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        perms = self._perms
        if perms is None:
            claims = self._claims
            nested = claims.get("permissions")
            if isinstance(nested, Mapping):
                org = _permission_list(nested.get("organization"))
                ws = _permission_list(nested.get("workspace"))
            else:
                org = ws = ()
            if not org and "organization_permissions" in claims:
                org = _permission_list(claims.get("organization_permissions"))
            if not ws and "workspace_permissions" in claims:
                ws = _permission_list(claims.get("workspace_permissions"))
            perms = self._perms = (org, ws)
        return perms

    @property
    def organization_permissions(self) -> tuple[str, ...]:
        """Permissions held in the active organization."""
        return self._read_permissions()[0]

    @property
    def workspace_permissions(self) -> tuple[str, ...]:
        """Permissions held in the active workspace."""
        return self._read_permissions()[1]

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The custom claims of the JWT template (empty when none), read-only."""
        metadata = self._claims.get("metadata")
        return metadata if type(metadata) is MappingProxyType else _EMPTY

    def _read_times(self) -> tuple[datetime | None, datetime]:
        times = self._times
        if times is None:
            iat = self._claims.get("iat")
            issued = (
                datetime.fromtimestamp(iat, timezone.utc)
                if isinstance(iat, (int, float)) and not isinstance(iat, bool)
                else None
            )
            times = self._times = (
                issued,
                datetime.fromtimestamp(self._claims["exp"], timezone.utc),
            )
        return times

    @property
    def issued_at(self) -> datetime | None:
        """``iat`` as an aware UTC datetime, when present."""
        return self._read_times()[0]

    @property
    def expires_at(self) -> datetime:
        """``exp`` as an aware UTC datetime."""
        return self._read_times()[1]

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
