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
decisions: ``_core``, with ``_encode``, ``_retry`` and ``_paging``); each only owns its send
loop. The answers' types are in :mod:`wacht_auth.backend.types`. ``docs/backend.md`` has the
naming rule and the reference.

:data:`OPERATIONS`, the error classes and the types import without httpx; the clients (and
:class:`RetryPolicy`) are loaded on first use and need it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from ._async import AsyncBackendClient
    from ._client import SupportsToken
    from ._core import USER_AGENT
    from ._paging import DEFAULT_MAX_PAGES
    from ._retry import RetryPolicy
    from ._sync import BackendClient

#: The names that need httpx, and the private module each comes from.
_NEEDS_HTTPX = {
    "AsyncBackendClient": "._async",
    "BackendClient": "._sync",
    "DEFAULT_MAX_PAGES": "._paging",
    "RetryPolicy": "._retry",
    "SupportsToken": "._client",
    "USER_AGENT": "._core",
}

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


def __getattr__(name: str) -> Any:
    """Load the clients on first use (PEP 562), so the table imports without httpx."""
    module = _NEEDS_HTTPX.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module, __name__), name)
    except ImportError as exc:
        raise ImportError(
            f"wacht_auth.backend.{name} needs httpx: pip install 'wacht-auth[backend]'"
        ) from exc
    globals()[name] = value
    return value
