"""Verify Wacht's signed deliveries (the Standard Webhooks format, as Wacht's platform signs).

A delivery is a POST with three headers: ``webhook-id`` (``msg_<id>``), ``webhook-timestamp``
(Unix seconds, fixed when the event was triggered: retries keep it) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256>``, a space-separated list). The signed content is the bytes
``"{id}.{timestamp}." + body``, the key the secret without its ``whsec_`` prefix,
base64-decoded. The body is ``{"type": ..., "timestamp": ..., "data": {...}}``.

Everything here is framework-free and does no I/O: the adapters read the native request and
call :meth:`Receiver.receive` (or :meth:`Receiver.areceive`) once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets as _random
import time
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, Union

from ..errors import (
    ConfigurationError,
    WebhookHeadersMalformedError,
    WebhookHeadersMissingError,
    WebhookMethodNotAllowedError,
    WebhookPayloadInvalidError,
    WebhookPayloadTooLargeError,
    WebhookReplayedError,
    WebhookSignatureInvalidError,
    WebhookTimestampInFutureError,
    WebhookTimestampTooOldError,
    shown,
)
from ._names import EventType
from ._replay import MemoryReplayGuard, ReplayGuard

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = [
    "DEFAULT_FUTURE_TOLERANCE",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TOLERANCE",
    "MIN_SECRET_BYTES",
    "USER_AGENT",
    "Event",
    "Headers",
    "Receiver",
    "WebhookSecret",
    "parse_secrets",
    "sign",
    "verify",
]

#: Past tolerance: Wacht retries a failed delivery with its original timestamp for about
#: 7 days (+30 s, +1 min, +5 min, +15 min, then every 6 h), so every retry must still pass.
DEFAULT_TOLERANCE = 7 * 24 * 3600
#: Future tolerance: a timestamp ahead of our clock means a clock is off; keep it tight.
DEFAULT_FUTURE_TOLERANCE = 300
#: Body cap: Wacht's events are a few kilobytes.
DEFAULT_MAX_BYTES = 1 << 20
#: The shortest key accepted (Wacht's are 32 bytes).
MIN_SECRET_BYTES = 16
#: The User-Agent Wacht's deliveries carry.
USER_AGENT = "Wacht-Webhook/1.0"
_PREFIX = "whsec_"
_ID = re.compile(r"[\x21-\x7e]{1,256}")  # printable ASCII, no space: msg_<id> in practice
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_MAX_SIGNATURE_HEADER = 8192
_SEPARATORS = re.compile(r"[\s,]+")

#: What :class:`Receiver` takes as its secret(s): one ``whsec_…`` text, several separated by
#: spaces or commas, a :class:`WebhookSecret`, or a list of those.
Secrets = Union[str, "WebhookSecret", Iterable[Union[str, "WebhookSecret"]]]


class Headers(Protocol):
    """The request headers a receiver reads: any framework's header mapping (Django's,
    Werkzeug's and Starlette's are case-insensitive) or a plain dict."""

    def get(self, key: str, /) -> str | None:
        """The value of header ``key``, or ``None``."""
        ...

    def items(self) -> Iterable[tuple[str, str]]:
        """Every header as ``(name, value)``."""
        ...


class WebhookSecret:
    """One webhook signing secret: the HMAC key, never shown in a repr, message or log."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) < MIN_SECRET_BYTES:
            raise ConfigurationError(f"a webhook secret must be at least {MIN_SECRET_BYTES} bytes")
        self._key = key

    @classmethod
    def parse(cls, text: str, *, setting: str = "secret") -> WebhookSecret:
        """``whsec_`` + standard base64 or the bare base64, padded or not, of at least 16 bytes.

        Raises:
            ConfigurationError: naming ``setting``, never quoting the value.
        """
        if not isinstance(text, str):
            raise ConfigurationError(f"{setting} must be a string, got {type(text).__name__}")
        body = text.strip()
        body = body[len(_PREFIX) :] if body.startswith(_PREFIX) else body
        body = body.rstrip("=")
        try:
            key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"{setting} is not a webhook signing secret: expected whsec_ followed by base64 "
                f"of at least {MIN_SECRET_BYTES} bytes (copy it from the webhook app in the "
                "Wacht console)"
            )
        return cls(key)

    @classmethod
    def generate(cls) -> WebhookSecret:
        """A new random 32-byte secret, as Wacht makes them (for tests and local tools)."""
        return cls(_random.token_bytes(32))

    @property
    def key(self) -> bytes:
        """The HMAC key."""
        return self._key

    @property
    def text(self) -> str:
        """The secret as Wacht shows it: ``whsec_`` + base64 of the key."""
        return _PREFIX + base64.b64encode(self._key).decode("ascii")

    def __repr__(self) -> str:
        return "WebhookSecret(<hidden>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WebhookSecret) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._key).digest())


def parse_secrets(value: Secrets, setting: str = "secret") -> tuple[WebhookSecret, ...]:
    """Every secret in ``value`` (the coercion of the ``webhook_secret`` setting).

    Several secrets are separated by spaces or commas (one environment variable), or given
    as a list: the app accepts a delivery signed with any of them while it rolls over.

    Raises:
        ConfigurationError: a secret is malformed; the message names ``setting`` (and which
            entry), never the value.
    """
    if isinstance(value, (str, WebhookSecret)):
        items: list[Any] = [value]
    elif isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        items = list(value)
    else:
        raise ConfigurationError(
            f"{setting} must be a whsec_ secret or a list of them, got {type(value).__name__}"
        )
    texts: list[Any] = []
    for item in items:
        if isinstance(item, str):
            texts.extend(text for text in _SEPARATORS.split(item) if text)
        else:
            texts.append(item)
    out = []
    for index, item in enumerate(texts):
        label = setting if len(texts) == 1 else f"{setting} (secret {index + 1} of {len(texts)})"
        out.append(
            item if isinstance(item, WebhookSecret) else WebhookSecret.parse(item, setting=label)
        )
    return tuple(out)


@dataclass(frozen=True)
class Event:
    """A verified delivery: read-only.

    Attributes:
        id: ``webhook-id`` (``msg_…``): the same on every retry of one delivery.
        type: the event name (``"user.created"``), also for names this release does not list.
        timestamp: ``webhook-timestamp`` as an aware UTC datetime: when the event was
            triggered (retries keep it), the authoritative time of the delivery.
        data: the body's ``data``, as parsed (``None`` when absent); ``data["entity_id"]``
            may be a JSON number or a string.
        body: the raw body, exactly as received and verified.
        payload: the whole parsed body (``type``, the body's own ``timestamp``, ``data`` ...).
    """

    id: str
    type: str
    timestamp: datetime
    data: Any = field(repr=False)
    body: bytes = field(repr=False)
    payload: Mapping[str, Any] = field(repr=False)

    @property
    def known_type(self) -> EventType | None:
        """The :class:`EventType` of :attr:`type`, or ``None`` for an unlisted name."""
        try:
            return EventType(self.type)
        except ValueError:
            return None


def _header(headers: Headers, name: str) -> str | None:
    """``name`` from ``headers``: the frameworks' mappings are case-insensitive; a plain dict
    is scanned for any spelling."""
    value = headers.get(name)
    if value is None:
        for key, found in headers.items():
            if isinstance(key, str) and key.lower() == name:
                return found
    return value


def _number(value: Any, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigurationError(f"{name} must be a number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError(f"{name} must be positive, got {value!r}")
    return float(value)


def signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> bytes:
    """HMAC-SHA256 of ``"{id}.{timestamp}." + body`` with ``key``."""
    return hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


class Receiver:
    """Verifies deliveries against one or several secrets; guards against replays.

    Args:
        secret: the webhook app's signing secret(s), as :func:`parse_secrets` reads them.
        tolerance: seconds a delivery's timestamp may lie in the past (default 7 days:
            Wacht's retries keep the original timestamp for that long).
        future_tolerance: seconds it may lie in the future (default 5 minutes).
        max_bytes: the body cap (default 1 MiB).
        replay_guard: ``True`` (default) for a bounded in-process :class:`MemoryReplayGuard`,
            ``False`` for none, or your own :class:`ReplayGuard` shared by every process.
        clock: POSIX seconds; every time decision reads it.

    Raises:
        ConfigurationError: no secret, a malformed one, or a bad number.
    """

    def __init__(
        self,
        secret: Secrets,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        future_tolerance: float = DEFAULT_FUTURE_TOLERANCE,
        max_bytes: int = DEFAULT_MAX_BYTES,
        replay_guard: ReplayGuard | bool = True,
        clock: Callable[[], float] = time.time,
        setting: str = "secret",
    ) -> None:
        self._secrets = parse_secrets(secret, setting)
        if not self._secrets:
            raise ConfigurationError(f"{setting} names no webhook secret")
        self.tolerance = _number(tolerance, "webhook tolerance")
        self.future_tolerance = _number(
            future_tolerance, "webhook future tolerance", allow_zero=True
        )
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ConfigurationError(
                f"webhook max_bytes must be a positive integer, got {max_bytes!r}"
            )
        self.max_bytes = max_bytes
        if replay_guard is True:
            replay_guard = MemoryReplayGuard(clock=clock)
        elif replay_guard is not False and not isinstance(replay_guard, ReplayGuard):
            raise ConfigurationError("replay_guard must be True, False or a ReplayGuard")
        self.replay_guard: ReplayGuard | None = None if replay_guard is False else replay_guard
        if not callable(clock):
            raise ConfigurationError("clock must be a callable returning POSIX seconds")
        self._clock = clock

    def __repr__(self) -> str:
        return (
            f"Receiver(secrets={len(self._secrets)}, tolerance={self.tolerance:g}, "
            f"future_tolerance={self.future_tolerance:g}, max_bytes={self.max_bytes})"
        )

    @classmethod
    def from_settings(
        cls,
        source: Settings | Mapping[str, Any] | None = None,
        *,
        where: str = "the environment",
        prefixed: bool = False,
        **overrides: Any,
    ) -> Receiver:
        """The receiver the ``webhook_*`` settings describe: ``source`` (loaded
        :class:`~wacht_auth.settings.Settings`, Django's ``settings.WACHT_AUTH``, or with
        ``prefixed`` Flask's ``app.config``; ``where`` names it in messages) over the
        environment; ``overrides`` are this class's arguments and win.

        Raises:
            ConfigurationError: no ``webhook_secret`` is set, or a value is invalid; the
                message names the setting to edit.
        """
        from ..settings import Settings

        if isinstance(source, Settings):
            settings = source
        else:
            settings = Settings.load(source, prefixed=prefixed, where=where)
        values, labels = settings.values, settings.labels
        secret = overrides.pop("secret", None) or values.get("webhook_secret")
        if not secret:
            raise ConfigurationError(
                "no webhook secret configured: set WACHT_WEBHOOK_SECRET (the environment, "
                "Flask's app.config) or settings.WACHT_AUTH['webhook_secret'] (Django), or "
                f"pass secret= (settings: {settings.where})"
            )
        options: dict[str, Any] = {"setting": labels.get("webhook_secret", "secret")}
        for name, target in (
            ("webhook_tolerance", "tolerance"),
            ("webhook_max_bytes", "max_bytes"),
        ):
            if name in values:
                options[target] = values[name]
        options.update(overrides)
        try:
            return cls(secret, **options)
        except ConfigurationError as exc:
            named = [labels[n] for n in ("webhook_tolerance", "webhook_max_bytes") if n in labels]
            hint = f" (check {', '.join(named)})" if named and "secret" not in exc.message else ""
            raise ConfigurationError(exc.message + hint) from None

    # -- the request ---------------------------------------------------------------------------

    def check_request(self, method: str | None, headers: Headers) -> None:
        """Refuse before reading the body: not a POST, or a ``Content-Length`` over the cap."""
        if (method or "").upper() != "POST":
            raise WebhookMethodNotAllowedError(
                f"webhook deliveries are POST requests, got {shown(method)}"
            )
        length = _header(headers, "content-length")
        length = length.strip() if length is not None else None
        if length and length.isascii() and length.isdigit() and int(length) > self.max_bytes:
            raise self._too_large()

    def receive(
        self, method: str | None, headers: Headers, body: bytes | Callable[[], bytes]
    ) -> Event:
        """Check the request, read ``body`` (a callable is called only when the request
        passed the checks that need no body) and :meth:`verify` it."""
        self.check_request(method, headers)
        return self.verify(body() if callable(body) else body, headers)

    async def areceive(
        self, method: str | None, headers: Headers, chunks: AsyncIterable[bytes]
    ) -> Event:
        """:meth:`receive` over a body read in chunks, stopped as soon as it passes the cap."""
        self.check_request(method, headers)
        parts, size = [], 0
        async for chunk in chunks:
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_large()
            parts.append(chunk)
        return self.verify(b"".join(parts), headers)

    def _too_large(self) -> WebhookPayloadTooLargeError:
        return WebhookPayloadTooLargeError(f"the body is larger than {self.max_bytes} bytes")

    # -- the delivery --------------------------------------------------------------------------

    def verify(self, body: bytes, headers: Headers) -> Event:
        """Verify a delivery: its raw ``body`` exactly as received and its ``headers``.

        The order: size; headers present and well-formed; the signature (so only a genuine
        delivery learns anything about its time or body); the timestamp; the body; replays.

        Raises:
            WebhookError: the subclass says why (each has a stable ``code``).
        """
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError("verify() takes the raw body as bytes, exactly as received")
        body = bytes(body)
        if len(body) > self.max_bytes:
            raise self._too_large()
        webhook_id = _header(headers, "webhook-id")
        stamp = _header(headers, "webhook-timestamp")
        signatures = _header(headers, "webhook-signature")
        missing = [
            name
            for name, value in (
                ("webhook-id", webhook_id),
                ("webhook-timestamp", stamp),
                ("webhook-signature", signatures),
            )
            if not value
        ]
        if missing or webhook_id is None or stamp is None or signatures is None:
            raise WebhookHeadersMissingError(f"missing header(s): {', '.join(missing)}")
        if not _ID.fullmatch(webhook_id):
            raise WebhookHeadersMalformedError(
                "webhook-id must be 1 to 256 visible ASCII characters"
            )
        if not _TIMESTAMP.fullmatch(stamp.strip()):
            raise WebhookHeadersMalformedError("webhook-timestamp must be whole Unix seconds")
        if len(signatures) > _MAX_SIGNATURE_HEADER:
            raise WebhookHeadersMalformedError("webhook-signature is too long")
        timestamp = int(stamp)
        self._check_signature(webhook_id, timestamp, body, signatures)
        now = self._clock()
        if now - timestamp > self.tolerance:
            raise WebhookTimestampTooOldError(
                f"the delivery is {now - timestamp:.0f} s old; "
                f"the tolerance is {self.tolerance:g} s"
            )
        if timestamp - now > self.future_tolerance:
            raise WebhookTimestampInFutureError(
                f"the delivery's timestamp is {timestamp - now:.0f} s ahead of this server's "
                f"clock; the tolerance is {self.future_tolerance:g} s"
            )
        payload = _envelope(body)
        if self.replay_guard is not None and self.replay_guard.seen(webhook_id):
            raise WebhookReplayedError(f"the delivery {shown(webhook_id)} was handled already")
        when = datetime.fromtimestamp(timestamp, timezone.utc)
        return Event(webhook_id, payload["type"], when, payload.get("data"), body, payload)

    def _check_signature(self, webhook_id: str, timestamp: int, body: bytes, header: str) -> None:
        expected = [signature(s.key, webhook_id, timestamp, body) for s in self._secrets]
        matched = False
        for entry in header.split():
            version, comma, value = entry.partition(",")
            if version != "v1" or not comma:  # other versions are ignored (Standard Webhooks)
                continue
            try:
                given = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                continue
            for digest in expected:  # every pair compared: no early exit to time
                matched |= hmac.compare_digest(digest, given)
        if not matched:
            raise WebhookSignatureInvalidError(
                "no v1 signature matches a configured webhook secret (was the secret rotated? "
                "add the new one to WACHT_WEBHOOK_SECRET)"
            )

    def accepted(self, event: Event) -> None:
        """The handler of ``event`` succeeded: remember its id, so a replay is refused.

        Called by the receivers of every framework after the handler returned a response
        below 400; call it yourself after :meth:`verify` when you drive the flow.
        """
        if self.replay_guard is not None:
            expires_at = event.timestamp.timestamp() + self.tolerance
            self.replay_guard.remember(event.id, expires_at)


def _envelope(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookPayloadInvalidError("the body is not JSON") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise WebhookPayloadInvalidError('the body is not a JSON object with a string "type"')
    return payload


def verify(
    body: bytes,
    headers: Headers,
    secret: Secrets,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    future_tolerance: float = DEFAULT_FUTURE_TOLERANCE,
    max_bytes: int = DEFAULT_MAX_BYTES,
    clock: Callable[[], float] = time.time,
) -> Event:
    """Verify one delivery without a replay guard (a :class:`Receiver` keeps one).

    Raises:
        WebhookError: the delivery is refused; its ``code`` says why.
        ConfigurationError: ``secret`` is malformed.
    """
    receiver = Receiver(
        secret,
        tolerance=tolerance,
        future_tolerance=future_tolerance,
        max_bytes=max_bytes,
        replay_guard=False,
        clock=clock,
    )
    return receiver.verify(body, headers)


def sign(
    body: bytes,
    secret: Secrets,
    *,
    webhook_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The headers Wacht sends with ``body``: ``webhook-id`` (a new ``msg_…`` unless given),
    ``webhook-timestamp`` (now unless given), ``webhook-signature`` (one ``v1`` entry per
    secret), ``User-Agent`` and ``Content-Type``. For tests and local tools."""
    keys = parse_secrets(secret)
    webhook_id = webhook_id or "msg_" + _random.token_hex(12)
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    entries = " ".join(
        "v1," + base64.b64encode(signature(s.key, webhook_id, stamp, bytes(body))).decode()
        for s in keys
    )
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": entries,
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
    }
