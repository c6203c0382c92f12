"""The request layer's options, and the one constructor every adapter builds its layer with.

:class:`Options` documents each option once; every adapter (``WachtMiddleware``, FastAPI's
``install``, Flask's ``Wacht``, Django's settings) takes the same names. :func:`configure`
reads the settings (the environment, Django's ``settings.WACHT_AUTH`` or Flask's
``app.config``, through :class:`~wacht_auth.config.Settings`), lets options given in code win,
and builds the :class:`~wacht_auth.auth.decide.Authenticator`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypedDict, cast

from ..config import Config, Settings
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from typing_extensions import Unpack

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
            CIDRs): only then are ``X-Forwarded-*`` headers read.
    """

    protect_all: bool | None
    public_paths: Iterable[str]
    page_paths: Iterable[str]
    prefetch: bool | None
    accept: Iterable[str] | None
    trusted_proxies: TrustedProxies | int | str | Iterable[str] | None


#: The names of :class:`Options`, in the order settings list them.
OPTION_NAMES = (
    "accept",
    "protect_all",
    "public_paths",
    "prefetch",
    "page_paths",
    "trusted_proxies",
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
        source: settings named as :data:`~wacht_auth.config.SETTINGS` does (Django's
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
    for name in OPTION_NAMES:
        value, given = settings.option(name), cast("Any", options.get(name))
        if name in _ADDED:
            value = (*(value or ()), *(given or ()))
        elif given is not None:
            value = given
        if value is not None:
            chosen[name] = value
    return Authenticator(verifier, **chosen)
