"""What both Backend API clients share: settings, forwarding, ``repr``, and the namespaces' base.

The generated namespaces (``_api.py``) hold nothing but their client's ``_call`` and ``_walk``;
:class:`SyncTransport` and :class:`AsyncTransport` are what they need of a client.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

from ..config import Config, EventHandler
from ._core import Core
from ._operation import Operation
from ._retry import RetryPolicy

_Self = TypeVar("_Self", bound="_ClientBase")


class SupportsToken(Protocol):
    """Anything carrying a verified session token: a :class:`wacht_auth.Session`, or an
    adapter's auth state (``request.wacht``), whose ``token`` is ``None`` when signed out."""

    @property
    def token(self) -> str | None: ...


class SyncTransport(Protocol):
    """What a synchronous namespace calls on its client."""

    def _call(
        self,
        op: Operation,
        *,
        path: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        files: Mapping[str, Any] | None = None,
        options: Mapping[str, Any],
    ) -> Any: ...

    def _walk(
        self,
        op: Operation,
        *,
        path: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        max_pages: int,
        options: Mapping[str, Any],
    ) -> Iterator[Any]: ...


class AsyncTransport(Protocol):
    """What an asynchronous namespace calls on its client."""

    def _call(
        self,
        op: Operation,
        *,
        path: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        files: Mapping[str, Any] | None = None,
        options: Mapping[str, Any],
    ) -> Awaitable[Any]: ...

    def _walk(
        self,
        op: Operation,
        *,
        path: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        max_pages: int,
        options: Mapping[str, Any],
    ) -> AsyncIterator[Any]: ...


class SyncNamespace:
    """Base of the generated synchronous namespaces (``client.users`` …)."""

    __slots__ = ("_call", "_walk")

    def __init__(self, client: SyncTransport) -> None:
        self._call: Callable[..., Any] = client._call
        self._walk: Callable[..., Iterator[Any]] = client._walk


class AsyncNamespace:
    """Base of the generated asynchronous namespaces (``client.users`` …)."""

    __slots__ = ("_call", "_walk")

    def __init__(self, client: AsyncTransport) -> None:
        self._call: Callable[..., Awaitable[Any]] = client._call
        self._walk: Callable[..., AsyncIterator[Any]] = client._walk


def _env_settings(env: Mapping[str, str] | None) -> dict[str, str]:
    """The Backend API settings from the environment (and nothing that needs a frontend API)."""
    env = os.environ if env is None else env
    names = {
        "secret_key": ("WACHT_SECRET_KEY", "WACHT_API_KEY"),
        "deployment_id": ("WACHT_DEPLOYMENT_ID",),
        "base_url": ("WACHT_BACKEND_API_URL",),
    }
    out: dict[str, str] = {}
    for key, candidates in names.items():
        for name in candidates:
            value = env.get(name, "").strip()
            if value:
                out[key] = value
                break
    return out


class _ClientBase:
    """What both clients share: the core, construction, forwarding and ``repr``."""

    _core: Core
    _owns_http: bool

    def _init_core(
        self,
        config: Config | None,
        secret_key: str | None,
        base_url: str | None,
        deployment_id: str | None,
        timeout: float | None,
        retry: RetryPolicy | None,
        clock: Callable[[], float] | None,
        on_event: EventHandler | None,
    ) -> None:
        self._core = Core.create(
            config,
            secret_key=secret_key,
            base_url=base_url,
            deployment_id=deployment_id,
            timeout=timeout,
            retry=retry,
            clock=clock,
            on_event=on_event,
        )
        self._owns_http = True

    @property
    def base_url(self) -> str:
        """The Backend API base URL (no trailing slash)."""
        return self._core.base_url

    @property
    def deployment_id(self) -> str | None:
        """The ``X-Deployment-ID`` sent with every call, when configured."""
        return self._core.deployment_id

    @property
    def acting_as_user(self) -> bool:
        """True for a client from :meth:`as_user`: it sends the user's JWT, not the secret key."""
        return self._core.acting_as_user

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy."""
        return self._core.retry

    def _derive(self: _Self, core: Core) -> _Self:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._core = core
        clone._owns_http = False  # the pool belongs to the client it came from
        return clone

    def as_user(self: _Self, session_or_token: SupportsToken | str) -> _Self:
        """A client that authenticates as the signed-in user instead of with the secret key.

        Takes a verified :class:`wacht_auth.Session` (or an adapter's auth state; its
        ``token`` is used) or the raw session JWT. Requests then carry
        ``Authorization: Bearer <user jwt>`` and never the secret key; this is what the Backend
        API endpoints that act for the user (the API Auth App and Webhook App portals) expect.
        The returned client shares this client's connection pool: closing it does nothing, and
        it stops working once this client is closed.

        Raises:
            wacht_auth.TokenMissingError: nobody is signed in (no token).
            InvalidArgumentError: the token is not a string, or not header-safe.
        """
        return self._derive(self._core.for_user(session_or_token))

    def __repr__(self) -> str:
        auth = "user token" if self._core.acting_as_user else "secret key"
        return (
            f"{type(self).__name__}(base_url={self._core.base_url!r}, "
            f"deployment_id={self._core.deployment_id!r}, auth={auth!r})"
        )
