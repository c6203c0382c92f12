"""Configuration: one frozen, validated :class:`Config` of a deployment, built once at start-up.

Nothing on the request path reads the environment or framework settings: adapters build a
``Config`` (or take one) when the app starts, and every decision afterwards reads this object.
Where settings come from (the environment, Django's ``settings.WACHT_AUTH``, Flask's
``app.config``) and how each is read is :mod:`wacht_auth.settings`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError, public_url, shown

__all__ = [
    "DEFAULT_ALGORITHMS",
    "DEFAULT_BACKEND_API_URL",
    "DEFAULT_GATEWAY_URL",
    "SUPPORTED_ALGORITHMS",
    "Config",
    "EventHandler",
    "cookie_name_for",
    "decode_publishable_key",
    "is_loopback_host",
]

#: Algorithms accepted by default: Wacht signs with ES256; templates with a customer key use RS256.
DEFAULT_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256")
#: Every algorithm the verifier implements. HS* and ``none`` are never among them.
SUPPORTED_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
DEFAULT_BACKEND_API_URL = "https://api.wacht.dev"
DEFAULT_GATEWAY_URL = "https://gateway.wacht.dev"
MAX_LEEWAY = 300

#: Receives observability events: ``(name, fields)``; see ``docs/observability.md``.
EventHandler = Callable[[str, Mapping[str, Any]], None]

_PUBLISHABLE_PREFIXES = ("pk_test_", "pk_live_")
_SCOPE_RUN = re.compile(r"[^a-z0-9]+")


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ``::1``)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin(url: str, setting: str) -> str:
    """Normalise ``url`` to its origin (``scheme://host[:port]``), or raise with the setting.

    The scheme is required (a bare host is refused rather than guessed), and plain ``http``
    is accepted only for loopback hosts, so the message names this setting instead of the
    ``jwks_url`` derived from it.
    """
    url = url.strip()
    if "://" not in url:
        raise ConfigurationError(
            f"{setting} must be a URL starting with https://, got {shown(url)}"
            + (f" (did you mean {shown('https://' + url)}?)" if url else "")
        )
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(
            f"{setting} must be an https:// URL of the Wacht frontend API, got {shown(url)}"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"{setting} has an invalid port: {shown(url)}") from exc
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigurationError(
            f"{setting} must use https:// (plain http is allowed only for loopback hosts), "
            f"got {shown(url)}"
        )
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def _check_issuer(issuer: str, setting: str) -> None:
    """``issuer`` must be an origin (what Wacht puts in ``iss``): https, or http on loopback.

    Compared exactly with ``iss``, so it is checked, never rewritten: a path, a trailing
    ``/`` or a bare name would make every token ``issuer_invalid``.
    """
    parts = urlsplit(issuer)
    if (
        parts.scheme not in ("https", "http")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise ConfigurationError(
            f"{setting} must be the origin of the Wacht frontend API, as tokens carry it in "
            f"iss (https://<host>[:port], no path or trailing /), got {shown(issuer)}"
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigurationError(
            f"{setting} must use https:// (plain http is allowed only for loopback hosts), "
            f"got {shown(issuer)}"
        )


def _check_fetch_url(url: str, setting: str) -> str:
    """A key URL must be https, or http on a loopback host (for local development and tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    raise ConfigurationError(
        f"{setting} must use https:// (plain http is allowed only for loopback hosts), "
        f"got {shown(public_url(url))}"
    )


def decode_publishable_key(key: str, *, setting: str = "WACHT_PUBLISHABLE_KEY") -> str:
    """Return the frontend API origin encoded in a Wacht publishable key.

    A publishable key is ``pk_test_`` or ``pk_live_`` followed by base64 of
    ``https://<frontend host>``. Standard base64 is tried first, then URL-safe, each with or
    without padding; anything after the origin (a path, a trailing ``$``) is dropped.
    ``setting`` names where the key came from in error messages.
    """
    key = key.strip()
    prefix = next((p for p in _PUBLISHABLE_PREFIXES if key.startswith(p)), None)
    # A publishable key is public (it ships in every browser bundle): quoting it is safe.
    hint = "copy the publishable key from the Wacht dashboard"
    if prefix is None:
        raise ConfigurationError(
            f"{setting} must start with pk_test_ or pk_live_ ({hint}), got {shown(key, 60)}"
        )
    body = key[len(prefix) :]
    padded = body + "=" * (-len(body) % 4)
    decoded: str | None = None
    for decoder in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            decoded = decoder(padded.encode("ascii")).decode("utf-8")
            break
        except (binascii.Error, ValueError, UnicodeError):
            continue
    if decoded is None or not decoded.strip().startswith(("https://", "http://")):
        raise ConfigurationError(
            f"{setting} is not a Wacht publishable key: the part after {prefix} must be base64 "
            f"of the frontend API URL ({hint}), got {shown(key, 60)}"
        )
    decoded = decoded.strip().rstrip("$")
    return _origin(decoded, f"the URL in {setting}")


def cookie_name_for(frontend_api_url: str) -> str:
    """The ``__auth_<scope>`` cookie Wacht's Next.js SDK stores the session token in.

    ``<scope>`` is the frontend host (with its port, as ``URL.host`` gives it) lowercased, each
    run of characters outside ``[a-z0-9]`` replaced by ``_``, trimmed of ``_``, cut to 64.
    """
    parts = urlsplit(
        frontend_api_url if "://" in frontend_api_url else "https://" + frontend_api_url
    )
    host = (parts.netloc.rsplit("@", 1)[-1]).lower()
    scope = _SCOPE_RUN.sub("_", host).strip("_")[:64]
    return f"__auth_{scope}"


def _positive(value: float, setting: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigurationError(f"{setting} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError(f"{setting} must be positive, got {value!r}")
    return value


def _strings(value: str | Iterable[str] | None, setting: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else tuple(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise ConfigurationError(f"{setting} must be non-empty strings, got {item!r}")
    return items


@dataclass(frozen=True, kw_only=True)
class Config:
    """Validated, immutable settings for one Wacht deployment.

    Give ``frontend_api_url`` (the usual case: issuer and JWKS URL derive from it), or an
    ``issuer`` together with a ``jwks_url`` or a pinned ``public_key``. Every value is checked
    here, once; a bad one raises :class:`~wacht_auth.ConfigurationError` saying what to set.

    Attributes:
        frontend_api_url: origin of the deployment's frontend API (``https://<host>``).
        issuer: the exact ``iss`` tokens must carry; defaults to ``frontend_api_url``.
        jwks_url: where the signing keys are; defaults to ``{origin}/.well-known/jwks.json``.
        public_key: a pinned PEM public key; verification then makes no network call.
        algorithms: allowed JWS algorithms (default RS256 and ES256; HS* and none are refused).
        leeway: clock skew tolerated on ``exp``/``nbf``/``iat``, seconds (0 to 300).
        audience: when set, ``aud`` is required and must contain one of these.
        authorized_parties: when set, an ``azp`` that is present must be one of these; also
            the origins trusted for cookie-borne tokens on unsafe methods.
        max_token_bytes: tokens longer than this are rejected before decoding.
        jwks_max_age: seconds keys stay fresh (a smaller ``Cache-Control: max-age`` wins, not
            below 60).
        jwks_cooldown: minimum seconds between refreshes triggered by unknown keys.
        jwks_timeout: seconds a key fetch may take.
        jwks_stale_if_error: seconds the last good keys keep serving while refreshes fail.
        jwks_max_bytes: body cap of a key fetch.
        token_cache_size: verified tokens remembered (0 turns the cache off).
        cookie_name: the session cookie; derived from the frontend host when not given.
        read_cookies: whether adapters read the session cookie at all.
        clock: returns POSIX seconds; drives every time decision, key freshness included.
        on_event: optional callback receiving observability events.
        secret_key: Backend API secret key (never logged or shown in a repr).
        deployment_id: sent as ``X-Deployment-ID`` to the Backend API when set.
        backend_api_url: base URL of the Backend API.
        backend_timeout: seconds a Backend API request may take.
        gateway_url: Wacht's gateway, which checks API keys and OAuth access tokens (https;
            plain http only for loopback hosts).
        gateway_timeout: seconds a gateway check may take.
        sign_in_url: where pages send visitors who are not signed in (default: the accounts
            portal derived from the frontend host, ``docs/pages.md``).
        exchange_timeout: seconds an exchange of the session cookie at the frontend API may
            take (at most 60).
    """

    frontend_api_url: str | None = None
    issuer: str | None = None
    jwks_url: str | None = None
    public_key: str | None = field(default=None, repr=False)
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway: float = 5
    audience: tuple[str, ...] = ()
    authorized_parties: tuple[str, ...] = ()
    max_token_bytes: int = 8192
    jwks_max_age: float = 600
    jwks_cooldown: float = 30
    jwks_timeout: float = 5
    jwks_stale_if_error: float = 3600
    jwks_max_bytes: int = 1 << 20
    token_cache_size: int = 4096
    cookie_name: str | None = None
    read_cookies: bool = True
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    on_event: EventHandler | None = field(default=None, repr=False, compare=False)
    secret_key: str | None = field(default=None, repr=False)
    deployment_id: str | None = None
    backend_api_url: str = DEFAULT_BACKEND_API_URL
    backend_timeout: float = 10
    gateway_url: str = DEFAULT_GATEWAY_URL
    gateway_timeout: float = 5
    sign_in_url: str | None = None
    exchange_timeout: float = 5

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        frontend = self.frontend_api_url
        if frontend is not None:
            frontend = _origin(frontend, "frontend_api_url")
            set_(self, "frontend_api_url", frontend)
        issuer = self.issuer if self.issuer is not None else frontend
        if not issuer:
            raise ConfigurationError(
                "no Wacht deployment configured: set frontend_api_url (or the environment "
                "variable WACHT_FRONTEND_API_URL, or WACHT_PUBLISHABLE_KEY)"
            )
        if not isinstance(issuer, str):
            raise ConfigurationError(f"issuer must be a string, got {issuer!r}")
        if self.issuer is not None:  # one derived from frontend_api_url is an origin already
            _check_issuer(issuer, "issuer")
        set_(self, "issuer", issuer)
        jwks_url = self.jwks_url
        if jwks_url is None and frontend is not None:
            jwks_url = f"{frontend}/.well-known/jwks.json"
        if jwks_url is not None:
            jwks_url = _check_fetch_url(jwks_url, "jwks_url")
        elif self.public_key is None:
            raise ConfigurationError(
                "no signing keys configured: set frontend_api_url, jwks_url or public_key"
            )
        set_(self, "jwks_url", jwks_url)
        if self.public_key is not None:
            self._check_public_key(self.public_key)

        algorithms = _strings(self.algorithms, "algorithms")
        if not algorithms:
            raise ConfigurationError("algorithms must name at least one algorithm, e.g. ES256")
        for alg in algorithms:
            if alg not in SUPPORTED_ALGORITHMS:
                raise ConfigurationError(
                    f"algorithm {alg!r} is not supported; choose from "
                    f"{', '.join(sorted(SUPPORTED_ALGORITHMS))} (HS* and none are never allowed)"
                )
        set_(self, "algorithms", algorithms)
        leeway = _positive(self.leeway, "leeway", allow_zero=True)
        if leeway > MAX_LEEWAY:
            raise ConfigurationError(f"leeway must be at most {MAX_LEEWAY} seconds, got {leeway}")
        set_(self, "audience", _strings(self.audience, "audience"))
        set_(
            self,
            "authorized_parties",
            tuple(p.rstrip("/") for p in _strings(self.authorized_parties, "authorized_parties")),
        )
        for name in ("max_token_bytes", "jwks_max_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
        for name in (
            "jwks_max_age",
            "jwks_timeout",
            "backend_timeout",
            "gateway_timeout",
            "exchange_timeout",
        ):
            _positive(getattr(self, name), name)
        for name in ("jwks_cooldown", "jwks_stale_if_error"):
            _positive(getattr(self, name), name, allow_zero=True)
        size = self.token_cache_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ConfigurationError(f"token_cache_size must be an integer >= 0, got {size!r}")
        if self.cookie_name is None:
            set_(self, "cookie_name", cookie_name_for(frontend or issuer))
        elif not isinstance(self.cookie_name, str) or not self.cookie_name:
            raise ConfigurationError("cookie_name must be a non-empty string")
        if not callable(self.clock):
            raise ConfigurationError("clock must be a callable returning POSIX seconds")
        if self.on_event is not None and not callable(self.on_event):
            raise ConfigurationError("on_event must be a callable(name, fields)")
        if not isinstance(self.gateway_url, str):
            raise ConfigurationError(f"gateway_url must be a URL, got {self.gateway_url!r}")
        gateway = _check_fetch_url(self.gateway_url.strip().rstrip("/"), "gateway_url")
        set_(self, "gateway_url", gateway)
        set_(self, "backend_api_url", self.backend_api_url.rstrip("/"))
        if not self.backend_api_url.startswith(("https://", "http://")):
            raise ConfigurationError("backend_api_url must be an https:// URL")

    @staticmethod
    def _check_public_key(pem: str) -> None:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        try:
            load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                "public_key (WACHT_JWT_KEY / WACHT_PUBLIC_SIGNING_KEY) is not a PEM public key"
            ) from exc

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Build a config from the environment; explicit ``overrides`` (field names) win.

        Every ``WACHT_<SETTING>`` variable of the :data:`~wacht_auth.settings.SETTINGS`
        table is read, with one spelling and one validation shared with Django's
        ``settings.WACHT_AUTH`` and Flask's ``app.config``
        (:meth:`~wacht_auth.settings.Settings.load`). The frontend API is resolved in this
        order: ``frontend_api_url`` given here; ``WACHT_FRONTEND_API_URL``; ``WACHT_FRONTEND_HOST``;
        the publishable key in ``WACHT_PUBLISHABLE_KEY`` or
        ``NEXT_PUBLIC_WACHT_PUBLISHABLE_KEY``. A PEM in ``WACHT_PUBLIC_KEY``, ``WACHT_JWT_KEY``
        or ``WACHT_PUBLIC_SIGNING_KEY`` pins the key (networkless).
        """
        from .settings import Settings

        return Settings.load(env=env, **overrides).build_config()
