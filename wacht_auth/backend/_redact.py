"""Keeping credentials out of messages and reprs (no I/O).

Two rules. Text the server sends back (error messages, codes, request ids) has every known
credential removed before anything else happens to it, and so does any run of token characters
that holds a piece of 8 or more characters of one, whatever surrounds the piece (a server that
echoes a truncated key followed by ``...`` must not leak its prefix). Answers
are decoded into :class:`Record` dicts whose ``repr`` masks the members that hold credentials
(``ticket``, ``secret``, ``*_token``, ``*_api_key`` …) and the ``url`` of an object carrying a
``ticket`` (Wacht's session-ticket URL embeds it).
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"

#: Members whose values are credentials (names as Wacht's API description spells them).
SECRET_FIELDS = re.compile(
    r"^(?:ticket|secret|token|password|key|api_key|new_password"
    r"|.+_(?:secret|token|password|api_key|signing_key|secret_key|access_key))$"
)
#: The shortest piece of a credential that is redacted wherever it appears.
_PIECE = 8
#: Runs of characters a credential is made of; a run holding a piece of one is redacted.
_RUN = re.compile(r"[A-Za-z0-9._~+/=:-]{8,}")


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret, and each run of token characters that holds a piece of one
    of 8 or more characters (a prefix, a suffix, a middle), replaced by ``[redacted]``.

    The whole run goes, whatever surrounds the piece: a server that echoes a key prefix
    followed by ``...`` (token characters too) must not keep the prefix in the message.
    """
    secrets = [s for s in secrets if s]
    if not secrets or not text:
        return text
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    # Every piece of 8+ characters of a secret starts with one of its 8-character windows,
    # so a run holds such a piece exactly when one of its own windows is one of those.
    windows = {s[i : i + _PIECE] for s in secrets for i in range(len(s) - _PIECE + 1)}

    def piece(match: re.Match[str]) -> str:
        run = match.group(0)
        held = any(run[i : i + _PIECE] in windows for i in range(len(run) - _PIECE + 1))
        return REDACTED if held else run

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


class Learned:
    """Credentials the server has handed out (session tickets, API key and webhook secrets),
    kept so that a later message echoing one is redacted too. Bounded, thread-safe, shared by
    a client and the ``as_user()`` clients made from it."""

    __slots__ = ("_lock", "_values")

    def __init__(self, size: int = 256) -> None:
        self._lock = threading.Lock()
        self._values: deque[str] = deque(maxlen=size)

    def __repr__(self) -> str:
        return f"Learned({len(self._values)} values)"

    def values(self) -> tuple[str, ...]:
        """The credentials seen so far, newest last."""
        with self._lock:
            return tuple(self._values)

    def learn(self, answer: Any, budget: int = 10_000) -> None:
        """Keep the string values (8+ characters) of credential members found in ``answer``,
        looking at no more than ``budget`` nodes (a long list answer costs nothing more)."""
        found: list[str] = []
        stack = [answer]
        while stack and budget > 0:
            budget -= 1
            node = stack.pop()
            if isinstance(node, dict):
                for key, value in node.items():
                    if isinstance(value, str):
                        if len(value) >= 8 and _is_secret(key, node):
                            found.append(value)
                    elif isinstance(value, (dict, list)):
                        stack.append(value)
            elif isinstance(node, list):
                stack.extend(node)
        if found:
            with self._lock:
                self._values.extend(v for v in found if v not in self._values)


def record_hook(pairs: list[tuple[str, Any]]) -> Record:
    """``json.loads(object_pairs_hook=...)``: every decoded object becomes a :class:`Record`."""
    return Record(pairs)
