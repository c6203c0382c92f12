"""The credential: who a caller is when it presented no session token.

A :class:`Credential` is what Wacht's gateway said of an API key or an opaque OAuth access
token (:mod:`wacht_auth.gateway`), or what a JWT OAuth access token verified locally says
(:mod:`wacht_auth.oauth`): the same shape for both formats, deeply read-only, so an app cannot
tell them apart except through ``token_format`` (docs/credentials.md).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any, Literal

from .errors import TokenMissingError
from .session import PermissionScope, freeze

__all__ = [
    "CREDENTIAL_KINDS",
    "Credential",
    "CredentialKind",
    "TokenFormat",
    "as_id",
    "resource_scope",
]

#: What an app may accept: session tokens (verified locally) and the gateway's two kinds.
CredentialKind = Literal["session_token", "api_key", "oauth_token"]
CREDENTIAL_KINDS: tuple[CredentialKind, ...] = ("session_token", "api_key", "oauth_token")
#: How a credential travels: an opaque value Wacht's gateway checks, or a JWT checked locally.
TokenFormat = Literal["opaque", "jwt"]
_EMPTY: Mapping[str, Any] = MappingProxyType({})
# The resource an OAuth grant names (Wacht's OAuth server: the access token's ``aud``).
_NO_SCOPE: tuple[None, None, None] = (None, None, None)
_URN = "urn:wacht:"


def resource_scope(resource: object) -> tuple[str | None, str | None, str | None]:
    """``(organization_id, workspace_id, user_id)`` named by an OAuth grant's resource
    (``urn:wacht:organization:<id>`` …); all None for another value (a client id).

    Runs for every fresh OAuth JWT: string methods, no regex (the fresh-token speed budget
    of docs/performance.md).
    """
    if type(resource) is not str or not resource.startswith(_URN):
        return _NO_SCOPE
    kind, sep, ident = resource[len(_URN) :].partition(":")
    if not sep or not 0 < len(ident) <= 64 or not (ident.isascii() and ident.isalnum()):
        return _NO_SCOPE
    if kind == "organization":
        return ident, None, None
    if kind == "workspace":
        return None, ident, None
    if kind == "user":
        return None, None, ident
    return _NO_SCOPE


def as_id(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None


class Credential:
    """An API key or OAuth access token that was accepted; read-only.

    API keys and opaque OAuth tokens are judged by Wacht's gateway; OAuth JWT access tokens
    are verified locally (:class:`~wacht_auth.oauth.OAuthVerifier`) and give the very same
    shape, so an app tells the two OAuth formats apart only by ``token_format``.

    It answers the same questions as a :class:`~wacht_auth.Session` where they make sense. An
    API key acts for its owner, not as a signed-in user (as in Wacht's SDKs): its ``user_id``
    and ``session_id`` are None and ``owner_user_id`` says who owns it. An OAuth token acts for
    the user who consented: ``user_id`` is that user, ``session_id`` their session when the
    grant names one. Permissions are not split by organization and workspace. An OAuth
    token's permissions are its granted scopes, in both formats (``docs/decisions.md``).

    Attributes:
        token_type: ``"api_key"`` or ``"oauth_token"``.
        token_format: ``"opaque"`` (checked by the gateway) or ``"jwt"`` (verified locally).
        identity: the identity object (``key_id``, ``deployment_id``, ``app_slug``,
            ``key_name``, ``owner_user_id``, ``organization_id``, ``workspace_id``, membership
            ids), read-only; for a JWT, built from its claims.
        permissions: what ``has_permission`` checks: the gateway's permissions for an API
            key, the granted scopes for an OAuth token.
        scopes: OAuth scopes (``metadata["scopes"]``, a JWT's ``scope``), empty for API keys.
        metadata: the gateway's metadata object (for a JWT: ``scopes``, ``resource``,
            ``client_id``, ``session_id``, ``expires_at``), read-only.
        rate_limits: the gateway's rate-limit states, read-only (empty for a JWT).
    """

    # _claims: a JWT's verified claims (empty for the gateway's answers).
    # _state: the request layer's memo of its state for this credential (a verified JWT is
    # shared by every request that carries it, through the verifier's token cache).
    __slots__ = (
        "__weakref__",
        "_claims",
        "_state",
        "identity",
        "metadata",
        "permissions",
        "rate_limits",
        "scopes",
        "token_format",
        "token_type",
    )

    token_type: CredentialKind
    token_format: TokenFormat
    identity: Mapping[str, Any]
    permissions: tuple[str, ...]
    scopes: tuple[str, ...]
    metadata: Mapping[str, Any]
    rate_limits: tuple[Mapping[str, Any], ...]
    _claims: Mapping[str, Any]
    _state: object

    def __init__(
        self,
        token_type: CredentialKind,
        identity: Mapping[str, Any],
        permissions: Collection[str] = (),
        metadata: Mapping[str, Any] = _EMPTY,
        rate_limits: Collection[Mapping[str, Any]] = (),
        *,
        token_format: TokenFormat = "opaque",
        claims: Mapping[str, Any] = _EMPTY,
    ) -> None:
        init = object.__setattr__
        init(self, "token_type", token_type)
        init(self, "token_format", token_format)
        init(self, "identity", freeze(dict(identity)))
        frozen_metadata = freeze(dict(metadata))
        init(self, "metadata", frozen_metadata)
        scopes = frozen_metadata.get("scopes")
        if isinstance(scopes, str):  # OAuth's space-separated form (RFC 6749 §3.3)
            scopes = tuple(scopes.split())
        init(self, "scopes", tuple(s for s in scopes or () if isinstance(s, str) and s))
        if token_type == "oauth_token":
            # An OAuth token may do what its grant's scopes say, whichever its format
            # (docs/decisions.md): the same require_permission answer for opaque and JWT.
            permissions = self.scopes
        init(self, "permissions", tuple(p for p in permissions if isinstance(p, str) and p))
        init(self, "rate_limits", freeze(list(rate_limits)))
        init(self, "_claims", freeze(dict(claims)) if claims else _EMPTY)
        init(self, "_state", None)

    @classmethod
    def _verified_jwt(
        cls,
        identity: dict[str, Any],
        metadata: dict[str, Any],
        scopes: tuple[str, ...],
        claims: dict[str, Any],
    ) -> Credential:
        """An OAuth JWT access token's credential, built by the OAuth verifier on every fresh
        token (the fresh-token speed budget): ``identity`` and ``metadata`` hold only strings,
        numbers and tuples (nothing to freeze), ``scopes`` are split already, and ``claims``
        is the verifier's own freshly parsed dict, which this takes over (its containers are
        frozen in place, no copy)."""
        self = cls.__new__(cls)
        init = object.__setattr__
        init(self, "token_type", "oauth_token")
        init(self, "token_format", "jwt")
        init(self, "identity", MappingProxyType(identity))
        init(self, "metadata", MappingProxyType(metadata))
        init(self, "scopes", scopes)
        init(self, "permissions", scopes)
        init(self, "rate_limits", ())
        for name, value in claims.items():
            if type(value) is dict or type(value) is list:
                claims[name] = freeze(value)  # replacing a value: safe while iterating
        init(self, "_claims", MappingProxyType(claims))
        init(self, "_state", None)
        return self

    def __setattr__(self, name: str, value: object) -> None:
        if name == "_state":  # the request layer's memo, like Session._state
            object.__setattr__(self, name, value)
            return
        raise AttributeError(f"Credential is read-only: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Credential is read-only: cannot delete {name!r}")

    def __repr__(self) -> str:  # never the credential's value: it is not even kept
        return (
            f"Credential(token_type={self.token_type!r}, token_format={self.token_format!r}, "
            f"key_id={self.key_id!r})"
        )

    def _meta(self, *names: str) -> str | None:
        """The first of ``names`` that the metadata, then the identity, holds as an id."""
        for source in (self.metadata, self.identity):
            for name in names:
                value = as_id(source.get(name))
                if value is not None:
                    return value
        return None

    @property
    def user_id(self) -> str | None:
        """The user who consented to an OAuth grant; None for an API key."""
        if self.token_type != "oauth_token":
            return None
        return self.owner_user_id or resource_scope(self.resource)[2]

    @property
    def session_id(self) -> str | None:
        """The consenting user's session an OAuth grant names (``sid``), when it names one."""
        if self.token_type != "oauth_token":
            return None
        return self._meta("session_id", "sid")

    @property
    def client_id(self) -> str | None:
        """The OAuth client (``oc_…``) a token was issued to; None for an API key."""
        return self._meta("client_id") if self.token_type == "oauth_token" else None

    @property
    def resource(self) -> str | None:
        """The resource an OAuth grant names (``urn:wacht:organization:<id>`` …, or the
        client id), None for an API key."""
        return self._meta("resource") if self.token_type == "oauth_token" else None

    @property
    def key_id(self) -> str | None:
        """The key's (or token's) id at Wacht."""
        return as_id(self.identity.get("key_id"))

    @property
    def owner_user_id(self) -> str | None:
        """The user who owns the key, when it has one."""
        return as_id(self.identity.get("owner_user_id"))

    @property
    def organization_id(self) -> str | None:
        """The organization the key belongs to (or an OAuth grant's resource names)."""
        return as_id(self.identity.get("organization_id")) or resource_scope(self.resource)[0]

    @property
    def workspace_id(self) -> str | None:
        """The workspace the key belongs to (or an OAuth grant's resource names)."""
        return as_id(self.identity.get("workspace_id")) or resource_scope(self.resource)[1]

    @property
    def deployment_id(self) -> str | None:
        """The Wacht deployment the gateway says the credential belongs to."""
        return as_id(self.identity.get("deployment_id"))

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
        """A JWT access token's verified claims; empty for what the gateway checked."""
        return self._claims

    def has_scope(self, scope: str) -> bool:
        """Whether an OAuth grant includes ``scope`` (always False for an API key)."""
        return scope in self.scopes

    @property
    def token(self) -> None:
        """None: the credential's value is not kept."""
        return None

    def has_permission(self, permission: str, scope: PermissionScope | None = None) -> bool:
        """Whether ``permission`` is granted: by the gateway for an API key, as a scope of
        the grant for an OAuth token (``scope`` does not apply to either)."""
        return permission in self.permissions

    def forward_headers(self) -> dict[str, str]:
        """Refused: an API key or OAuth token does not act as a signed-in user."""
        raise TokenMissingError(
            "an API key or OAuth token cannot be forwarded as a user's session token"
        )
