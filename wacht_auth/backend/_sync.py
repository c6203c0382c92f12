"""The synchronous Backend API client: the shared core plus an ``httpx.Client`` send loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ..config import Config, EventHandler
from . import _ops as ops
from ._client import _ClientBase, _env_settings, _too_many_pages
from ._core import Call, Op, RetryPolicy, next_page_params
from ._models import (
    Membership,
    Organization,
    Page,
    Resource,
    SessionTicket,
    User,
    Workspace,
)
from ._ops import TicketType

R = TypeVar("R")
T = TypeVar("T", bound=Resource)


class BackendClient(_ClientBase):
    """Synchronous Backend API client over one httpx connection pool.

    Settings come from the explicit arguments, then ``config``, then defaults
    (``https://api.wacht.dev``, 10 s timeout). Use it as a context manager, or call
    :meth:`close`. Thread-safe: share one client per process.

    Args:
        config: a :class:`wacht_auth.Config` to read ``secret_key``, ``deployment_id``,
            ``backend_api_url`` and ``backend_timeout`` from.
        secret_key: the Backend API secret key (opaque; never shown in a repr or an error).
        base_url: the Backend API URL; https, or http for loopback hosts only.
        deployment_id: sent as ``X-Deployment-ID`` when given.
        timeout: seconds one try may take (connect, read, write and pool wait each).
        retry: the :class:`RetryPolicy` (attempts, deadline, backoff).
        transport: an ``httpx.BaseTransport`` (tests use ``httpx.MockTransport``).
        clock: monotonic seconds for the retry deadline (injectable for tests).
        sleep: waits between tries (injectable for tests); ``time.sleep`` by default.
        on_event: observability callback (default ``config.on_event``); receives
            ``backend_request`` and ``backend_retry`` events, never credentials.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        secret_key: str | None = None,
        base_url: str | None = None,
        deployment_id: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        on_event: EventHandler | None = None,
    ) -> None:
        self._init_core(
            config, secret_key, base_url, deployment_id, timeout, retry, clock, on_event
        )
        self._sleep: Callable[[float], None] = sleep if sleep is not None else time.sleep
        self._http = httpx.Client(
            transport=transport, follow_redirects=False, timeout=self._core.timeout
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> BackendClient:
        """Build from ``WACHT_SECRET_KEY`` (or ``WACHT_API_KEY``), ``WACHT_DEPLOYMENT_ID`` and
        ``WACHT_BACKEND_API_URL``; keyword arguments win over the environment."""
        settings: dict[str, Any] = {**_env_settings(env)}
        settings.update({k: v for k, v in kwargs.items() if v is not None})
        return cls(**settings)

    def close(self) -> None:
        """Close the connection pool (a no-op on a client from :meth:`as_user`)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> BackendClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, call: Call) -> Any:
        core = self._core
        started = core.clock()
        for attempt in range(1, core.retry.max_attempts + 1):
            try:
                response = self._http.send(core.to_httpx(call, started))
            except httpx.RequestError as exc:
                delay = core.after_exception(call, exc, attempt, started)
            else:
                if response.is_success:
                    return core.decode(call, response, attempt, started)
                delay = core.after_response(call, response, attempt, started)
            self._sleep(delay)
        raise AssertionError("unreachable: the core raises on the last attempt")

    def _run(self, op: Op[R]) -> R:
        return op.parse(
            self.request(
                op.method,
                op.path,
                params=op.params,
                json=op.json,
                idempotency_key=op.idempotency_key,
            )
        )

    def _walk(
        self,
        path: str,
        item: Callable[[Mapping[str, Any]], T],
        query: Mapping[str, Any],
        max_pages: int,
    ) -> Iterator[T]:
        params: dict[str, Any] | None = dict(query)
        for _ in range(max_pages):
            if params is None:
                return
            page = self._run(ops.paged(path, item, params))
            yield from page.data
            params = next_page_params(params, page)
        if params is not None:
            raise _too_many_pages(path, max_pages)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Call any Backend API endpoint and return the decoded JSON body (``None`` if empty).

        ``path`` is relative to the base URL (``"/users"``); ``params`` become the query
        (``None`` values dropped); ``json`` is sent as the body. POST and PATCH are retried only
        when ``idempotency_key`` is given (sent as ``Idempotency-Key``).

        Raises:
            BackendAPIError: a subclass per status, or :class:`TransportError`.
        """
        return self._send(
            self._core.build(
                method, path, params=params, json_body=json, idempotency_key=idempotency_key
            )
        )

    # -- users -----------------------------------------------------------------------------------

    def get_user(self, user_id: str) -> User:
        """``GET /users/{user_id}``: one user."""
        return self._run(ops.get_user(user_id))

    def list_users(
        self,
        *,
        limit: int | None = None,
        offset: int | None = None,
        search: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Page[User]:
        """``GET /users``: one page of users."""
        return self._run(ops.list_users(ops.list_query(limit, offset, params, search=search)))

    def iter_users(
        self,
        *,
        search: str | None = None,
        page_size: int = ops.DEFAULT_PAGE_SIZE,
        max_pages: int = ops.DEFAULT_MAX_PAGES,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[User]:
        """Every user, walking ``GET /users`` page by page (at most ``max_pages`` pages)."""
        query = ops.walk_query(page_size, max_pages, params, search=search)
        return self._walk(ops.USERS, User, query, max_pages)

    def create_user(self, data: Mapping[str, Any], *, idempotency_key: str | None = None) -> User:
        """``POST /users``: create a user from ``data`` (fields as the API documents them)."""
        return self._run(ops.create_user(data, idempotency_key))

    def update_user(self, user_id: str, data: Mapping[str, Any]) -> User:
        """``PATCH /users/{user_id}``: change the given fields."""
        return self._run(ops.update_user(user_id, data))

    def delete_user(self, user_id: str) -> None:
        """``DELETE /users/{user_id}``."""
        self._run(ops.delete_user(user_id))

    # -- organizations and workspaces ------------------------------------------------------------

    def get_organization(self, organization_id: str) -> Organization:
        """``GET /organizations/{organization_id}``."""
        return self._run(ops.get_organization(organization_id))

    def list_organizations(
        self,
        *,
        limit: int | None = None,
        offset: int | None = None,
        search: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Page[Organization]:
        """``GET /organizations``: one page of organizations."""
        query = ops.list_query(limit, offset, params, search=search)
        return self._run(ops.list_organizations(query))

    def iter_organizations(
        self,
        *,
        search: str | None = None,
        page_size: int = ops.DEFAULT_PAGE_SIZE,
        max_pages: int = ops.DEFAULT_MAX_PAGES,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[Organization]:
        """Every organization, walking ``GET /organizations``."""
        query = ops.walk_query(page_size, max_pages, params, search=search)
        return self._walk(ops.ORGANIZATIONS, Organization, query, max_pages)

    def list_organization_members(
        self,
        organization_id: str,
        *,
        limit: int | None = None,
        offset: int | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Page[Membership]:
        """``GET /organizations/{organization_id}/members``: one page of memberships."""
        query = ops.list_query(limit, offset, params)
        return self._run(ops.list_organization_members(organization_id, query))

    def iter_organization_members(
        self,
        organization_id: str,
        *,
        page_size: int = ops.DEFAULT_PAGE_SIZE,
        max_pages: int = ops.DEFAULT_MAX_PAGES,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[Membership]:
        """Every member of an organization, walking its ``/members`` list."""
        path = ops.organization_members_path(organization_id)
        return self._walk(path, Membership, ops.walk_query(page_size, max_pages, params), max_pages)

    def get_workspace(self, workspace_id: str) -> Workspace:
        """``GET /workspaces/{workspace_id}``."""
        return self._run(ops.get_workspace(workspace_id))

    def list_workspace_members(
        self,
        workspace_id: str,
        *,
        limit: int | None = None,
        offset: int | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Page[Membership]:
        """``GET /workspaces/{workspace_id}/members``: one page of memberships."""
        query = ops.list_query(limit, offset, params)
        return self._run(ops.list_workspace_members(workspace_id, query))

    def iter_workspace_members(
        self,
        workspace_id: str,
        *,
        page_size: int = ops.DEFAULT_PAGE_SIZE,
        max_pages: int = ops.DEFAULT_MAX_PAGES,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[Membership]:
        """Every member of a workspace, walking its ``/members`` list."""
        path = ops.workspace_members_path(workspace_id)
        return self._walk(path, Membership, ops.walk_query(page_size, max_pages, params), max_pages)

    # -- session tickets -------------------------------------------------------------------------

    def create_session_ticket(
        self,
        ticket_type: TicketType,
        *,
        user_id: str | None = None,
        app_slug: str | None = None,
        expires_in: int | timedelta | None = None,
        extra: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> SessionTicket:
        """``POST /session/tickets``: a ticket granting portal access or impersonation.

        ``ticket_type`` is one of ``api_auth_access``, ``webhook_app_access`` (with
        ``app_slug``), ``impersonation``, ``agent_access`` (with ``user_id``); ``expires_in``
        is seconds; ``extra`` adds body fields as the API documents them.
        """
        return self._run(
            ops.create_session_ticket(
                ticket_type,
                user_id=user_id,
                app_slug=app_slug,
                expires_in=expires_in,
                extra=extra,
                idempotency_key=idempotency_key,
            )
        )
