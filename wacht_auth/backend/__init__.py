"""A typed client for the whole Wacht Backend API, sync and async, with token forwarding.

Install the ``backend`` extra (``pip install "wacht-auth[backend]"``, which brings httpx)::

    from wacht_auth.backend import BackendClient

    with BackendClient.from_env() as wacht:  # WACHT_SECRET_KEY, WACHT_DEPLOYMENT_ID
        user = wacht.users.get_user_details(session.user_id)
        for member in wacht.organizations.iter_organization_members(org_id):
            ...
        portal = wacht.as_user(session).api_auth.list_api_auth_apps()

Every operation of Wacht's API description is a method of a namespace named after its tag,
generated from one committed table (``_table.json``, ``make generate``); :data:`OPERATIONS`
maps each ``operationId`` to its :class:`Operation`. :class:`BackendClient` and
:class:`AsyncBackendClient` share one core (request building, error parsing, retry and paging
decisions: ``_core``); each only owns its send loop. The answers' types are in
:mod:`wacht_auth.backend.types`. ``docs/backend.md`` has the naming rule and the reference.
"""

from __future__ import annotations

from ._async import AsyncBackendClient
from ._client import SupportsToken
from ._core import DEFAULT_MAX_PAGES, USER_AGENT, RetryPolicy
from ._errors import (
    AuthenticationError,
    BackendAPIError,
    BackendForbiddenError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    RateLimitError,
    ServerError,
    TransportError,
    UnprocessableEntityError,
)
from ._operation import FileInput, Operation, PageInfo, RequestOptions
from ._operations import OPERATIONS
from ._redact import Record
from ._sync import BackendClient

__all__ = [
    "DEFAULT_MAX_PAGES",
    "OPERATIONS",
    "USER_AGENT",
    "AsyncBackendClient",
    "AuthenticationError",
    "BackendAPIError",
    "BackendClient",
    "BackendForbiddenError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "FileInput",
    "InvalidArgumentError",
    "NotFoundError",
    "Operation",
    "PageInfo",
    "RateLimitError",
    "Record",
    "RequestOptions",
    "RetryPolicy",
    "ServerError",
    "SupportsToken",
    "TransportError",
    "UnprocessableEntityError",
]
