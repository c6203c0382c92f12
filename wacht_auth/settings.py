"""Settings: one table of every setting, read the same way from the environment, Django's
``settings.WACHT_AUTH`` and Flask's ``app.config``.

:data:`SETTINGS` names each setting once; :meth:`Settings.load` reads a source over the
environment with one coercion and one validation, and messages name the setting to edit as
the user spells it (``WACHT_PROTECT_ALL``, ``settings.WACHT_AUTH['protect_all']``,
``app.config['WACHT_PROTECT_ALL']``). :meth:`Settings.build_config` makes the
:class:`~wacht_auth.config.Config`; the request layer's options go to
:func:`wacht_auth.auth.configure`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .config import Config, decode_publishable_key
from .errors import ConfigurationError

__all__ = ["DJANGO_SETTING", "SETTINGS", "Settings"]

_PREFIX = "WACHT_"
#: The Django setting holding wacht_auth's settings (a dict keyed by :data:`SETTINGS` names).
DJANGO_SETTING = "WACHT_AUTH"


def _did_you_mean(name: str, label: Callable[[str], str]) -> str:
    """``label(name)``, and the closest known setting's label when one is close (difflib)."""
    close = difflib.get_close_matches(name, SETTINGS, n=1, cutoff=0.75)
    return label(name) + (f" (did you mean {label(close[0])}?)" if close else "")


def _label_env(name: str) -> str:
    return f"{_PREFIX}{name.upper()}"


def _text(value: Any, label: str) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{label} must be a string, got {type(value).__name__}")
    return value.strip()


def _flag(value: Any, label: str) -> bool:
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigurationError(f"{label} must be true or false, got {value!r}")


def _number(value: Any, label: str) -> float:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    raise ConfigurationError(f"{label} must be a number, got {value!r}")


def _integer(value: Any, label: str) -> int:
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    elif isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ConfigurationError(f"{label} must be a whole number, got {value!r}")


def _list(value: Any, label: str) -> tuple[str, ...]:
    """A list setting: a list of strings, or one comma-separated string (the environment)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, frozenset, set)):
        raise ConfigurationError(f"{label} must be a list of strings, got {value!r}")
    out = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigurationError(f"{label} must be a list of strings, got {item!r}")
        if item.strip():
            out.append(item.strip())
    return tuple(out)


def _pem(value: Any, label: str) -> str:
    return _text(value, label).replace("\\n", "\n")  # a PEM on one line, as in .env files


def _publishable(value: Any, label: str) -> str:
    return decode_publishable_key(_text(value, label), setting=label)


def _proxies(value: Any, label: str) -> Any:
    """``trusted_proxies``: a number of proxy hops, or proxy addresses/CIDRs (a list, or one
    comma-separated string); checked by ``wacht_auth.proxies.TrustedProxies.parse``."""
    if isinstance(value, bool):
        raise ConfigurationError(f"{label} must be a number of hops or a list of proxies")
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value if isinstance(value, int) else _list(value, label)


def _object(value: Any, label: str) -> Any:
    if isinstance(value, str):
        raise ConfigurationError(f"{label} cannot be given as text; set it in code")
    return value


def _webhook_secrets(value: Any, label: str) -> Any:
    from .webhooks import parse_secrets  # the secret format belongs to the webhooks module

    return parse_secrets(value, label)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_Parser = Callable[[Any, str], Any]

#: Every setting: its one name (``WACHT_<NAME>`` in the environment and Flask's
#: ``app.config``, ``"name"`` in Django's ``settings.WACHT_AUTH``), the target it sets, and how
#: its value is read. Several names may set one target; the first one given wins.
SETTINGS: Mapping[str, tuple[str, _Parser]] = MappingProxyType(
    {
        "frontend_api_url": ("frontend_api_url", _text),
        "frontend_host": ("frontend_api_url", _text),  # the Rust SDK's name
        "publishable_key": ("frontend_api_url", _publishable),
        "issuer": ("issuer", _text),
        "jwks_url": ("jwks_url", _text),
        "public_key": ("public_key", _pem),
        "jwt_key": ("public_key", _pem),
        "public_signing_key": ("public_key", _pem),
        "algorithms": ("algorithms", _list),
        "leeway": ("leeway", _number),
        "audience": ("audience", _list),
        "authorized_parties": ("authorized_parties", _list),
        "max_token_bytes": ("max_token_bytes", _integer),
        "jwks_max_age": ("jwks_max_age", _number),
        "jwks_cooldown": ("jwks_cooldown", _number),
        "jwks_timeout": ("jwks_timeout", _number),
        "jwks_stale_if_error": ("jwks_stale_if_error", _number),
        "jwks_max_bytes": ("jwks_max_bytes", _integer),
        "token_cache_size": ("token_cache_size", _integer),
        "cookie_name": ("cookie_name", _text),
        "read_cookies": ("read_cookies", _flag),
        "clock": ("clock", _object),
        "on_event": ("on_event", _object),
        "secret_key": ("secret_key", _text),
        "api_key": ("secret_key", _text),
        "deployment_id": ("deployment_id", _text),
        "backend_api_url": ("backend_api_url", _text),
        "backend_timeout": ("backend_timeout", _number),
        "gateway_url": ("gateway_url", _text),
        "gateway_timeout": ("gateway_timeout", _number),
        "sign_in_url": ("sign_in_url", _text),
        "exchange_timeout": ("exchange_timeout", _number),
        # The request layer's options (wacht_auth.auth.Authenticator).
        "accept": ("accept", _list),
        "protect_all": ("protect_all", _flag),
        "public_paths": ("public_paths", _list),
        "prefetch": ("prefetch", _flag),
        "page_paths": ("page_paths", _list),
        "trusted_proxies": ("trusted_proxies", _proxies),
        # Webhook receivers (wacht_auth.webhooks.Receiver.from_settings).
        "webhook_secret": ("webhook_secret", _webhook_secrets),
        "webhook_tolerance": ("webhook_tolerance", _number),
        "webhook_max_bytes": ("webhook_max_bytes", _integer),
        # Credentials besides session tokens (docs/credentials.md).
        "oauth_issuers": ("oauth_issuers", _list),
        "oauth_audiences": ("oauth_audiences", _list),
        "oauth_client_ids": ("oauth_client_ids", _list),
        "api_auth_apps": ("api_auth_apps", _list),
        # A ready Config or verifier instead of the fields above (code only).
        "config": ("config", _object),
        "verifier": ("verifier", _object),
    }
)
_OPTIONS = (
    "accept",
    "protect_all",
    "public_paths",
    "prefetch",
    "page_paths",
    "trusted_proxies",
    "webhook_secret",
    "webhook_tolerance",
    "webhook_max_bytes",
    "oauth_issuers",
    "oauth_audiences",
    "oauth_client_ids",
    "api_auth_apps",
    "config",
    "verifier",
)
_CODE_ONLY = ("config", "verifier")  # objects: never read from the environment
# Names read from the environment besides WACHT_<NAME> (Wacht's Next.js SDK).
_ENV_ALIASES = {"NEXT_PUBLIC_WACHT_PUBLISHABLE_KEY": "publishable_key"}


def _targets(
    given: Iterable[tuple[str, Any]], label: Callable[[str], str]
) -> dict[str, tuple[Any, str]]:
    """Each target's value and the label of the setting that gave it (first name wins)."""
    found: dict[str, tuple[str, Any]] = {}
    for name, value in given:
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        found.setdefault(name, (name, value))
    out: dict[str, tuple[Any, str]] = {}
    for name, (target, parse) in SETTINGS.items():  # table order: the precedence of aliases
        if name in found and target not in out:
            out[target] = (parse(found[name][1], label(name)), label(name))
    return out


@dataclass(frozen=True)
class Settings:
    """Everything an adapter is configured with, read and validated in one place.

    The environment, Django's ``settings.WACHT_AUTH`` and Flask's ``app.config`` all name a
    setting the same way (:data:`SETTINGS`) and go through :meth:`load`, so a value is
    accepted, coerced and refused the same way everywhere, with a message that names the
    variable or setting to edit.

    Attributes:
        values: each target (a :class:`Config` field or an option) with its parsed value.
        labels: each target with the setting that gave it, as the user spelled it.
        where: where settings are read from, for messages ("settings.WACHT_AUTH" ...).
        prefixed: whether ``where`` names settings ``WACHT_<NAME>`` (Flask's ``app.config``).
    """

    values: Mapping[str, Any]
    labels: Mapping[str, str]
    where: str
    prefixed: bool = False

    @classmethod
    def load(
        cls,
        mapping: Mapping[str, Any] | None = None,
        *,
        prefixed: bool = False,
        where: str = "the environment",
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Read ``mapping`` over the environment (``WACHT_<NAME>``); ``overrides`` (targets,
        given in code) win over both.

        ``mapping`` names settings as :data:`SETTINGS` does, case-insensitive (Django's
        ``settings.WACHT_AUTH = {"frontend_api_url": ...}``), or with ``prefixed`` as
        ``WACHT_<NAME>`` among other keys, which are ignored (Flask's ``app.config``).

        Raises:
            ConfigurationError: an unknown name in ``mapping``, or a value of the wrong kind,
                naming the setting to edit as ``where`` spells it.
        """
        if prefixed:

            def label(name: str) -> str:
                return f"{where}[{_label_env(name)!r}]"

            if mapping is not None and isinstance(mapping, Mapping):
                mapping = {
                    k[len(_PREFIX) :]: v
                    for k, v in mapping.items()
                    if isinstance(k, str) and k.startswith(_PREFIX)
                }
        else:

            def label(name: str) -> str:
                return f"{where}[{name!r}]"

        env = os.environ if env is None else env
        from_env: list[tuple[str, Any]] = [
            (name, env.get(_label_env(name))) for name in SETTINGS if name not in _CODE_ONLY
        ]
        from_env += [(name, env.get(key)) for key, name in _ENV_ALIASES.items()]
        targets = _targets(from_env, _label_env)
        if mapping is not None and not isinstance(mapping, Mapping):
            raise ConfigurationError(f"{where} must be a dict, got {type(mapping).__name__}")
        if mapping:
            given = [(str(key).lower(), value) for key, value in mapping.items()]
            unknown = sorted(name for name, _ in given if name not in SETTINGS)
            if unknown:
                raise ConfigurationError(
                    f"unknown setting {'; '.join(_did_you_mean(n, label) for n in unknown)} "
                    f"in {where} (every setting: docs/configuration.md)"
                )
            targets.update(_targets(given, label))
        for target, value in overrides.items():
            if value is not None:
                targets[target] = (value, target)
        return cls(
            MappingProxyType({k: v for k, (v, _) in targets.items()}),
            MappingProxyType({k: where for k, (_, where) in targets.items()}),
            where,
            prefixed,
        )

    def spell(self, name: str) -> str:
        """How the user names the setting ``name`` here: the label of the one that gave it,
        else ``where``'s spelling (and the environment variable, which is read as well)."""
        given = self.labels.get(name)
        if given is not None and given != name:
            return given
        env = _label_env(name)
        if self.where == "the environment":
            return env
        key = env if self.prefixed else name
        return f"{self.where}[{key!r}] (or {env})"

    def option(self, name: str, default: Any = None) -> Any:
        """The request layer's option ``name`` (``protect_all``, ``public_paths`` ...)."""
        return self.values.get(name, default)

    def build_config(self) -> Config:
        """The :class:`Config` these settings describe (``config`` itself when one was given).

        Raises:
            ConfigurationError: the value is invalid; the message names the setting.
        """
        given = self.values.get("config")
        if given is not None:
            if not isinstance(given, Config):
                raise ConfigurationError(f"{self.labels['config']} must be a wacht_auth.Config")
            return given
        fields = {k: v for k, v in self.values.items() if k not in _OPTIONS}
        try:
            return Config(**fields)
        except ConfigurationError as exc:
            named = [
                label
                for target, label in self.labels.items()
                if re.search(rf"\b{target}\b", exc.message) and label != target
            ]
            where = f" (check {', '.join(named)})" if named else f" (settings: {self.where})"
            raise ConfigurationError(exc.message + where) from None
