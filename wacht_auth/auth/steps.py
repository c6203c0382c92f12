"""The I/O a request's decision asks for, as values (sans-I/O, like HTTPX's auth flows).

The request layer writes its decision once, as a generator that yields these steps and is
sent their results (or thrown their :class:`~wacht_auth.WachtAuthError`); a sync loop and an
async loop in :mod:`wacht_auth.auth.decide` perform them. The twin is the loop, never the
decision.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, NamedTuple

from ..credentials import CredentialKind

__all__ = ["Check", "Exchange", "Flow", "Step", "Verify", "VerifyOAuth", "VerifyTransport"]


class Verify(NamedTuple):
    """Verify a session token; the result is its :class:`~wacht_auth.Session`."""

    token: str

    def __repr__(self) -> str:
        return "Verify(<token>)"  # never the token


class VerifyOAuth(NamedTuple):
    """Verify an OAuth JWT access token locally, against its OAuth issuer's keys; the result
    is its :class:`~wacht_auth.gateway.Credential` (``token_format="jwt"``)."""

    token: str

    def __repr__(self) -> str:
        return "VerifyOAuth(<token>)"  # never the token


class VerifyTransport(NamedTuple):
    """Check a ``__session`` transport token locally (signature, issuer, expiry) before it is
    exchanged; the result is its claims (``Verifier.verify_transport``)."""

    token: str

    def __repr__(self) -> str:
        return "VerifyTransport(<token>)"


class Check(NamedTuple):
    """Ask Wacht's gateway about an API key or opaque OAuth token; the result is a
    :class:`~wacht_auth.gateway.Checked`. ``about`` is what the gateway is told of the
    request (resource, method, client IP, user agent, required permissions)."""

    kind: CredentialKind
    token: str
    about: dict[str, Any]

    def __repr__(self) -> str:
        return f"Check({self.kind!r}, <credential>)"


class Exchange(NamedTuple):
    """Exchange a transport token at the frontend API; the result is an
    :class:`~wacht_auth.exchange.Exchanged`, or None when the session is over."""

    transport: str
    dev: bool
    client_ip: str | None

    def __repr__(self) -> str:
        return f"Exchange(dev={self.dev})"


Step = Verify | VerifyOAuth | VerifyTransport | Check | Exchange
#: A decision: yields steps, is sent each step's result, returns its answer.
Flow = Generator[Step, Any, Any]
