"""Wacht's signed webhook deliveries: verify them, guard against replays, name their events.

Wacht POSTs events (``user.created``, ``organization.member.added`` ...) to an app's
endpoints in the Standard Webhooks format. :class:`Receiver` verifies a delivery from its raw
body and headers against one or several secrets and returns a read-only :class:`Event`, or
raises a :class:`~wacht_auth.errors.WebhookError` with a stable ``code``. The framework
receivers (``webhook`` in each of ``wacht_auth.integrations``) are built on it; see
``docs/webhooks.md``.

    from wacht_auth.webhooks import EventType, Receiver

    receiver = Receiver("whsec_...")
    event = receiver.verify(raw_body, headers)
    if event.type == EventType.USER_CREATED:
        ...
    receiver.accepted(event)  # handled: a replay of this id is refused from now on
"""

from __future__ import annotations

from ..errors import (
    WebhookError,
    WebhookHeadersMalformedError,
    WebhookHeadersMissingError,
    WebhookMethodNotAllowedError,
    WebhookPayloadInvalidError,
    WebhookPayloadTooLargeError,
    WebhookReplayedError,
    WebhookSignatureInvalidError,
    WebhookTimestampInFutureError,
    WebhookTimestampTooOldError,
)
from ._names import EventType
from ._receive import succeeded, webhook_view
from ._replay import DEFAULT_REPLAY_ENTRIES, MemoryReplayGuard, ReplayGuard
from ._verify import (
    DEFAULT_FUTURE_TOLERANCE,
    DEFAULT_MAX_BYTES,
    DEFAULT_TOLERANCE,
    MIN_SECRET_BYTES,
    USER_AGENT,
    Event,
    Headers,
    Receiver,
    Secrets,
    WebhookSecret,
    parse_secrets,
    sign,
    verify,
)

__all__ = [
    "DEFAULT_FUTURE_TOLERANCE",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_REPLAY_ENTRIES",
    "DEFAULT_TOLERANCE",
    "MIN_SECRET_BYTES",
    "USER_AGENT",
    "Event",
    "EventType",
    "Headers",
    "MemoryReplayGuard",
    "Receiver",
    "ReplayGuard",
    "Secrets",
    "WebhookError",
    "WebhookHeadersMalformedError",
    "WebhookHeadersMissingError",
    "WebhookMethodNotAllowedError",
    "WebhookPayloadInvalidError",
    "WebhookPayloadTooLargeError",
    "WebhookReplayedError",
    "WebhookSecret",
    "WebhookSignatureInvalidError",
    "WebhookTimestampInFutureError",
    "WebhookTimestampTooOldError",
    "parse_secrets",
    "sign",
    "succeeded",
    "verify",
    "webhook_view",
]
