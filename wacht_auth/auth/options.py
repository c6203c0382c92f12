"""The request layer's options, and the one constructor every adapter builds its layer with.

:class:`Options` documents each option once; every adapter (``WachtMiddleware``, FastAPI's
``install``, Flask's ``Wacht``, Django's settings) takes the same names. :func:`configure`
reads the settings (the environment, Django's ``settings.WACHT_AUTH`` or Flask's
``app.config``, through :class:`~wacht_auth.settings.Settings`), lets options given in code win,
and builds the :class:`~wacht_auth.auth.decide.Authenticator`. :func:`_oauth_verifier` and
:func:`_credential_gateway` build what the credential settings describe (the OAuth verifier,
the gateway client bound to the deployment) and refuse a set-up that could not check safely.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypedDict, cast

from ..config import Config
from ..errors import ConfigurationError
from ..gateway import CredentialKind, Gateway
from ..settings import Settings

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..oauth import OAuthVerifier
    from ..proxies import TrustedProxies
    from ..verifier import Verifier
    from .decide import Authenticator

__all__ = ["Options", "Paths", "configure"]


class Options(TypedDict, total=False):
    """The request layer's options, the same in every adapter; each is also a setting
    (``WACHT_PROTECT_ALL``, ``settings.WACHT_AUTH["protect_all"]``,
    ``app.config["WACHT_PROTECT_ALL"]`` …). Given in code they win over the settings, except
    ``public_paths`` and ``page_paths``, which add to them.

    Attributes:
        protect_all: require a signed-in caller on every route except ``public_paths``, routes
            the adapter marks public (``@public``) and CORS preflights.
        public_paths: paths open under ``protect_all`` (:class:`Paths` syntax).
        page_paths: paths served as pages (:class:`Paths` syntax): under ``protect_all`` an
            anonymous visitor there is redirected to sign in instead of getting a 401.
        prefetch: fetch the signing keys when the app starts.
        accept: the credential kinds authenticated: ``"session_token"`` (verified locally),
            ``"api_key"`` and ``"oauth_token"`` (checked by Wacht's gateway, one call per
            request). Default: session tokens only; nothing reaches the gateway unless asked.
        trusted_proxies: the proxies in front of the app (a number of hops, or addresses and
            CIDRs): only then are ``X-Forwarded-*`` headers read (and the client IP the
            gateway and the session exchange are told is the one they forwarded).
        oauth_issuers: the Wacht OAuth servers (``https://<oauth host>``, the ``issuer`` of
            their ``/.well-known/openid-configuration``) whose JWT access tokens are verified
            here, against ``{issuer}/.well-known/jwks.json``, with the deployment's clock,
            leeway and key-cache settings.
        oauth_audiences: when given, an OAuth token's granted resource (a JWT's ``aud``, the
            gateway's ``metadata.resource``) must be one of these (``audience_invalid``).
        oauth_client_ids: when given, OAuth tokens only of these OAuth clients (``oc_…``),
            both formats.
        api_auth_apps: when given, API keys only of these API Auth apps (their slugs).

    Accepting ``api_key`` (or ``oauth_token`` without ``oauth_issuers``) needs the config's
    ``deployment_id`` (``WACHT_DEPLOYMENT_ID``): Wacht's gateway resolves a credential of any
    deployment, so its answer counts only for this one.
    """

    protect_all: bool | None
    public_paths: Iterable[str]
    page_paths: Iterable[str]
    prefetch: bool | None
    accept: Iterable[str] | None
    trusted_proxies: TrustedProxies | int | str | Iterable[str] | None
    oauth_issuers: str | Iterable[str] | None
    oauth_audiences: str | Iterable[str] | None
    oauth_client_ids: str | Iterable[str] | None
    api_auth_apps: str | Iterable[str] | None


#: The names of :class:`Options`, in the order settings list them.
_OPTION_NAMES = (
    "accept",
    "protect_all",
    "public_paths",
    "prefetch",
    "page_paths",
    "trusted_proxies",
    "oauth_issuers",
    "oauth_audiences",
    "oauth_client_ids",
    "api_auth_apps",
)
_ADDED = ("public_paths", "page_paths")  # code adds to the setting instead of replacing it


class Paths:
    """A set of paths: ``public_paths`` and ``page_paths`` share this one syntax.

    An entry is an exact path (``"/health"``), or a prefix ending in ``*``: ``"/docs/*"``
    matches ``/docs`` and every path below it (``/docs/a/b``), never ``/docsx``;
    ``"/docs*"`` matches any path that starts with ``/docs``. ``"/*"`` matches every path.
    """

    __slots__ = ("_entries", "_exact", "_prefixes")

    def __init__(self, paths: Iterable[str] = (), *, setting: str = "paths") -> None:
        items = self._entries = (paths,) if isinstance(paths, str) else tuple(paths)
        for item in items:
            if not isinstance(item, str) or not item.startswith("/"):
                raise ConfigurationError(f"{setting} entries must start with '/': {item!r}")
        exact = {p for p in items if not p.endswith("*")}
        # "/docs/*" also covers "/docs" itself: the folder as well as what is in it.
        exact |= {p[:-2] or "/" for p in items if p.endswith("/*")}
        self._exact = frozenset(exact)
        self._prefixes = tuple(p[:-1] for p in items if p.endswith("*"))

    @classmethod
    def of(cls, paths: Iterable[str] | Paths, setting: str) -> Paths:
        """``paths`` as :class:`Paths` (as it is, when it is one)."""
        return paths if isinstance(paths, Paths) else cls(paths, setting=setting)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and (
            path in self._exact or any(path.startswith(p) for p in self._prefixes)
        )

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __repr__(self) -> str:
        return f"Paths({list(self._entries)!r})"


def configure(
    source: Mapping[str, Any] | None = None,
    *,
    where: str = "the environment",
    prefixed: bool = False,
    env: bool | None = None,
    verifier: Verifier | None = None,
    config: Config | None = None,
    **options: Unpack[Options],
) -> Authenticator:
    """The request layer an adapter runs: settings read once, at start-up.

    Args:
        source: settings named as :data:`~wacht_auth.settings.SETTINGS` does (Django's
            ``settings.WACHT_AUTH``), or with ``prefixed`` as ``WACHT_<NAME>`` among other keys
            (Flask's ``app.config``); ``where`` names it in messages.
        env: read the environment (``WACHT_<NAME>``) under ``source``; by default, unless a
            ``verifier`` or ``config`` is given in code (then the code says it all).
        verifier: a ready verifier (else one is built from the settings, or ``config``).
        config: a ready :class:`~wacht_auth.Config` for the verifier.
        options: :class:`Options` given in code.

    Raises:
        ConfigurationError: a setting is unknown, missing or invalid; the message names it as
            the user spelled it.
    """
    from ..verifier import Verifier
    from .decide import Authenticator

    if env is None:
        env = verifier is None and config is None
    settings = Settings.load(
        source, prefixed=prefixed, where=where, env=None if env else {}, config=config
    )
    verifier = verifier or settings.option("verifier") or Verifier(settings.build_config())
    chosen: dict[str, Any] = {}
    for name in _OPTION_NAMES:
        value, given = settings.option(name), cast("Any", options.get(name))
        if name in _ADDED:
            value = (*(value or ()), *(given or ()))
        elif given is not None:
            value = given
        if value is not None:
            chosen[name] = value
    # A layer set up in code alone (a Config or verifier, no settings read) names a missing
    # setting by its name; otherwise as its source spells it.
    spell = settings.spell if env or source is not None else str
    return Authenticator(verifier, spell=spell, **chosen)


def _spell_env(name: str) -> str:
    """A setting in messages, for a layer built in code: its name and its variable."""
    return f"{name} (WACHT_{name.upper()})"


def _texts(value: object, spell: Callable[[str], str], name: str) -> tuple[str, ...]:
    """A list option: strings (one string is one item), each non-empty."""
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else tuple(cast("Iterable[object]", value))
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigurationError(f"{spell(name)} must be non-empty strings, got {item!r}")
    return tuple(cast("str", item).strip() for item in items)


def _oauth_verifier(
    config: Config, options: Options, spell: Callable[[str], str]
) -> OAuthVerifier | None:
    """The verifier of the JWT access tokens of ``options["oauth_issuers"]`` (with the
    ``oauth_audiences`` and ``oauth_client_ids`` allow-lists), sharing ``config``'s clock,
    leeway and key-cache settings; None without issuers. ``spell`` names a setting in
    messages."""
    issuers = _texts(options.get("oauth_issuers"), spell, "oauth_issuers")
    if not issuers:
        return None
    from ..oauth import OAuthIssuer, OAuthVerifier

    audiences = _texts(options.get("oauth_audiences"), spell, "oauth_audiences")
    client_ids = _texts(options.get("oauth_client_ids"), spell, "oauth_client_ids")
    try:
        return OAuthVerifier(
            [
                OAuthIssuer.for_deployment(
                    config, url.rstrip("/"), audiences=audiences, client_ids=client_ids
                )
                for url in issuers
            ]
        )
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"{spell('oauth_issuers')} must list the origins of Wacht OAuth servers (the "
            f"issuer of their /.well-known/openid-configuration): {exc.message}"
        ) from None


def _credential_gateway(
    config: Config,
    accept: tuple[CredentialKind, ...],
    oauth: OAuthVerifier | None,
    options: Options,
    spell: Callable[[str], str],
) -> Gateway | None:
    """The gateway client for the kinds in ``accept`` it checks, bound to ``config``'s
    deployment with the ``api_auth_apps`` and ``oauth_client_ids`` allow-lists; None when
    nothing needs it (or only OAuth JWTs, verified by ``oauth``, can be checked).

    Raises:
        ConfigurationError: API keys (or OAuth tokens without ``oauth``) accepted without
            ``deployment_id``: Wacht's gateway resolves a credential of any deployment.
    """
    if not set(accept) & {"api_key", "oauth_token"}:
        return None
    if config.deployment_id is None:
        # Wacht's gateway finds a key from the key alone, in any deployment: without the
        # deployment id, a key minted in anyone's deployment would open this app.
        if "api_key" in accept or oauth is None:
            what = "API keys" if "api_key" in accept else "OAuth access tokens"
            raise ConfigurationError(
                f"accepting {what} needs this app's Wacht deployment id: set "
                f"{spell('deployment_id')} (Wacht's gateway resolves a credential of any "
                "deployment)"
                + (
                    ""
                    if "api_key" in accept
                    else f", or {spell('oauth_issuers')} for JWT access tokens"
                )
            )
        return None  # OAuth JWTs only (checked here); opaque tokens are refused
    return Gateway(
        config.gateway_url,
        timeout=config.gateway_timeout,
        deployment_id=config.deployment_id,
        app_slugs=_texts(options.get("api_auth_apps"), spell, "api_auth_apps"),
        client_ids=_texts(options.get("oauth_client_ids"), spell, "oauth_client_ids"),
    )
