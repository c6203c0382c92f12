"""What the ``wacht-auth`` command writes: exit codes, failures, results, time and token display.

Every verdict (a result, or a failure with its ``code``) goes to standard output with
``--json``, one JSON object per run, so ``wacht-auth verify --json "$T" | jq .error.code``
reads it; diagnostics for people go to standard error. Without ``--json`` a failure is one
line ``wacht-auth: <code>: <message>`` on standard error, as command-line tools do.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TextIO

#: Success.
EXIT_OK = 0
#: The token was rejected or cannot be decoded (or a demo case failed).
EXIT_REJECTED = 1
#: Bad usage or configuration, including a missing optional dependency.
EXIT_USAGE = 2
#: The signing keys (or the development issuer) could not be fetched or reached.
EXIT_UNAVAILABLE = 3
#: Every exit code and what it means.
EXIT_CODES: Mapping[int, str] = {
    EXIT_OK: "success",
    EXIT_REJECTED: "the token was rejected or cannot be decoded; a demo case failed",
    EXIT_USAGE: "bad usage or configuration; a missing optional dependency",
    EXIT_UNAVAILABLE: "the signing keys or the development issuer cannot be reached",
}


class Failure(Exception):
    """A failure to report: exit code, stable ``code``, message and extra JSON fields."""

    def __init__(self, exit_code: int, code: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.exit_code, self.code, self.message, self.fields = exit_code, code, message, fields


def plain(value: Any) -> Any:
    """``value`` as JSON values: mappings become objects, tuples, lists and sets arrays.

    A verified session's claims are read-only mappings of tuples; ``json.dumps`` would print
    them as their Python ``repr`` (``"{'organization': (), ...}"``) rather than JSON.
    """
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((plain(item) for item in value), key=str)
    return value


def dumps(value: Any, *, indent: int | None = None) -> str:
    """``value`` as JSON (keys sorted); anything JSON has no value for is shown as text."""
    return json.dumps(plain(value), indent=indent, sort_keys=True, default=str)


class Output:
    """Where a command writes: verdicts to ``out``, diagnostics to ``err``; with ``--json``
    a failure is a verdict too and goes to ``out``."""

    def __init__(self, out: TextIO, err: TextIO, as_json: bool) -> None:
        self.out, self.err, self.as_json = out, err, as_json

    def result(self, data: Mapping[str, Any], text: str | Callable[[], str]) -> None:
        """Write a result: ``data`` as JSON with ``--json``, else ``text``."""
        if self.as_json:
            self.out.write(dumps(data) + "\n")
        else:
            self.out.write(text if isinstance(text, str) else text())
        self.out.flush()

    def progress(self, text: str) -> None:
        """Part of a result shown as it happens; with ``--json`` the final result holds it."""
        if not self.as_json:
            self.out.write(text)
            self.out.flush()

    def note(self, text: str) -> None:
        """A diagnostic for people, on ``err`` (with ``--json`` too: ``out`` stays JSON)."""
        self.err.write(text)
        self.err.flush()

    def fail(self, failure: Failure) -> int:
        """Report ``failure``: ``{"error": {...}}`` on ``out`` with ``--json``, else one line
        on ``err``; returns its exit code."""
        if self.as_json:
            error = {"code": failure.code, "message": failure.message, **failure.fields}
            self.out.write(dumps({"error": error}) + "\n")
            self.out.flush()
        else:
            self.err.write(f"wacht-auth: {failure.code}: {failure.message}\n")
            self.err.flush()
        return failure.exit_code


# -- time and token display ----------------------------------------------------------------------


def relative(seconds: float) -> str:
    """``"in 5 min"`` / ``"3 h ago"`` for a time ``seconds`` from now."""
    size = abs(seconds)
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if size >= length:
            amount = f"{size / length:.0f} {unit}"
            break
    else:
        amount = f"{size:.0f} s"
    return f"in {amount}" if seconds > 0 else f"{amount} ago" if seconds < 0 else "now"


def times(claims: Mapping[str, Any], now: float) -> dict[str, dict[str, Any]]:
    """``iat``, ``nbf`` and ``exp`` in UTC and relative to ``now`` (what is present)."""
    out: dict[str, dict[str, Any]] = {}
    for name in ("iat", "nbf", "exp"):
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out[name] = {"value": value, "utc": None, "relative": "not a number"}
            continue
        try:
            utc = datetime.fromtimestamp(value, timezone.utc)
        except (OverflowError, OSError, ValueError):
            out[name] = {"value": value, "utc": None, "relative": "out of range"}
            continue
        out[name] = {
            "value": value,
            "utc": utc.isoformat().replace("+00:00", "Z"),
            "seconds_from_now": round(value - now, 3),
            "relative": relative(value - now),
        }
    return out


def times_text(found: Mapping[str, Mapping[str, Any]]) -> str:
    """``found`` (from :func:`times`) as indented lines."""
    labels = {"iat": "issued (iat)", "nbf": "not before (nbf)", "exp": "expires (exp)"}
    lines = []
    for name, info in found.items():
        when = info["utc"] or repr(info["value"])
        lines.append(f"  {labels[name]:<18}  {when}  ({info['relative']})\n")
    return "".join(lines)


def b64_json(segment: str, what: str) -> Any:
    """A base64url JSON segment of a compact JWS, or a ``token_malformed`` failure."""
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise Failure(
            EXIT_REJECTED, "token_malformed", f"the {what} is not base64url JSON"
        ) from error


def unverified_claims(token: str) -> Mapping[str, Any] | None:
    """The payload of ``token`` when it decodes to an object, else ``None`` (for display
    only: nothing is checked)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = b64_json(parts[1], "payload")
    except Failure:
        return None
    return claims if isinstance(claims, dict) else None


def read_token(value: str) -> str:
    """The token argument; ``-`` reads standard input; a ``Bearer`` prefix is dropped."""
    token = sys.stdin.read() if value == "-" else value
    token = token.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return token
