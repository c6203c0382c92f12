"""Keeping credentials out of messages and reprs (no I/O).

Two rules. Text the server sends back (error messages, codes, request ids) has every known
credential removed before anything else happens to it, and so does any run of token characters
that is a piece of one (a server that echoes a truncated key must not leak its prefix). Answers
are decoded into :class:`Record` dicts whose ``repr`` masks the members that hold credentials
(``ticket``, ``secret``, ``*_token``, ``*_api_key`` …) and the ``url`` of an object carrying a
``ticket`` (Wacht's session-ticket URL embeds it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"

#: Members whose values are credentials (names as Wacht's API description spells them).
SECRET_FIELDS = re.compile(
    r"^(?:ticket|secret|token|password|key|api_key|new_password"
    r"|.+_(?:secret|token|password|api_key|signing_key|secret_key|access_key))$"
)
#: Runs of characters a credential is made of; a run this long that is part of one is redacted.
_RUN = re.compile(r"[A-Za-z0-9._~+/=:-]{8,}")


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret, and each run of 8+ token characters that is a piece of one
    (a prefix, a suffix, a middle) or contains one, replaced by ``[redacted]``."""
    secrets = [s for s in secrets if s]
    if not secrets or not text:
        return text
    for secret in secrets:
        text = text.replace(secret, REDACTED)

    def piece(match: re.Match[str]) -> str:
        run = match.group(0)
        return REDACTED if any(run in secret for secret in secrets) else run

    return _RUN.sub(piece, text)


def _is_secret(key: object, record: dict[str, Any]) -> bool:
    if not isinstance(key, str):
        return False
    return bool(SECRET_FIELDS.match(key)) or (key == "url" and "ticket" in record)


class Record(dict[str, Any]):
    """A JSON object of an answer: a plain ``dict`` whose ``repr`` hides credentials.

    Item access, iteration, ``json.dumps`` and equality are a dict's; only ``repr`` (and so
    ``str``, logging and tracebacks) masks the string values of credential members.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        shown = {
            key: REDACTED if isinstance(value, str) and value and _is_secret(key, self) else value
            for key, value in self.items()
        }
        return repr(shown)

    __str__ = __repr__


def record_hook(pairs: list[tuple[str, Any]]) -> Record:
    """``json.loads(object_pairs_hook=...)``: every decoded object becomes a :class:`Record`."""
    return Record(pairs)
