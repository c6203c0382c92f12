"""Wacht's gateway: API keys and OAuth access tokens, checked remotely (docs/api-keys.md).

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
import weakref
from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from .errors import (
    ConfigurationError,
    CredentialInvalidError,
    GatewayUnavailableError,
    PermissionDeniedError,
    RateLimitedError,
    TokenMissingError,
    WachtAuthError,
)
from .session import PermissionScope, freeze

if TYPE_CHECKING:
    import httpx

__all__ = ["CREDENTIAL_KINDS", "Checked", "Credential", "CredentialKind", "Gateway", "judge"]

#: What an app may accept: session tokens (verified locally) and the gateway's two kinds.
CredentialKind = Literal["session_token", "api_key", "oauth_token"]
CREDENTIAL_KINDS: tuple[CredentialKind, ...] = ("session_token", "api_key", "oauth_token")
# The gateway's name of each principal type.
_PRINCIPAL = {"api_key": "api_key", "oauth_token": "oauth_access_token"}
_LOGGER = logging.getLogger("wacht_auth")
_EMPTY: Mapping[str, Any] = MappingProxyType({})
# A header the gateway asks us to copy: a token name and a value without control characters
# (RFC 9110 §5.1, §5.5): anything else could split our response.
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}\Z")
_VALUE = re.compile(r"[\t\x20-\x7e]{0,512}\Z")
_MAX_HEADERS = 32
# Statuses meaning "the gateway does not know this value"; other 4xx mean our request was
# wrong, which the caller cannot fix: the gateway is then as good as unavailable.
_NOT_A_CREDENTIAL = frozenset({400, 401, 403, 404, 422})


def _id(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None


class Credential:
    """An API key or OAuth access token that Wacht's gateway accepted; read-only.

    It answers the same questions as a :class:`~wacht_auth.Session` where they make sense:
    ``user_id`` and ``session_id`` are None (a key acts for its owner, not as a signed-in user,
    as in Wacht's SDKs; ``owner_user_id`` says who owns it), permissions are the ones the
    gateway granted (not split by organization and workspace), and ``claims`` is empty.

    Attributes:
        token_type: ``"api_key"`` or ``"oauth_token"``.
        identity: the gateway's identity object (``key_id``, ``deployment_id``, ``app_slug``,
            ``key_name``, ``owner_user_id``, ``organization_id``, ``workspace_id``, membership
            ids), read-only.
        permissions: the permissions the gateway granted.
        scopes: OAuth scopes (``metadata["scopes"]``), empty for most API keys.
        metadata: the gateway's metadata object, read-only.
        rate_limits: the gateway's rate-limit states, read-only.
    """

    __slots__ = ("identity", "metadata", "permissions", "rate_limits", "scopes", "token_type")

    token_type: CredentialKind
    identity: Mapping[str, Any]
    permissions: tuple[str, ...]
    scopes: tuple[str, ...]
    metadata: Mapping[str, Any]
    rate_limits: tuple[Mapping[str, Any], ...]

    def __init__(
        self,
        token_type: CredentialKind,
        identity: Mapping[str, Any],
        permissions: Collection[str] = (),
        metadata: Mapping[str, Any] = _EMPTY,
        rate_limits: Collection[Mapping[str, Any]] = (),
    ) -> None:
        init = object.__setattr__
        init(self, "token_type", token_type)
        init(self, "identity", freeze(dict(identity)))
        init(self, "permissions", tuple(p for p in permissions if isinstance(p, str) and p))
        frozen_metadata = freeze(dict(metadata))
        init(self, "metadata", frozen_metadata)
        scopes = frozen_metadata.get("scopes")
        if isinstance(scopes, str):  # OAuth's space-separated form (RFC 6749 §3.3)
            scopes = tuple(scopes.split())
        init(self, "scopes", tuple(s for s in scopes or () if isinstance(s, str) and s))
        init(self, "rate_limits", freeze(list(rate_limits)))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Credential is read-only: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Credential is read-only: cannot delete {name!r}")

    def __repr__(self) -> str:  # never the credential's value: it is not even kept
        return f"Credential(token_type={self.token_type!r}, key_id={self.key_id!r})"

    user_id: None = None
    session_id: None = None

    @property
    def key_id(self) -> str | None:
        """The key's (or token's) id at Wacht."""
        return _id(self.identity.get("key_id"))

    @property
    def owner_user_id(self) -> str | None:
        """The user who owns the key, when it has one."""
        return _id(self.identity.get("owner_user_id"))

    @property
    def organization_id(self) -> str | None:
        """The organization the key belongs to, when it has one."""
        return _id(self.identity.get("organization_id"))

    @property
    def workspace_id(self) -> str | None:
        """The workspace the key belongs to, when it has one."""
        return _id(self.identity.get("workspace_id"))

    @property
    def organization_permissions(self) -> tuple[str, ...]:
        """Empty: a key's permissions are not split by organization and workspace."""
        return ()

    @property
    def workspace_permissions(self) -> tuple[str, ...]:
        """Empty: a key's permissions are not split by organization and workspace."""
        return ()

    @property
    def claims(self) -> Mapping[str, Any]:
        """Empty: a credential checked by the gateway carries no claims we could read."""
        return _EMPTY

    @property
    def token(self) -> None:
        """None: the credential's value is not kept."""
        return None

    def has_permission(self, permission: str, scope: PermissionScope | None = None) -> bool:
        """Whether the gateway granted ``permission`` (``scope`` does not apply to keys)."""
        return permission in self.permissions

    def forward_headers(self) -> dict[str, str]:
        """Refused: an API key or OAuth token does not act as a signed-in user."""
        raise TokenMissingError(
            "an API key or OAuth token cannot be forwarded as a user's session token"
        )


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
    kind: CredentialKind, status: int, body: bytes, retry_after: str | None = None
) -> Checked:
    """The verdict for one gateway answer (no I/O): the answers of docs/api-keys.md.

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
        transport, async_transport: httpx transports, for tests (``httpx.MockTransport``).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        httpx = _httpx()
        from . import __version__

        self.url = url.rstrip("/")
        self.timeout = timeout
        self._endpoint = f"{self.url}/v1/authz/check"
        self._options: dict[str, Any] = {
            "timeout": httpx.Timeout(timeout),
            "follow_redirects": False,
            "headers": {"User-Agent": f"wacht-auth-python/{__version__}"},
            "limits": httpx.Limits(max_keepalive_connections=32, keepalive_expiry=60),
        }
        self._client = httpx.Client(transport=transport, **self._options)
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
        try:
            response = self._client.post(self._endpoint, content=body, headers=_JSON)
        except Exception as exc:  # httpx's errors, and anything a transport raises
            return Checked(None, _unavailable(type(exc).__name__))
        return judge(
            kind, response.status_code, response.content, response.headers.get("retry-after")
        )

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
        client = self._aclient()
        try:
            if _TIMEOUT is not None:  # Python 3.11+: a deadline without a new task
                async with _TIMEOUT(self.timeout):
                    response = await client.post(self._endpoint, content=body, headers=_JSON)
            else:  # pragma: no cover - Python 3.10
                response = await asyncio.wait_for(
                    client.post(self._endpoint, content=body, headers=_JSON), self.timeout
                )
        except Exception as exc:  # a timeout, httpx's errors, anything a transport raises
            return Checked(None, _unavailable(type(exc).__name__))
        return judge(
            kind, response.status_code, response.content, response.headers.get("retry-after")
        )

    def _aclient(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            transport = self._async_transport
            client = _httpx().AsyncClient(transport=transport, **self._options)
            self._aclients[loop] = client
        return client

    def close(self) -> None:
        """Close the sync connection pool (async pools close with their event loop)."""
        self._client.close()


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
