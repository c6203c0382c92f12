"""Backend API response models: read-only mappings that keep every field the server sent.

Each model is a :class:`~collections.abc.Mapping` over the decoded JSON object, with typed
properties for the fields a verifying backend reads first. Fields this library does not know
(yet) stay reachable through item access and ``.raw``, so a newer server never loses data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Generic, TypeVar

__all__ = [
    "Membership",
    "Organization",
    "Page",
    "Resource",
    "SessionTicket",
    "User",
    "Workspace",
]


def _id(value: Any) -> str | None:
    """Ids are decimal strings in Wacht's JSON; tolerate numbers (i64 sent unquoted)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, str)):
        return str(value) or None
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 string or POSIX seconds (or milliseconds) as an aware UTC datetime."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, (int, float)):
            seconds = value / 1000 if value > 1e11 else value
            return datetime.fromtimestamp(seconds, timezone.utc)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None
    return None


class Resource(Mapping[str, Any]):
    """A Backend API object: a read-only mapping of every field the server sent.

    ``resource["field"]`` and ``resource.raw`` reach all fields, known or not; subclasses add
    typed properties for the common ones.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data: Mapping[str, Any] = MappingProxyType(dict(data))

    @property
    def raw(self) -> Mapping[str, Any]:
        """The decoded JSON object, read-only."""
        return self._data

    @property
    def id(self) -> str | None:
        """The object's id (a decimal string)."""
        return _id(self._data.get("id"))

    @property
    def created_at(self) -> datetime | None:
        """``created_at``, when sent and parseable."""
        return parse_time(self._data.get("created_at"))

    @property
    def updated_at(self) -> datetime | None:
        """``updated_at``, when sent and parseable."""
        return parse_time(self._data.get("updated_at"))

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Resource):
            return type(self) is type(other) and dict(self._data) == dict(other._data)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking JSON: not hashable

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, fields={len(self._data)})"


class User(Resource):
    """A user of the deployment (``GET /users/{id}``)."""

    __slots__ = ()

    @property
    def first_name(self) -> str | None:
        """``first_name``."""
        return _str(self._data.get("first_name"))

    @property
    def last_name(self) -> str | None:
        """``last_name``."""
        return _str(self._data.get("last_name"))

    @property
    def username(self) -> str | None:
        """``username``."""
        return _str(self._data.get("username"))

    @property
    def primary_email_address(self) -> str | None:
        """The primary email, whether sent as a string or as ``{"email": ...}``."""
        value = self._data.get("primary_email_address")
        if isinstance(value, Mapping):
            value = value.get("email") or value.get("email_address")
        return _str(value)

    @property
    def primary_phone_number(self) -> str | None:
        """The primary phone number, whether sent as a string or as ``{"phone_number": ...}``."""
        value = self._data.get("primary_phone_number")
        if isinstance(value, Mapping):
            value = value.get("phone_number")
        return _str(value)

    @property
    def profile_picture_url(self) -> str | None:
        """``profile_picture_url``."""
        return _str(self._data.get("profile_picture_url"))

    @property
    def public_metadata(self) -> Mapping[str, Any]:
        """``public_metadata`` (empty when absent)."""
        value = self._data.get("public_metadata")
        return value if isinstance(value, Mapping) else {}


class Organization(Resource):
    """An organization (``GET /organizations/{id}``)."""

    __slots__ = ()

    @property
    def name(self) -> str | None:
        """``name``."""
        return _str(self._data.get("name"))

    @property
    def image_url(self) -> str | None:
        """``image_url``."""
        return _str(self._data.get("image_url"))

    @property
    def member_count(self) -> int | None:
        """``member_count``, when sent."""
        return _int(self._data.get("member_count"))


class Workspace(Resource):
    """A workspace inside an organization (``GET /workspaces/{id}``)."""

    __slots__ = ()

    @property
    def name(self) -> str | None:
        """``name``."""
        return _str(self._data.get("name"))

    @property
    def organization_id(self) -> str | None:
        """The organization the workspace belongs to."""
        return _id(self._data.get("organization_id"))


class Membership(Resource):
    """A user's membership in an organization or workspace (the ``.../members`` lists)."""

    __slots__ = ()

    @property
    def user_id(self) -> str | None:
        """The member's user id (from ``user_id``, or from a nested ``user``)."""
        value = _id(self._data.get("user_id"))
        if value is None and isinstance(self._data.get("user"), Mapping):
            value = _id(self._data["user"].get("id"))
        return value

    @property
    def organization_id(self) -> str | None:
        """``organization_id``, when sent."""
        return _id(self._data.get("organization_id"))

    @property
    def workspace_id(self) -> str | None:
        """``workspace_id``, when sent."""
        return _id(self._data.get("workspace_id"))

    @property
    def user(self) -> User | None:
        """The nested user record, when the server embeds one."""
        value = self._data.get("user")
        return User(value) if isinstance(value, Mapping) else None

    @property
    def roles(self) -> tuple[str, ...]:
        """Role names, from ``roles`` (strings or ``{"name": ...}`` objects) or ``role``."""
        value = self._data.get("roles")
        if value is None and "role" in self._data:
            value = [self._data["role"]]
        if not isinstance(value, list):
            return ()
        names = []
        for item in value:
            if isinstance(item, Mapping):
                item = item.get("name")
            if isinstance(item, str):
                names.append(item)
        return tuple(names)


class SessionTicket(Resource):
    """A session ticket (``POST /session/tickets``): ``ticket``, ``expires_at``, ``url``.

    The ticket is a credential: it is kept out of ``repr``.
    """

    __slots__ = ()

    @property
    def ticket(self) -> str:
        """The ticket string to hand to the portal or the frontend."""
        return str(self._data.get("ticket") or "")

    @property
    def expires_at(self) -> datetime | None:
        """When the ticket expires (``expires_at``, ISO 8601 or POSIX seconds)."""
        return parse_time(self._data.get("expires_at"))

    @property
    def url(self) -> str | None:
        """The URL that redeems the ticket, when the server sends one."""
        return _str(self._data.get("url"))

    def __repr__(self) -> str:
        return f"SessionTicket(expires_at={self._data.get('expires_at')!r}, url={self.url!r})"


T = TypeVar("T", bound=Resource)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list call (``{"data": [...], "has_more", "limit", "offset", "total"}``).

    Attributes:
        data: the items on this page.
        has_more: whether the server says more pages follow (``None`` when it did not say).
        limit: the page size the server applied, when sent.
        offset: this page's offset, when sent.
        total: the total number of items, when sent.
        next_cursor: the cursor for the next page, when the server pages by cursor.
        raw: the whole decoded response, unknown fields included.
    """

    data: Sequence[T]
    has_more: bool | None
    limit: int | None
    offset: int | None
    total: int | None
    next_cursor: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    def __iter__(self) -> Iterator[T]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    @classmethod
    def parse(cls, body: Any, item: Callable[[Mapping[str, Any]], T]) -> Page[T]:
        """Read a list response; a bare JSON array is accepted as a single, final page."""
        if isinstance(body, list):
            body = {"data": body, "has_more": False}
        if not isinstance(body, Mapping):
            body = {}
        items = body.get("data")
        if not isinstance(items, list):
            items = []
        has_more = body.get("has_more")
        cursor = body.get("next_cursor", body.get("cursor"))
        return cls(
            data=tuple(item(x) for x in items if isinstance(x, Mapping)),
            has_more=has_more if isinstance(has_more, bool) else None,
            limit=_int(body.get("limit")),
            offset=_int(body.get("offset")),
            total=_int(body.get("total")),
            next_cursor=cursor if isinstance(cursor, str) and cursor else None,
            raw=MappingProxyType(dict(body)),
        )
