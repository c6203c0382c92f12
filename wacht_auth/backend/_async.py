"""The asynchronous Backend API client: the shared core plus an ``httpx.AsyncClient`` loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from ..config import Config, EventHandler
from ._api import AsyncNamespaces
from ._client import _ClientBase, _env_settings
from ._core import Call
from ._errors import ClientClosedError
from ._operation import Operation, PageInfo, RequestOptions
from ._paging import DEFAULT_MAX_PAGES, check_walk, next_query, page_items, too_many_pages
from ._retry import RetryPolicy

if TYPE_CHECKING:
    from typing_extensions import Unpack


class AsyncBackendClient(_ClientBase, AsyncNamespaces):
    """Asynchronous twin of :class:`BackendClient` over one ``httpx.AsyncClient`` pool.

    Same arguments (``transport`` is an ``httpx.AsyncBaseTransport``; ``sleep`` is awaited,
    ``asyncio.sleep`` by default), same namespaces and methods, awaited; the walkers
    (``iter_*``) and :meth:`paginate` are async iterators. Use ``async with``, or call
    :meth:`aclose`.
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
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        on_event: EventHandler | None = None,
    ) -> None:
        self._init_core(
            config, secret_key, base_url, deployment_id, timeout, retry, clock, on_event
        )
        self._sleep: Callable[[float], Awaitable[None]] = (
            sleep if sleep is not None else asyncio.sleep
        )
        self._http = httpx.AsyncClient(
            transport=transport, follow_redirects=False, timeout=self._core.timeout
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> AsyncBackendClient:
        """Build from ``WACHT_SECRET_KEY`` (or ``WACHT_API_KEY``), ``WACHT_DEPLOYMENT_ID`` and
        ``WACHT_BACKEND_API_URL``; keyword arguments win over the environment."""
        settings: dict[str, Any] = {**_env_settings(env)}
        settings.update({k: v for k, v in kwargs.items() if v is not None})
        return cls(**settings)

    async def aclose(self) -> None:
        """Close the connection pool (a no-op on a client from :meth:`as_user`)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncBackendClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _send(self, call: Call) -> Any:
        if self._http.is_closed:
            raise ClientClosedError(
                "the client is closed", method=call.method, path=call.path, attempts=0
            )
        core = self._core
        started = core.clock()
        for attempt in range(1, (call.max_attempts or core.retry.max_attempts) + 1):
            try:
                response = await self._http.send(core.to_httpx(call, started))
            except httpx.RequestError as exc:
                delay = core.after_exception(call, exc, attempt, started)
            else:
                if response.is_success:
                    return core.decode(call, response, attempt, started)
                delay = core.after_response(call, response, attempt, started)
            await self._sleep(delay)
        raise AssertionError("unreachable: the core raises on the last attempt")

    async def _call(
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
        return await self._send(call)

    def _walk(
        self,
        op: Operation,
        *,
        path: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        max_pages: int,
        options: Mapping[str, Any],
    ) -> AsyncIterator[Any]:
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

    async def _pages(
        self,
        build: Callable[[Mapping[str, Any]], Call],
        page: PageInfo,
        params: dict[str, Any],
        max_pages: int,
        path: str,
    ) -> AsyncIterator[Any]:
        for _ in range(max_pages):
            body = await self._send(build(params))
            for item in page_items(body, page):
                yield item
            following = next_query(params, body, page)
            if following is None:
                return
            params = following
        raise too_many_pages(path, max_pages)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        **options: Unpack[RequestOptions],
    ) -> Any:
        """Call any Backend API endpoint; see :meth:`BackendClient.request`."""
        call = self._core.build(method, path, params=params, json_body=json, options=options)
        return await self._send(call)

    def paginate(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        items: str = "data",
        max_pages: int = DEFAULT_MAX_PAGES,
        **options: Unpack[RequestOptions],
    ) -> AsyncIterator[Any]:
        """Every item of a ``GET`` list at ``path`` (``async for``); see
        :meth:`BackendClient.paginate`."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        check_walk(query, max_pages)
        self._core.build("GET", path, params=query, options=options)

        def build(params: Mapping[str, Any]) -> Call:
            return self._core.build("GET", path, params=params, options=options, unwrap=False)

        return self._pages(build, PageInfo(items, True, True), query, max_pages, path)
