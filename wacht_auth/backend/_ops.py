"""The Backend API endpoints as data: method, path, query, body and how to read the answer.

Both clients call these builders, so a path or a parameter is written once. Paths follow the
Backend API's resource layout (DESIGN.md §2: base ``https://api.wacht.dev``, no version
prefix); ``docs/backend.md`` lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Literal, TypeVar, get_args

from ._core import Op, segment
from ._models import (
    Membership,
    Organization,
    Page,
    Resource,
    SessionTicket,
    User,
    Workspace,
)

T = TypeVar("T", bound=Resource)

#: The ticket types ``POST /session/tickets`` accepts (DESIGN.md §2).
TicketType = Literal["api_auth_access", "webhook_app_access", "impersonation", "agent_access"]
TICKET_TYPES: frozenset[str] = frozenset(get_args(TicketType))

#: Items per page when walking a list with ``iter_*`` (the server may cap it lower).
DEFAULT_PAGE_SIZE = 100
#: Pages an ``iter_*`` walk fetches at most before it stops with an error.
DEFAULT_MAX_PAGES = 1000


def _object(body: Any) -> Mapping[str, Any]:
    """The object of a single-resource answer (also accepted wrapped as ``{"data": {...}}``)."""
    if isinstance(body, Mapping):
        inner = body.get("data")
        if isinstance(inner, Mapping) and "id" not in body:
            return inner
        return body
    return {}


def _one(item: Callable[[Mapping[str, Any]], T]) -> Callable[[Any], T]:
    return lambda body: item(_object(body))


def _page(item: Callable[[Mapping[str, Any]], T]) -> Callable[[Any], Page[T]]:
    return lambda body: Page.parse(body, item)


def _none(body: Any) -> None:
    return None


def list_query(
    limit: int | None,
    offset: int | None,
    params: Mapping[str, Any] | None,
    **filters: Any,
) -> dict[str, Any]:
    """``?limit=&offset=`` plus filters; explicit ``params`` pass through (and win)."""
    for name, value in (("limit", limit), ("offset", offset)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    query: dict[str, Any] = {"limit": limit, "offset": offset, **filters}
    query.update(params or {})
    return {k: v for k, v in query.items() if v is not None}


def walk_query(
    page_size: int, max_pages: int, params: Mapping[str, Any] | None, **filters: Any
) -> dict[str, Any]:
    """The first query of an ``iter_*`` walk; both bounds must be positive integers."""
    for name, value in (("page_size", page_size), ("max_pages", max_pages)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return list_query(page_size, None, params, **filters)


# -- users ---------------------------------------------------------------------------------------

USERS = "/users"


def get_user(user_id: str) -> Op[User]:
    return Op("GET", f"{USERS}/{segment(user_id, 'user_id')}", _one(User))


def list_users(query: Mapping[str, Any]) -> Op[Page[User]]:
    return Op("GET", USERS, _page(User), params=query)


def create_user(data: Mapping[str, Any], idempotency_key: str | None) -> Op[User]:
    return Op("POST", USERS, _one(User), json=dict(data), idempotency_key=idempotency_key)


def update_user(user_id: str, data: Mapping[str, Any]) -> Op[User]:
    return Op("PATCH", f"{USERS}/{segment(user_id, 'user_id')}", _one(User), json=dict(data))


def delete_user(user_id: str) -> Op[None]:
    return Op("DELETE", f"{USERS}/{segment(user_id, 'user_id')}", _none)


# -- organizations and workspaces ----------------------------------------------------------------

ORGANIZATIONS = "/organizations"
WORKSPACES = "/workspaces"


def get_organization(organization_id: str) -> Op[Organization]:
    path = f"{ORGANIZATIONS}/{segment(organization_id, 'organization_id')}"
    return Op("GET", path, _one(Organization))


def list_organizations(query: Mapping[str, Any]) -> Op[Page[Organization]]:
    return Op("GET", ORGANIZATIONS, _page(Organization), params=query)


def organization_members_path(organization_id: str) -> str:
    return f"{ORGANIZATIONS}/{segment(organization_id, 'organization_id')}/members"


def list_organization_members(
    organization_id: str, query: Mapping[str, Any]
) -> Op[Page[Membership]]:
    return Op("GET", organization_members_path(organization_id), _page(Membership), params=query)


def get_workspace(workspace_id: str) -> Op[Workspace]:
    return Op("GET", f"{WORKSPACES}/{segment(workspace_id, 'workspace_id')}", _one(Workspace))


def workspace_members_path(workspace_id: str) -> str:
    return f"{WORKSPACES}/{segment(workspace_id, 'workspace_id')}/members"


def list_workspace_members(workspace_id: str, query: Mapping[str, Any]) -> Op[Page[Membership]]:
    return Op("GET", workspace_members_path(workspace_id), _page(Membership), params=query)


def paged(
    path: str, item: Callable[[Mapping[str, Any]], T], query: Mapping[str, Any]
) -> Op[Page[T]]:
    """A list call for ``iter_*`` walks, one page at a time."""
    return Op("GET", path, _page(item), params=query)


# -- session tickets -----------------------------------------------------------------------------

SESSION_TICKETS = "/session/tickets"


def create_session_ticket(
    ticket_type: str,
    *,
    user_id: str | None,
    app_slug: str | None,
    expires_in: int | timedelta | None,
    extra: Mapping[str, Any] | None,
    idempotency_key: str | None,
) -> Op[SessionTicket]:
    if ticket_type not in TICKET_TYPES:
        raise ValueError(
            f"ticket_type must be one of {', '.join(sorted(TICKET_TYPES))}, got {ticket_type!r}"
        )
    body: dict[str, Any] = {"ticket_type": ticket_type}
    if user_id is not None:
        body["user_id"] = str(user_id)
    if app_slug is not None:
        body["app_slug"] = app_slug
    if expires_in is not None:
        seconds = expires_in.total_seconds() if isinstance(expires_in, timedelta) else expires_in
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise ValueError(f"expires_in must be a positive number of seconds, got {expires_in!r}")
        body["expires_in"] = int(seconds)
    body.update(extra or {})
    return Op(
        "POST", SESSION_TICKETS, _one(SessionTicket), json=body, idempotency_key=idempotency_key
    )
