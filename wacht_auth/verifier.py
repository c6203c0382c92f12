"""The verifier: a bearer token in, a verified :class:`~wacht_auth.Session` out.

``verify`` and ``averify`` share one core: every decision (parsing, key choice, signature,
the one permitted refresh, claims, caching, reporting) is made by the private methods below,
which do no I/O. The two shells differ only in how keys arrive: the sync one blocks on a key
fetch, the async one awaits it. Plain method calls rather than a coroutine-like generator:
this path runs for every new token, and a generator's send/StopIteration round trips cost
more than the rest of the glue together (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Generic, Protocol, TypeVar, cast

from ._events import LOGGER, emit
from .config import Config
from .errors import (
    ConfigurationError,
    IssuerInvalidError,
    JWKSUnavailableError,
    KeyNotFoundError,
    SignatureInvalidError,
    TokenMalformedError,
    TokenTooLargeError,
    WachtAuthError,
    shown,
)
from .keys import Key, KeyIndex
from .keyset import KeySet
from .session import Session
from .tokens import ParsedToken, check_claims, check_transport_claims, parse, peek_issuer

__all__ = ["TokenCache", "Verifier"]


class _Verified(Protocol):
    """What a verifier returns: a read-only result that carries the token's claims."""

    @property
    def claims(self) -> Mapping[str, Any]: ...


# The result type of a verifier: a Session for session tokens; the OAuth verifier
# (wacht_auth.oauth) shares this whole core and returns a Credential.
_R = TypeVar("_R", bound=_Verified)
_J = TypeVar("_J")  # what a judge makes of a token whose signature verified


def _transport(config: Config, parsed: ParsedToken) -> Mapping[str, Any]:
    """The judge of a transport token: its claims, once they pass the transport rules."""
    check_transport_claims(
        parsed.claims, issuer=config.issuer or "", now=config.clock(), leeway=config.leeway
    )
    return MappingProxyType(parsed.claims)


class _Deployment:
    """One trusted Wacht deployment: its settings and its own keys (never shared)."""

    __slots__ = ("config", "keys", "pinned")

    def __init__(self, config: Config, keys: KeySet) -> None:
        self.config = config
        self.keys = keys
        # A pinned key has no kid; a token's kid then names nothing we could fetch.
        self.pinned = keys.pinned


class _Entry(Generic[_R]):
    """A verified token remembered by :class:`TokenCache`."""

    __slots__ = ("clock", "session", "valid_from", "valid_until")

    def __init__(
        self,
        session: _R,
        valid_from: float,
        valid_until: float,
        clock: Callable[[], float],
    ) -> None:
        self.session = session
        self.valid_from = valid_from
        self.valid_until = valid_until
        self.clock = clock


class TokenCache(Generic[_R]):
    """A bounded cache of successful verifications, keyed by the exact token string
    (docs/performance.md).

    An entry is used only while ``nbf``/``iat`` - leeway <= now < ``exp`` + leeway, checked on
    every hit with the deployment's clock, so a cached token expires exactly when a fresh
    verification would fail. The cache is cleared whenever a key set changes; an insert racing
    with a clear is dropped (the ``generation`` check), so nothing verified with removed keys
    survives a rotation. When full, the oldest entry goes first: tokens live about 35 s, so
    insertion order is nearly use order, and a hit then costs one lookup and no bookkeeping.
    """

    __slots__ = ("_data", "_lock", "generation", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: dict[str, _Entry[_R]] = {}
        self._lock = threading.Lock()
        self.generation = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, token: str) -> _R | None:
        """The cached session for ``token`` if it is still within its time claims."""
        entry = self._data.get(token)  # a single C-level lookup: safe without the lock
        if entry is None:
            return None
        if entry.valid_from <= entry.clock() < entry.valid_until:
            return entry.session
        with self._lock:
            if self._data.get(token) is entry:
                del self._data[token]
        return None

    def put(self, token: str, entry: _Entry[_R], generation: int) -> None:
        """Remember ``entry`` unless the cache was cleared since ``generation`` was read."""
        with self._lock:
            if generation != self.generation:
                return
            data = self._data
            data[token] = entry
            while len(data) > self.maxsize:
                del data[next(iter(data))]  # the oldest insert (dicts keep insertion order)

    def clear(self) -> None:
        """Forget every entry (the key set changed)."""
        with self._lock:
            self.generation += 1
            self._data.clear()


def _verified(keys: Sequence[Key], parsed: ParsedToken) -> bool:
    """Whether one of ``keys`` (at most 4, rule 5) verifies the signature."""
    for key in keys:
        if key.verify(parsed.alg, parsed.signing_input, parsed.signature):
            return True
    return False


class _BaseVerifier(Generic[_R]):
    """The verification core every local verifier shares (:class:`Verifier` describes it);
    a subclass says what a token whose signature verified becomes (``_session``)."""

    def __init__(self, config: Config | Sequence[Config]) -> None:
        configs = (config,) if isinstance(config, Config) else tuple(config)
        if not configs:
            raise ConfigurationError("Verifier needs at least one Config")
        for item in configs:
            if not isinstance(item, Config):
                raise ConfigurationError(
                    f"Verifier takes Config objects, got {type(item).__name__}: build one with "
                    "wacht_auth.Config(frontend_api_url=...) or Config.from_env()"
                )
        self._configs: tuple[Config, ...] = configs
        self._cache: TokenCache[_R] = TokenCache(max(c.token_cache_size for c in configs))
        self._deployments: dict[str, _Deployment] = {}
        for item in configs:
            assert item.issuer is not None  # Config guarantees it
            if item.issuer in self._deployments:
                raise ConfigurationError(
                    f"two configs trust the same issuer {item.issuer!r}: give each deployment "
                    "one Config"
                )
            keys = KeySet(item, on_change=self._cache.clear)
            self._deployments[item.issuer] = _Deployment(item, keys)
        self._all = tuple(self._deployments.values())
        self._single: _Deployment | None = self._all[0] if len(self._all) == 1 else None
        self._max_bytes = max(c.max_token_bytes for c in configs)
        self._caching = self._cache.maxsize > 0
        self._get = self._cache.get  # bound once: cached() is on every repeated request
        # Hits are reported to on_event handlers only (never logged: they are the common
        # case); Config is frozen, so whether anyone listens is known once, here.
        self._hit_listeners = any(c.on_event is not None for c in configs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(issuers={[c.issuer for c in self._configs]!r})"

    @property
    def config(self) -> Config:
        """The (first) deployment's settings."""
        return self._configs[0]

    @property
    def configs(self) -> tuple[Config, ...]:
        """Every trusted deployment's settings, in the order given."""
        return self._configs

    # ------------------------------------------------------------------ verification

    def verify(self, token: str) -> _R:
        """Verify ``token`` and return its session; may block on a key fetch.

        Raises:
            TokenInvalidError: a subclass with the precise ``code`` (401).
            JWKSUnavailableError: no usable keys and the key server is unreachable (503).
        """
        if self._caching:
            hit = self.cached(token)
            if hit is not None:
                return hit
        return self._verify(token, self._session)

    def verify_transport(self, token: str) -> Mapping[str, Any]:
        """Check Wacht's ``__session`` transport token locally and return its claims (read
        only): the signature with the keys of the deployment its ``iss`` names, that
        ``iss``, ``sess`` and the time claims (:func:`~wacht_auth.tokens.check_transport_claims`).
        Never cached and never a session: the request layer checks a transport cookie this
        way before it exchanges it, so junk costs no exchange.

        Raises:
            TokenInvalidError: not a live transport token of a trusted deployment (401).
            JWKSUnavailableError: no usable keys (503).
        """
        return self._verify(token, _transport)

    def _verify(self, token: str, judge: Callable[[Config, ParsedToken], _J]) -> _J:
        deployment: _Deployment | None = None
        try:
            deployment, parsed, generation = self._open(token)
            keys = deployment.keys
            index = keys.current()
            if index is None:
                index = keys.get()
            session = self._check(deployment, parsed, index, judge)
            if session is None:
                newer = keys.refresh_unknown(index)
                session = self._check_refreshed(deployment, parsed, index, newer, judge)
        except WachtAuthError as exc:
            self._report(deployment, exc.code)
            raise
        except Exception as exc:  # never a 500 for bad input (verification rule 3)
            self._report(deployment, TokenMalformedError.code)
            raise TokenMalformedError("the token could not be read") from exc
        if judge is not _transport:
            self._done(deployment, parsed, cast("_R", session), generation)
        return session

    async def averify(self, token: str) -> _R:
        """:meth:`verify` for asyncio: key fetches run in a worker thread, never on the loop."""
        if self._caching:
            hit = self.cached(token)
            if hit is not None:
                return hit
        return await self._averify(token, self._session)

    async def averify_transport(self, token: str) -> Mapping[str, Any]:
        """:meth:`verify_transport` for asyncio (a key fetch runs in a worker thread)."""
        return await self._averify(token, _transport)

    async def _averify(self, token: str, judge: Callable[[Config, ParsedToken], _J]) -> _J:
        deployment: _Deployment | None = None
        try:
            deployment, parsed, generation = self._open(token)
            keys = deployment.keys
            index = keys.current()
            if index is None:
                index = await keys.aget()
            session = self._check(deployment, parsed, index, judge)
            if session is None:
                newer = await keys.arefresh_unknown(index)
                session = self._check_refreshed(deployment, parsed, index, newer, judge)
        except WachtAuthError as exc:
            self._report(deployment, exc.code)
            raise
        except Exception as exc:  # never a 500 for bad input (verification rule 3)
            self._report(deployment, TokenMalformedError.code)
            raise TokenMalformedError("the token could not be read") from exc
        if judge is not _transport:
            self._done(deployment, parsed, cast("_R", session), generation)
        return session

    def cached(self, token: object) -> _R | None:
        """The verified-token cache's answer for ``token``, or None on a miss.

        The entry's time claims are re-checked with the deployment's clock, as on every hit
        of :meth:`verify`. Never verifies anything and never does I/O, so an async adapter
        can answer a repeated token without creating a coroutine; on a miss, call
        :meth:`verify` or :meth:`averify`.
        """
        if type(token) is not str or len(token) > self._max_bytes:  # no hashing of huge input
            return None
        hit = self._get(token)
        if hit is not None and self._hit_listeners:
            self._report_hit(hit)
        return hit

    # The core, shared by both shells; no I/O below this line.

    def _open(self, token: object) -> tuple[_Deployment, ParsedToken, int]:
        """Rules 1-4: the deployment that must verify ``token`` and the parsed token, plus
        the cache generation read *before* any key is looked at (a rotation that clears the
        cache meanwhile then voids this token's insert)."""
        if type(token) is not str or not token:
            raise TokenMalformedError("the token must be a non-empty string")
        deployment = self._single or self._pick(token)
        config = deployment.config
        parsed = parse(token, max_bytes=config.max_token_bytes, algorithms=config.algorithms)
        return deployment, parsed, self._cache.generation

    def _check(
        self,
        deployment: _Deployment,
        parsed: ParsedToken,
        index: KeyIndex,
        judge: Callable[[Config, ParsedToken], _J],
    ) -> _J | None:
        """Rules 5-10 with the keys at hand; None when a refresh of the keys may help."""
        kid = None if deployment.pinned else parsed.kid
        alg = parsed.alg
        for key in index.select(alg, kid):  # at most 4 keys (rule 5)
            if key.verify(alg, parsed.signing_input, parsed.signature):
                return judge(deployment.config, parsed)
        if kid is not None and index.select(alg, kid):
            # The key the kid names exists and rejects the signature: no refresh.
            raise SignatureInvalidError()
        # Key caching: an unknown kid, or a kid-less token no cached key verifies, earns one refresh
        # (at most one per cooldown, shared by everyone).
        return None

    def _check_refreshed(
        self,
        deployment: _Deployment,
        parsed: ParsedToken,
        index: KeyIndex,
        newer: KeyIndex | None,
        judge: Callable[[Config, ParsedToken], _J],
    ) -> _J:
        """The last attempt, after the permitted refresh brought ``newer`` keys (or None)."""
        kid = None if deployment.pinned else parsed.kid
        retry = newer.select(parsed.alg, kid) if newer is not None else ()
        if not retry:
            if index.select(parsed.alg, kid):
                raise SignatureInvalidError()
            raise KeyNotFoundError(
                "no trusted signing key fits the token"
                if kid is None
                else "the token's kid names no trusted signing key"
            )
        if not _verified(retry, parsed):
            raise SignatureInvalidError()
        return judge(deployment.config, parsed)

    def _session(self, config: Config, parsed: ParsedToken) -> _R:
        """Rules 8-10 on a token whose signature verified: what it becomes."""
        raise NotImplementedError

    def _done(
        self, deployment: _Deployment, parsed: ParsedToken, session: _R, generation: int
    ) -> None:
        """Remember a verified token (until exp + leeway) and report the success."""
        config = deployment.config
        if config.token_cache_size:
            # check_claims passed: exp is a number, nbf and iat are numbers or absent.
            claims = parsed.claims
            leeway = config.leeway
            nbf, iat = claims.get("nbf"), claims.get("iat")
            start = iat if nbf is None else nbf if iat is None else max(nbf, iat)
            entry = _Entry(  # floats: a hit compares them with the clock's float
                session,
                -math.inf if start is None else float(start - leeway),
                float(claims["exp"] + leeway),
                config.clock,
            )
            self._cache.put(parsed.token, entry, generation)
        if config.on_event is not None or LOGGER.isEnabledFor(logging.DEBUG):
            self._report(deployment, "ok")

    def _pick(self, token: str) -> _Deployment:
        """The deployment that must verify ``token``: the only one, or the one its iss names."""
        if self._single is not None:
            return self._single
        if len(token) > self._max_bytes:
            raise TokenTooLargeError()
        iss = peek_issuer(token)
        deployment = self._deployments.get(iss) if iss is not None else None
        if deployment is None:
            if iss is None:  # unreadable, or no iss at all: let the parser name the fault
                first = self._configs[0]
                parse(token, max_bytes=first.max_token_bytes, algorithms=first.algorithms)
                raise IssuerInvalidError("the token has no iss claim")
            trusted = ", ".join(shown(c.issuer) for c in self._configs[:5])
            raise IssuerInvalidError(
                f"the token issuer {shown(iss)} is not a trusted Wacht deployment "
                f"(trusted: {trusted}{', ...' if len(self._configs) > 5 else ''})"
            )
        return deployment

    def _report(self, deployment: _Deployment | None, outcome: str) -> None:
        config = deployment.config if deployment is not None else self._configs[0]
        handler = config.on_event
        if handler is None and not LOGGER.isEnabledFor(logging.DEBUG):
            return
        issuer = deployment.config.issuer if deployment is not None else None
        emit(
            handler,
            "verify",
            {"outcome": outcome, "issuer": issuer, "cached": False},
            level=logging.DEBUG,
            message=None if outcome == "ok" else "token rejected: %(outcome)s (%(issuer)s)",
        )

    def _report_hit(self, session: _R) -> None:
        if len(self._all) == 1:
            config = self._configs[0]
        else:
            iss = session.claims.get("iss")
            deployment = self._deployments.get(iss) if isinstance(iss, str) else None
            config = deployment.config if deployment is not None else self._configs[0]
        handler = config.on_event
        if handler is not None:
            handler_fields = {"outcome": "ok", "issuer": config.issuer, "cached": True}
            emit(handler, "verify", handler_fields)

    # ------------------------------------------------------------------ operators

    def refresh(self) -> None:
        """Fetch every deployment's keys now, bypassing the cooldown.

        Raises:
            JWKSUnavailableError: a fetch failed (the last good keys keep serving).
        """
        errors: list[JWKSUnavailableError] = []
        for deployment in self._all:
            if deployment.keys.pinned:
                continue
            try:
                deployment.keys.refresh()
            except JWKSUnavailableError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    async def arefresh(self) -> None:
        """:meth:`refresh` for asyncio (fetches run in worker threads, concurrently)."""
        results = await asyncio.gather(
            *(d.keys.arefresh() for d in self._all if not d.keys.pinned),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def prefetch(self) -> None:
        """Load every deployment's keys now (at start-up) instead of on first use.

        Raises:
            JWKSUnavailableError: the keys of a deployment could not be fetched.
        """
        for deployment in self._all:
            deployment.keys.prefetch()

    async def aprefetch(self) -> None:
        """:meth:`prefetch` for asyncio."""
        results = await asyncio.gather(
            *(d.keys.aprefetch() for d in self._all), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def invalidate(self) -> None:
        """Forget all cached keys and verified tokens; the next request fetches again."""
        for deployment in self._all:
            deployment.keys.invalidate()
        self._cache.clear()


class Verifier(_BaseVerifier[Session]):
    """Verifies Wacht session tokens locally; one instance serves a whole process.

    Thread-safe and task-safe. Keys are fetched lazily (or with :meth:`prefetch`), cached and
    refreshed as docs/keys.md describes; successful verifications are cached by token string
    (``Config.token_cache_size``; 0 turns it off).

    Args:
        config: one deployment's :class:`~wacht_auth.Config`, or several (staging and
            production, one per tenant ...). With several, each token is routed by its
            (unverified) ``iss`` to the deployment with that issuer, then verified against
            that deployment's own keys and settings; an unknown issuer is ``issuer_invalid``
            without any fetch.

    Raises:
        ConfigurationError: no config, something that is not a ``Config``, or two configs
            with the same issuer.
    """

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Verifier:
        """A verifier for the deployment :meth:`Config.from_env` finds; ``overrides`` win."""
        return cls(Config.from_env(env, **overrides))

    def _session(self, config: Config, parsed: ParsedToken) -> Session:
        """Rules 8-10 on a token whose signature verified."""
        check_claims(
            parsed.claims,
            issuer=config.issuer or "",
            now=config.clock(),
            leeway=config.leeway,
            audience=config.audience,
            authorized_parties=config.authorized_parties,
        )
        return Session(parsed.claims, parsed.token)
