"""Wacht's gateway: API keys and OAuth access tokens, checked remotely (docs/credentials.md).

Session tokens are verified locally; the two other credentials Wacht issues are judged by its
gateway, which also applies the deployment's rate limits: ``POST {gateway}/v1/authz/check``
with the principal, the request's path and method. Each such request costs one call (never
cached: the gateway counts them), over a keep-alive connection pool shared by the process.

:func:`judge` turns an answer into a :class:`Credential` or the error to answer with, without
I/O; :class:`Gateway` makes the call (``check`` / ``acheck``). ``httpx`` is needed only here,
and only when an app accepts API keys or OAuth tokens (the ``gateway`` extra).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator, Collection, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from .config import _check_fetch_url, strings
from .credentials import (
    CREDENTIAL_KINDS,
    Credential,
    CredentialKind,
    TokenFormat,
    as_id,
    resource_scope,
)
from .errors import (
    ConfigurationError,
    CredentialInvalidError,
    GatewayUnavailableError,
    PermissionDeniedError,
    RateLimitedError,
    WachtAuthError,
    shown,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "CREDENTIAL_KINDS",
    "MAX_ANSWER_BYTES",
    "Checked",
    "Credential",
    "CredentialKind",
    "Gateway",
    "TokenFormat",
    "judge",
    "resource_scope",
]

#: The largest gateway answer read (bytes); a bigger one is ``gateway_unavailable``. A real
#: answer is well under 4 KiB (identity, a permission list, rate-limit states, headers).
MAX_ANSWER_BYTES = 64 * 1024
# The gateway's name of each principal type.
_PRINCIPAL = {"api_key": "api_key", "oauth_token": "oauth_access_token"}
_LOGGER = logging.getLogger("wacht_auth")
_EMPTY: Mapping[str, Any] = MappingProxyType({})
# A header the gateway asks us to copy: a token name and a value without control characters
# (RFC 9110 §5.1, §5.5): anything else could split our response.
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}\Z")
_VALUE = re.compile(r"[\t\x20-\x7e]{0,512}\Z")
# Only the rate-limit state is the gateway's to add: any other header (Content-Length,
# Transfer-Encoding, Set-Cookie, Location ...) would reframe, redirect or plant on our answer.
_RATE_HEADER = re.compile(r"(?:x-)?rate-?limit|retry-after\Z", re.IGNORECASE)
_MAX_HEADERS = 32
# Statuses meaning "the gateway does not know this value"; other 4xx mean our request was
# wrong, which the caller cannot fix: the gateway is then as good as unavailable.
_NOT_A_CREDENTIAL = frozenset({400, 401, 403, 404, 422})


class Checked(NamedTuple):
    """The gateway's verdict: a credential, or the error to answer with; and the headers
    (rate-limit state) to copy onto the response either way."""

    credential: Credential | None
    error: WachtAuthError | None
    headers: tuple[tuple[str, str], ...] = ()


def _headers(value: object) -> tuple[tuple[str, str], ...]:
    """The answer's ``headers`` object as safe response headers (others dropped)."""
    if not isinstance(value, Mapping):
        return ()
    safe = [
        (name, item)
        for name, item in value.items()
        if isinstance(name, str)
        and isinstance(item, str)
        and _NAME.match(name)
        and _RATE_HEADER.match(name)
        and _VALUE.match(item)
    ]
    return tuple(safe[:_MAX_HEADERS])


def _seconds(value: object, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, (int, float)) and value == value:
        return max(1, min(int(value + 0.999), 3600))
    if isinstance(value, str) and value.strip().isdigit():
        return max(1, min(int(value.strip()), 3600))
    return default


def judge(
    kind: CredentialKind,
    status: int,
    body: bytes,
    retry_after: str | None = None,
    *,
    deployment_id: str | int | None = None,
    app_slugs: Collection[str] = (),
    client_ids: Collection[str] = (),
) -> Checked:
    """The verdict for one gateway answer (no I/O): the answers of docs/credentials.md.

    The gateway finds a credential from its value alone, in any Wacht deployment, so an
    answer counts only when its ``identity.deployment_id`` is ``deployment_id`` (compared
    as strings: Wacht sends a number); with ``app_slugs`` an API key's ``app_slug`` must be
    one of them, with ``client_ids`` an OAuth token's client id. Anything else is 401
    ``credential_invalid``, logged with the reason (never the value).

    ``allowed: false`` with ``permission_denied`` (or another reason) is 403, with
    ``rate_limited`` 429 and ``Retry-After``; no ``identity`` means the value is no credential
    of that kind (401 ``credential_invalid``); a 429 from the gateway itself is
    ``rate_limited``; 5xx, an unreadable body or an unexpected status is 503
    ``gateway_unavailable``: never a 401 that would tell a client its key is bad.
    """
    if status == 429:
        return Checked(None, RateLimitedError(retry_after=_seconds(retry_after, 1)))
    if status in _NOT_A_CREDENTIAL:
        return Checked(None, CredentialInvalidError(_unknown(kind)))
    if not 200 <= status < 300:
        return Checked(None, _unavailable(f"the gateway answered HTTP {status}"))
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return Checked(None, _unavailable("the gateway's answer is not a JSON object"))
    headers = _headers(answer.get("headers"))
    identity = answer.get("identity")
    if not isinstance(identity, dict) or not identity:
        return Checked(None, CredentialInvalidError(_unknown(kind)), headers)
    refused = _foreign(kind, identity, answer.get("metadata"), deployment_id, app_slugs, client_ids)
    if refused is not None:
        # Not the answer's headers: they describe another deployment's key and limits.
        _LOGGER.warning("wacht_auth: gateway answer refused: %s", refused)
        return Checked(None, CredentialInvalidError(_unknown(kind)))
    if answer.get("allowed") is not True:
        if answer.get("reason") == "rate_limited":
            wait = _seconds(answer.get("retry_after"), _seconds(retry_after, 1))
            return Checked(None, RateLimitedError(retry_after=wait), headers)
        return Checked(None, PermissionDeniedError(_denied(answer)), headers)
    permissions = answer.get("permissions")
    metadata = answer.get("metadata")
    limits = answer.get("rate_limits")
    credential = Credential(
        kind,
        identity,
        [p for p in permissions if isinstance(p, str)] if isinstance(permissions, list) else (),
        metadata if isinstance(metadata, dict) else _EMPTY,
        [r for r in limits if isinstance(r, dict)] if isinstance(limits, list) else (),
    )
    return Checked(credential, None, headers)


def _foreign(
    kind: CredentialKind,
    identity: Mapping[str, Any],
    metadata: object,
    deployment_id: str | int | None,
    app_slugs: Collection[str],
    client_ids: Collection[str],
) -> str | None:
    """Why an answer with an identity does not count here, or None when it does."""
    what = "API key" if kind == "api_key" else "OAuth access token"
    if deployment_id is not None:
        theirs = as_id(identity.get("deployment_id"))
        if theirs != str(deployment_id):
            return (
                f"the {what} belongs to deployment {shown(theirs)}, not to this app's "
                f"deployment {shown(str(deployment_id))}"
            )
    if kind == "api_key" and app_slugs:
        slug = identity.get("app_slug")
        if not isinstance(slug, str) or slug not in app_slugs:
            return f"the API key's app {shown(slug)} is not one of the accepted app slugs"
    if kind == "oauth_token" and client_ids:
        meta = metadata if isinstance(metadata, Mapping) else _EMPTY
        client = as_id(meta.get("client_id")) or as_id(identity.get("client_id"))
        if client is None or client not in client_ids:
            return f"the OAuth client {shown(client)} is not one of the accepted client ids"
    return None


def _unknown(kind: CredentialKind) -> str:
    what = "API key" if kind == "api_key" else "OAuth access token"
    return f"the bearer is not a valid {what} of this deployment"


def _denied(answer: Mapping[str, Any]) -> str:
    rule = answer.get("blocked_rule")
    suffix = f" (rule {rule[:64]!r})" if isinstance(rule, str) and rule else ""
    return "Wacht's gateway did not allow this request for the credential" + suffix


def _unavailable(detail: str) -> GatewayUnavailableError:
    _LOGGER.warning("wacht_auth: gateway check failed: %s", detail)
    return GatewayUnavailableError(f"Wacht's gateway could not check the credential: {detail}")


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        raise ConfigurationError(
            "accepting API keys or OAuth tokens needs httpx: pip install 'wacht-auth[gateway]'"
        ) from exc
    return httpx


class Gateway:
    """A client of Wacht's gateway, one per process (or per app): thread-safe and task-safe.

    Sync calls share one ``httpx.Client`` (a keep-alive connection pool); async calls share
    one ``httpx.AsyncClient`` per event loop, so they never block the loop and a pool is never
    used across loops. ``timeout`` bounds each call: connect, send and each read in the sync
    shell, the whole call in the async one.

    Args:
        url: the gateway's origin (``https://gateway.wacht.dev``).
        timeout: seconds a check may take.
        deployment_id: this app's Wacht deployment; an answer about a credential of another
            deployment is ``credential_invalid``. The request layer must pass it (Wacht's
            gateway resolves a key in any deployment); None accepts every deployment and
            logs a warning once, here.
        app_slugs: when given, API keys only of these API Auth apps.
        client_ids: when given, OAuth access tokens only of these OAuth clients.
        transport, async_transport: httpx transports, for tests (``httpx.MockTransport``).
        max_answer_bytes: the largest answer read; a bigger one is ``gateway_unavailable``.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5,
        deployment_id: str | int | None = None,
        app_slugs: Collection[str] = (),
        client_ids: Collection[str] = (),
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        httpx = _httpx()
        from . import __version__

        # Every check carries a live credential: https, or http to a loopback host only.
        self.url = _check_fetch_url(url.strip().rstrip("/"), "the gateway URL")
        self.timeout = timeout
        if isinstance(deployment_id, bool) or (
            deployment_id is not None and not str(deployment_id).strip()
        ):
            raise ConfigurationError(
                f"deployment_id must be the Wacht deployment id (WACHT_DEPLOYMENT_ID), "
                f"got {deployment_id!r}"
            )
        self.deployment_id = None if deployment_id is None else str(deployment_id).strip()
        if self.deployment_id is None:
            _LOGGER.warning(
                "wacht_auth: the gateway client has no deployment_id: it accepts API keys and "
                "OAuth tokens of every Wacht deployment (set WACHT_DEPLOYMENT_ID)"
            )
        self.app_slugs = frozenset(strings(app_slugs, "app_slugs"))
        self.client_ids = frozenset(strings(client_ids, "client_ids"))
        self.max_answer_bytes = max_answer_bytes
        self._endpoint = f"{self.url}/v1/authz/check"
        self._options: dict[str, Any] = {
            "timeout": httpx.Timeout(timeout),
            "follow_redirects": False,
            "headers": {"User-Agent": f"wacht-auth-python/{__version__}"},
            "limits": httpx.Limits(max_keepalive_connections=32, keepalive_expiry=60),
        }
        from ._http_deadline import DEADLINE, DeadlineTransport

        # One deadline for the whole sync call, as asyncio.timeout gives the async one: the
        # default pool's sockets end every operation by it (_http_deadline explains why).
        self._deadline = DEADLINE
        if transport is None:
            transport = DeadlineTransport(max_keepalive_connections=32, keepalive_expiry=60)
        self._client = httpx.Client(transport=transport, **self._options)
        # Pooled keep-alive sockets are closed when the gateway client goes, not left to the
        # garbage collector (a ResourceWarning each, once a test's fake gateway stops).
        self._finalizer = weakref.finalize(self, self._client.close)
        self._async_transport = async_transport
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"Gateway({self.url!r})"

    def check(
        self,
        kind: CredentialKind,
        value: str,
        *,
        resource: str,
        method: str,
        client_ip: str | None = None,
        user_agent: str | None = None,
        required_permissions: Collection[str] = (),
    ) -> Checked:
        """Ask the gateway about ``value``; blocks the calling thread for one round trip."""
        body = _request(kind, value, resource, method, client_ip, user_agent, required_permissions)
        cap = self.max_answer_bytes
        deadline = self._deadline.set(time.monotonic() + self.timeout)
        try:
            with self._client.stream(
                "POST", self._endpoint, content=body, headers=_JSON
            ) as response:
                content = bytearray()
                for chunk in response.iter_bytes():
                    content += chunk
                    if len(content) > cap:
                        return Checked(None, _unavailable(f"the answer is over {cap} bytes"))
        except Exception as exc:  # httpx's errors, and anything a transport raises
            return Checked(None, _unavailable(type(exc).__name__))
        finally:
            self._deadline.reset(deadline)
        return self._judge(kind, response, bytes(content))

    async def acheck(
        self,
        kind: CredentialKind,
        value: str,
        *,
        resource: str,
        method: str,
        client_ip: str | None = None,
        user_agent: str | None = None,
        required_permissions: Collection[str] = (),
    ) -> Checked:
        """:meth:`check` for asyncio: the loop is never blocked; ``timeout`` bounds the call."""
        body = _request(kind, value, resource, method, client_ip, user_agent, required_permissions)
        client = await self._aclient()
        try:
            if _TIMEOUT is not None:  # Python 3.11+: a deadline without a new task
                async with _TIMEOUT(self.timeout):
                    response, content = await self._apost(client, body)
            else:  # pragma: no cover - Python 3.10
                response, content = await asyncio.wait_for(self._apost(client, body), self.timeout)
        except Exception as exc:  # a timeout, httpx's errors, anything a transport raises
            return Checked(None, _unavailable(type(exc).__name__))
        if content is None:
            return Checked(None, _unavailable(f"the answer is over {self.max_answer_bytes} bytes"))
        return self._judge(kind, response, content)

    async def _apost(self, client: Any, body: bytes) -> tuple[Any, bytes | None]:
        """POST ``body``; the answer read up to the cap (None: over it)."""
        cap = self.max_answer_bytes
        async with client.stream("POST", self._endpoint, content=body, headers=_JSON) as response:
            content = bytearray()
            async for chunk in response.aiter_bytes():
                content += chunk
                if len(content) > cap:
                    return response, None
        return response, bytes(content)

    def _judge(self, kind: CredentialKind, response: Any, content: bytes) -> Checked:
        return judge(
            kind,
            response.status_code,
            content,
            response.headers.get("retry-after"),
            deployment_id=self.deployment_id,
            app_slugs=self.app_slugs,
            client_ids=self.client_ids,
        )

    async def _aclient(self) -> Any:
        loop = asyncio.get_running_loop()
        entry = self._aclients.get(loop)
        if entry is None:
            client = _httpx().AsyncClient(transport=self._async_transport, **self._options)
            closer = _closer(client)
            entry = self._aclients[loop] = (client, closer)
            # A started async generator is tracked by its loop: asyncio.run's
            # shutdown_asyncgens() (or the generator's finalizer, when this gateway goes
            # first) closes it, and with it this loop's pool, on the loop, before it closes.
            await closer.__anext__()
        return entry[0]

    def close(self) -> None:
        """Close the sync connection pool (async pools close with their event loop)."""
        self._finalizer()


async def _closer(client: Any) -> AsyncIterator[None]:
    """Holds ``client`` open until its event loop shuts its async generators down."""
    try:
        yield
    finally:
        await client.aclose()


_JSON = {"Content-Type": "application/json", "Accept": "application/json"}
_TIMEOUT = getattr(asyncio, "timeout", None)


def _request(
    kind: CredentialKind,
    value: str,
    resource: str,
    method: str,
    client_ip: str | None,
    user_agent: str | None,
    required_permissions: Collection[str],
) -> bytes:
    """The check's JSON body (Wacht's authz check); optional members only when known."""
    body: dict[str, Any] = {
        "principal": {"type": _PRINCIPAL[kind], "value": value},
        "resource": resource,
        "method": method,
    }
    if client_ip:
        body["client_ip"] = client_ip
    if user_agent:
        body["user_agent"] = user_agent
    if required_permissions:
        body["required_permissions"] = list(required_permissions)
    return json.dumps(body, separators=(",", ":")).encode()
