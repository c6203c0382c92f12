"""Observability: one helper that logs an event and hands it to ``Config.on_event``.

Events and their fields are listed in ``docs/observability.md``. No event ever carries a token,
a secret key or key material: only URLs, key ids, counts, durations and outcome codes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .config import EventHandler

__all__ = ["LOGGER", "emit"]

#: The logger every wacht_auth event is written to.
LOGGER = logging.getLogger("wacht_auth")


def emit(
    handler: EventHandler | None,
    name: str,
    fields: Mapping[str, Any],
    *,
    level: int = logging.INFO,
    message: str | None = None,
) -> None:
    """Log ``name`` with ``fields`` on the ``wacht_auth`` logger and call ``handler``.

    ``message`` is a %-style template over ``fields`` (logging's lazy formatting, so a disabled
    level costs one ``isEnabledFor`` check). A handler that raises never breaks verification:
    its exception is logged and swallowed, since metrics must not decide who is signed in.
    """
    if message is not None and LOGGER.isEnabledFor(level):
        LOGGER.log(level, message, dict(fields), extra={"wacht_event": name})
    if handler is not None:
        try:
            handler(name, fields)
        except Exception:
            LOGGER.exception("wacht_auth on_event handler raised for event %r", name)
