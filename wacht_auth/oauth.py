"""OAuth JWT access tokens, verified locally against the OAuth app's keys.

Wacht's OAuth server issues access tokens in two formats. The default one is opaque
(``oat_…``) and only Wacht's gateway can judge it (:mod:`wacht_auth.gateway`). A client set
to the JWT format gets RS256 JWTs instead, which the gateway does not know: a resource server
verifies them itself against the OAuth app's JWK Set, as Wacht's docs advise. That is what
:class:`OAuthVerifier` does, with the very machinery that verifies session tokens (strict
parsing, the key cache with its single flight, cooldown, deadline, stale-while-revalidate and
stale-if-error, the verified-token cache): it is a :class:`~wacht_auth.verifier` core whose
verified tokens become a :class:`~wacht_auth.gateway.Credential`, the same shape the gateway
gives an opaque token (``token_format`` tells them apart).

An access token as Wacht's OAuth server makes it (``docs/architecture.md``): header
``{"typ": "JWT", "alg": "RS256", "kid": "oas-<app id>-<id>"}``; claims ``iss``, ``sub`` (the
user who consented), ``aud`` (one string: the granted resource, ``urn:wacht:organization:<id>``
/ ``urn:wacht:workspace:<id>`` / ``urn:wacht:user:<id>``, else the client id), ``exp``,
``iat``, ``jti``, ``client_id`` (``oc_…``), ``scope`` (space-separated), ``sid`` (optional)
and ``token_use: "access_token"``. The id_token is signed with the same keys but has no
``token_use``: sent as a bearer it is refused (``token_use_invalid``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import Config, EventHandler
from .credentials import Credential, resource_scope
from .errors import (
    ClaimsInvalidError,
    ConfigurationError,
    PartyNotAuthorizedError,
    TokenMalformedError,
    TokenUseInvalidError,
)
from .tokens import ParsedToken, check_claims, peek_issuer
from .verifier import _BaseVerifier, _Deployment

__all__ = ["OAUTH_ALGORITHMS", "OAuthIssuer", "OAuthVerifier"]

#: Wacht's OAuth server signs access tokens with RSA-2048 keys, RS256 only.
OAUTH_ALGORITHMS: tuple[str, ...] = ("RS256",)
_TOKEN_USE = "access_token"


def _names(value: str | Collection[str] | None, setting: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else tuple(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise ConfigurationError(f"{setting} must be non-empty strings, got {item!r}")
    return items


@dataclass(frozen=True, kw_only=True)
class OAuthIssuer:
    """One Wacht OAuth server whose JWT access tokens this app accepts; validated, frozen.

    Attributes:
        issuer: the exact ``iss`` of its tokens: the OAuth server's origin (``https://<oauth
            host>``; the ``issuer`` of its ``/.well-known/openid-configuration``). https, or
            http for loopback hosts only.
        jwks_url: its signing keys; defaults to ``{issuer}/.well-known/jwks.json``.
        audiences: when given, a token's ``aud`` (the granted resource) must be one of them.
        client_ids: when given, a token's ``client_id`` must be one of them.
        leeway: clock skew tolerated on ``exp``/``iat``, seconds (0 to 300).
        max_token_bytes: tokens longer than this are refused before decoding.
        jwks_max_age, jwks_cooldown, jwks_timeout, jwks_stale_if_error, jwks_max_bytes: the
            key cache, as for a deployment's :class:`~wacht_auth.Config`.
        token_cache_size: verified tokens remembered (0 turns the cache off).
        clock: returns POSIX seconds; drives every time decision.
        on_event: optional callback receiving observability events.

    Raises:
        ConfigurationError: a value is invalid; the message names it.
    """

    issuer: str
    jwks_url: str | None = None
    audiences: tuple[str, ...] = ()
    client_ids: tuple[str, ...] = ()
    leeway: float = 5
    max_token_bytes: int = 8192
    jwks_max_age: float = 600
    jwks_cooldown: float = 30
    jwks_timeout: float = 5
    jwks_stale_if_error: float = 3600
    jwks_max_bytes: int = 1 << 20
    token_cache_size: int = 4096
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    on_event: EventHandler | None = field(default=None, repr=False, compare=False)
    # The deployment-shaped settings the shared verifier core and key cache run on.
    config: Config = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.issuer, str) or not self.issuer.strip():
            raise ConfigurationError(
                "an OAuth issuer must be the origin of the Wacht OAuth server "
                f"(https://<host>), got {self.issuer!r}"
            )
        set_(self, "audiences", _names(self.audiences, "audiences"))
        set_(self, "client_ids", _names(self.client_ids, "client_ids"))
        # Config checks the issuer (an https origin, http for loopback only, compared
        # exactly with iss), the key URL and every number; its messages name the setting.
        config = Config(
            issuer=self.issuer,
            jwks_url=self.jwks_url or f"{self.issuer}/.well-known/jwks.json",
            algorithms=OAUTH_ALGORITHMS,
            audience=self.audiences,
            leeway=self.leeway,
            max_token_bytes=self.max_token_bytes,
            jwks_max_age=self.jwks_max_age,
            jwks_cooldown=self.jwks_cooldown,
            jwks_timeout=self.jwks_timeout,
            jwks_stale_if_error=self.jwks_stale_if_error,
            jwks_max_bytes=self.jwks_max_bytes,
            token_cache_size=self.token_cache_size,
            read_cookies=False,
            clock=self.clock,
            on_event=self.on_event,
        )
        set_(self, "jwks_url", config.jwks_url)
        set_(self, "config", config)

    @classmethod
    def for_deployment(cls, config: Config, issuer: str, **options: Any) -> OAuthIssuer:
        """An OAuth issuer sharing a deployment's clock, events, leeway and key-cache
        settings (``options`` win): what the request layer builds from its settings."""
        shared: dict[str, Any] = {
            name: getattr(config, name)
            for name in (
                "leeway",
                "max_token_bytes",
                "jwks_max_age",
                "jwks_cooldown",
                "jwks_timeout",
                "jwks_stale_if_error",
                "jwks_max_bytes",
                "token_cache_size",
                "clock",
                "on_event",
            )
        }
        shared.update(options)
        return cls(issuer=issuer, **shared)


class OAuthVerifier(_BaseVerifier[Credential]):
    """Verifies Wacht OAuth JWT access tokens locally; one instance serves a whole process.

    Thread-safe and task-safe, with the methods of :class:`~wacht_auth.Verifier`:
    :meth:`verify` (may block on a key fetch), :meth:`averify` (fetches in a worker thread),
    :meth:`cached` (the token cache's answer, no I/O), and ``prefetch``/``refresh``/
    ``invalidate`` for operators. A verified token is a
    :class:`~wacht_auth.gateway.Credential` with ``token_type="oauth_token"`` and
    ``token_format="jwt"``.

    The rules: RS256 only; ``kid`` required (an unknown one earns one key refresh per
    cooldown: Wacht signs with a new key as soon as it rotates); ``iss`` exactly a configured
    issuer (with several, the token's ``iss`` picks one, unknown ones are ``issuer_invalid``
    without any fetch); ``exp`` required; ``token_use`` must be ``"access_token"``
    (``token_use_invalid``); ``sub`` and ``client_id`` non-empty strings and ``scope`` a
    string (``claims_invalid``); the ``audiences`` allow-list (``audience_invalid``) and the
    ``client_ids`` one (``party_not_authorized``).

    Args:
        issuers: one :class:`OAuthIssuer` (or its URL), or several.

    Raises:
        ConfigurationError: none given, a bad one, or one issuer twice.
    """

    def __init__(self, issuers: OAuthIssuer | str | Sequence[OAuthIssuer | str]) -> None:
        given = (issuers,) if isinstance(issuers, (OAuthIssuer, str)) else tuple(issuers)
        if not given:
            raise ConfigurationError("OAuthVerifier needs at least one OAuth issuer")
        items: list[OAuthIssuer] = []
        for item in given:
            if isinstance(item, str):
                item = OAuthIssuer(issuer=item)
            elif not isinstance(item, OAuthIssuer):
                raise ConfigurationError(
                    f"OAuthVerifier takes OAuthIssuer objects or issuer URLs, got "
                    f"{type(item).__name__}"
                )
            items.append(item)
        self._issuers: tuple[OAuthIssuer, ...] = tuple(items)
        super().__init__([item.config for item in items])
        self._by_issuer = {item.config.issuer: item for item in items}

    @property
    def issuers(self) -> tuple[OAuthIssuer, ...]:
        """The trusted OAuth issuers, in the order given."""
        return self._issuers

    def trusts(self, token: str) -> bool:
        """Whether ``token``'s (unverified) ``iss`` is one of the OAuth issuers: for routing
        a bearer here rather than elsewhere. Reads, never verifies; never raises."""
        iss = peek_issuer(token)
        return iss is not None and iss in self._by_issuer

    # The shared core's hooks; no I/O.

    def _open(self, token: object) -> tuple[_Deployment, ParsedToken, int]:
        opened = super()._open(token)
        if opened[1].kid is None:
            # Wacht's OAuth server always names its key; a kid-less token is not one of its.
            raise TokenMalformedError("an OAuth access token must name its key (kid)")
        return opened

    def _session(self, config: Config, parsed: ParsedToken) -> Credential:
        claims = parsed.claims
        # Before any other claim: an id_token is signed with the same keys, and the clearest
        # answer for one sent as a bearer is that it is not an access token.
        if claims.get("token_use") != _TOKEN_USE:
            raise TokenUseInvalidError(
                "the token is not an OAuth access token (token_use must be 'access_token'; "
                "an id_token is not a bearer credential)"
            )
        issuer = self._by_issuer[config.issuer or ""]
        check_claims(
            claims,
            issuer=config.issuer or "",
            now=config.clock(),
            leeway=config.leeway,
            audience=issuer.audiences,
        )
        client_id = claims.get("client_id")
        if type(client_id) is not str or not client_id:
            raise ClaimsInvalidError("the token client_id claim must be a non-empty string")
        if issuer.client_ids and client_id not in issuer.client_ids:
            raise PartyNotAuthorizedError("the token's OAuth client is not accepted here")
        scope = claims.get("scope", "")
        if type(scope) is not str:
            raise ClaimsInvalidError("the token scope claim must be a space-separated string")
        aud = claims.get("aud")
        resource = aud if type(aud) is str else None
        organization_id, workspace_id, _ = resource_scope(resource)
        identity: dict[str, Any] = {"owner_user_id": claims["sub"], "client_id": client_id}
        jti = claims.get("jti")
        if type(jti) is str and jti:
            identity["key_id"] = jti
        if organization_id is not None:
            identity["organization_id"] = organization_id
        if workspace_id is not None:
            identity["workspace_id"] = workspace_id
        scopes = tuple(scope.split())  # RFC 6749 §3.3: space-delimited
        metadata: dict[str, Any] = {
            "scopes": scopes,
            "client_id": client_id,
            "expires_at": claims["exp"],
        }
        if resource is not None:
            metadata["resource"] = resource
        sid = claims.get("sid")
        if sid is not None:
            metadata["session_id"] = sid  # a string or an integer (check_claims)
        return Credential._verified_jwt(identity, metadata, scopes, claims)
