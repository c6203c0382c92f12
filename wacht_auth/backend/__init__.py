"""A small client for the Wacht Backend API, sync and async, with token forwarding.

Install the ``backend`` extra (``pip install "wacht-auth[backend]"``, which brings httpx)::

    from wacht_auth.backend import BackendClient

    with BackendClient.from_env() as wacht:  # WACHT_SECRET_KEY, WACHT_DEPLOYMENT_ID
        user = wacht.get_user(session.user_id)
        for member in wacht.iter_organization_members(org_id):
            ...
        portal = wacht.as_user(session).request("GET", "/api-auth/apps")

:class:`BackendClient` and :class:`AsyncBackendClient` share one core (request building, error
parsing, retry decisions: ``wacht_auth.backend._core``); each only owns its send loop. The
modules behind this one are private; import from here. ``docs/backend.md`` lists every method
with its path, the error classes and the retry policy.
"""

from __future__ import annotations

from ._async import AsyncBackendClient
from ._client import SupportsToken
from ._core import USER_AGENT, RetryPolicy
from ._errors import (
    AuthenticationError,
    BackendAPIError,
    BackendForbiddenError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    RateLimitError,
    ServerError,
    TransportError,
    UnprocessableEntityError,
)
from ._models import (
    Membership,
    Organization,
    Page,
    Resource,
    SessionTicket,
    User,
    Workspace,
)
from ._ops import TICKET_TYPES, TicketType
from ._sync import BackendClient

__all__ = [
    "TICKET_TYPES",
    "USER_AGENT",
    "AsyncBackendClient",
    "AuthenticationError",
    "BackendAPIError",
    "BackendClient",
    "BackendForbiddenError",
    "BadRequestError",
    "ConflictError",
    "Membership",
    "NotFoundError",
    "Organization",
    "Page",
    "RateLimitError",
    "Resource",
    "RetryPolicy",
    "ServerError",
    "SessionTicket",
    "SupportsToken",
    "TicketType",
    "TransportError",
    "UnprocessableEntityError",
    "User",
    "Workspace",
]
