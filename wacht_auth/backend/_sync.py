"""The synchronous Backend API client: the shared core plus an ``httpx.Client`` send loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from ..config import Config, EventHandler
from ._api import SyncNamespaces
from ._client import _ClientBase, _env_settings
from ._core import Call
from ._errors import ClientClosedError
from ._operation import Operation, PageInfo, RequestOptions
from ._paging import DEFAULT_MAX_PAGES, check_walk, next_query, page_items, too_many_pages
from ._retry import RetryPolicy

if TYPE_CHECKING:
    from typing_extensions import Unpack


class BackendClient(_ClientBase, SyncNamespaces):
    """Synchronous Backend API client over one httpx connection pool.

    Every operation of Wacht's API description is a method of a namespace named after its tag
    (``client.users.get_user_details(user_id)``; ``OPERATIONS`` lists them all). Settings come
    from the explicit arguments, then ``config``, then defaults (``https://api.wacht.dev``,
    10 s timeout). Use it as a context manager, or call :meth:`close`. Thread-safe: share one
    client per process.

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
        if self._http.is_closed:
            raise ClientClosedError(
                "the client is closed", method=call.method, path=call.path, attempts=0
            )
        core = self._core
        started = core.clock()
        for attempt in range(1, (call.max_attempts or core.retry.max_attempts) + 1):
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

    def _call(
        self,
        op: Operation,
        *,
        path: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        files: Mapping[str, Any] | None = None,
        options: Mapping[str, Any],
    ) -> Any:
        """One operation of the table; the generated methods all come here."""
        call = self._core.build_operation(
            op, path=path or {}, query=query, body=body, files=files, options=options
        )
        return self._send(call)

    def _walk(
        self,
        op: Operation,
        *,
        path: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        max_pages: int,
        options: Mapping[str, Any],
    ) -> Iterator[Any]:
        """Every item of a list operation; bad arguments fail here, before any request."""
        params = {k: v for k, v in (query or {}).items() if v is not None}
        check_walk(params, max_pages)
        where = path or {}

        def build(params: Mapping[str, Any]) -> Call:
            return self._core.build_operation(
                op, path=where, query=params, body=None, files=None, options=options
            )

        build(params)

        return self._pages(build, op.page or PageInfo(), params, max_pages, op.path)

    def _pages(
        self,
        build: Callable[[Mapping[str, Any]], Call],
        page: PageInfo,
        params: dict[str, Any],
        max_pages: int,
        path: str,
    ) -> Iterator[Any]:
        for _ in range(max_pages):
            body = self._send(build(params))
            yield from page_items(body, page)
            following = next_query(params, body, page)
            if following is None:
                return
            params = following
        raise too_many_pages(path, max_pages)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        **options: Unpack[RequestOptions],
    ) -> Any:
        """Call any Backend API endpoint; the escape hatch for endpoints newer than the table.

        ``path`` is relative to the base URL (``"/users"``); ``params`` become the query
        (``None`` values dropped); ``json`` is sent as the body. Returns the decoded JSON
        (``None`` for an empty body), with a ``{"data": …}`` envelope that holds nothing else
        unwrapped. Takes the per-call options of every method (``timeout``, ``retries``,
        ``extra_headers``, ``idempotency_key``).

        Raises:
            BackendAPIError: a subclass per status, :class:`TransportError`,
                :class:`InvalidArgumentError` or :class:`ClientClosedError`.
        """
        call = self._core.build(method, path, params=params, json_body=json, options=options)
        return self._send(call)

    def paginate(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        items: str = "data",
        max_pages: int = DEFAULT_MAX_PAGES,
        **options: Unpack[RequestOptions],
    ) -> Iterator[Any]:
        """Every item of a ``GET`` list at ``path``, page by page: the walkers' pager for
        endpoints newer than the table (``items`` names the answer's array member)."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        check_walk(query, max_pages)
        self._core.build("GET", path, params=query, options=options)

        def build(params: Mapping[str, Any]) -> Call:
            return self._core.build("GET", path, params=params, options=options, unwrap=False)

        return self._pages(build, PageInfo(items, True, True), query, max_pages, path)
