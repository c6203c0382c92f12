"""The signing-key cache of one Wacht deployment (``docs/keys.md``; ``docs/architecture.md``,
"Key caching").

Three layers, so the policy is written once and tested without a network:

* :class:`KeySetState` decides (sans-I/O): freshness, cooldown, stale-if-error. It never
  reads a clock, takes a lock or touches a socket; ``now`` is passed in.
* :func:`fetch_jwks` GETs the key set through the package's one blocking HTTP GET
  (:func:`wacht_auth._http.http_get`: one deadline over the whole fetch, no redirects, a body
  cap) and accepts only a 200.
* :class:`KeySet` glues them with a lock and a *single flight*: however many threads and
  asyncio tasks (on however many event loops) need keys at once, one fetch runs. Expired keys
  keep serving while it runs in a background thread (stale-while-revalidate); only callers
  without any usable key wait for its result. An async caller runs the fetch in a
  short-lived worker thread and awaits a future that thread resolves, so the event loop
  never blocks.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._events import emit
from ._flight import Flight
from ._http import FetchError, http_get
from .config import Config
from .errors import ConfigurationError, JWKSUnavailableError
from .keys import KeyIndex, key_from_pem

__all__ = [
    "MIN_MAX_AGE",
    "KeySet",
    "KeySetState",
    "fetch_jwks",
    "freshness",
    "load_jwks",
]

#: A server's ``Cache-Control: max-age`` may shorten freshness, but never below this, so one
#: bad header cannot turn every minute into a fetch storm.
MIN_MAX_AGE = 60.0
#: Seconds a caller waits beyond ``jwks_timeout`` for a fetch: parsing and publishing its keys.
_GRACE = 0.5
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


# --------------------------------------------------------------------------- sans-I/O policy


def freshness(max_age: float, cache_control: str | None) -> float:
    """Seconds fetched keys stay fresh: ``max_age``, or a smaller server ``max-age`` (≥ 60 s).

    A server may ask for more frequent refreshes than configured, but not so often that one
    bad header turns every minute into a fetch storm; it can never extend the configured age.
    """
    if cache_control:
        match = _MAX_AGE.search(cache_control)
        if match:
            return min(max_age, max(MIN_MAX_AGE, float(match.group(1))))
    return max_age


def load_jwks(body: bytes) -> tuple[KeyIndex, list[str], frozenset[str]]:
    """Parse a JWKS body into a key index, skip reasons and a fingerprint of the set.

    A body that is not a JSON object with a ``keys`` list, or that holds no usable key, is a
    failed fetch (it must never replace good keys) and raises :class:`FetchError`. The
    fingerprint (the canonical JSON of each entry) tells whether a new fetch changed the set.
    """
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FetchError("invalid_json", "the key server did not answer with JSON") from exc
    try:
        index, skipped = KeyIndex.from_jwks(data)
    except (ValueError, TypeError) as exc:
        raise FetchError("invalid_jwks", f"not a JWK Set: {exc}") from exc
    if not len(index):
        raise FetchError("no_usable_keys", "the JWK Set holds no usable signing key")
    entries = data.get("keys", []) if isinstance(data, dict) else []
    fingerprint = frozenset(json.dumps(e, sort_keys=True, separators=(",", ":")) for e in entries)
    return index, skipped, fingerprint


class KeySetState:
    """Freshness, cooldown and stale-if-error decisions for one deployment's keys.

    Not thread-safe and free of I/O: :class:`KeySet` calls it under its lock, tests call it
    directly with any ``now``.

    * Keys are fresh until ``fresh_until``; past that a fetch is due ("expired").
    * Fetch attempts, of any reason except manual ones, are at most one per ``cooldown``
      (failed ones included, so a dead key server is not hammered by every request).
    * While refreshes fail, the last good keys serve until ``fresh_until + stale_if_error``.
    """

    def __init__(self, *, max_age: float, cooldown: float, stale_if_error: float) -> None:
        self.max_age = max_age
        self.cooldown = cooldown
        self.stale_if_error = stale_if_error
        self.index: KeyIndex | None = None
        self.fingerprint: frozenset[str] | None = None
        self.fetched_at = -math.inf
        self.fresh_until = -math.inf
        self.next_attempt = -math.inf
        self.attempted = False
        self.generation = 0

    def is_fresh(self, now: float) -> bool:
        """Whether cached keys exist and are within their freshness lifetime."""
        return self.index is not None and now < self.fresh_until

    def usable(self, now: float) -> KeyIndex | None:
        """The keys that may serve now: fresh ones, or stale ones within stale-if-error."""
        if self.index is not None and now < self.fresh_until + self.stale_if_error:
            return self.index
        return None

    def due(self, now: float) -> str | None:
        """The reason a fetch should start now for an ordinary lookup, or ``None``."""
        if self.is_fresh(now) or now < self.next_attempt:
            return None
        if self.index is None:
            return "first_use"
        return "expired"

    def may_refresh(self, now: float) -> bool:
        """Whether an unknown-key refresh is allowed now (the cooldown has passed)."""
        return now >= self.next_attempt

    def start(self, now: float) -> None:
        """Record that a fetch starts now: the cooldown runs from here."""
        self.attempted = True
        self.next_attempt = now + self.cooldown

    def succeed(
        self, now: float, index: KeyIndex, fingerprint: frozenset[str], lifetime: float
    ) -> bool:
        """Install fetched keys; return whether they *replaced* a different key set.

        An unchanged set keeps the old :class:`KeyIndex` object, so callers comparing by
        identity (and the verified-token cache) see no change. A first load (or a load after
        :meth:`reset`) replaces nothing, so it returns ``False``.
        """
        changed = self.fingerprint is not None and fingerprint != self.fingerprint
        if fingerprint != self.fingerprint or self.index is None:
            self.index = index
            self.fingerprint = fingerprint
            self.generation += 1
        self.fetched_at = now
        self.fresh_until = now + lifetime
        return changed

    def retry_after(self, now: float) -> int:
        """Seconds until the next fetch may be tried (for ``Retry-After``)."""
        return max(1, math.ceil(self.next_attempt - now)) if now < self.next_attempt else 1

    def reset(self) -> None:
        """Forget every key and every cooldown (``invalidate``)."""
        self.index = None
        self.fingerprint = None
        self.fetched_at = self.fresh_until = self.next_attempt = -math.inf
        self.attempted = False
        self.generation += 1


# ------------------------------------------------------------- the key fetch and single flight


def fetch_jwks(url: str, *, timeout: float, max_bytes: int) -> tuple[bytes, str | None]:
    """GET ``url`` and return ``(body, Cache-Control)``, or raise :class:`FetchError`.

    ``timeout`` is one deadline for the whole fetch: name lookup, connect, TLS handshake,
    status line, headers and body, so a slow server cannot hold a caller longer. At most
    ``max_bytes + 1`` bytes are read. Only a 200 is a key set: a redirect (never followed) or
    any other status fails the fetch.
    """
    answer = http_get(url, timeout=timeout, max_bytes=max_bytes)
    if 300 <= answer.status < 400:
        raise FetchError("redirect", f"the key server redirected ({answer.status})")
    if answer.status != 200:
        raise FetchError(f"http_{answer.status}", f"the key server answered {answer.status}")
    return answer.body, answer.header("Cache-Control")


@dataclass(frozen=True)
class _Plan:
    """What a caller does after looking at the state under the lock."""

    index: KeyIndex | None = None  # use these keys now
    flight: Flight[FetchError | None] | None = None  # wait for (or, if ``own``, run) this fetch
    own: bool = False
    reason: str = ""
    background: bool = False  # run ``flight`` in a background thread, serve ``index`` now


class KeySet:
    """Keys of one deployment: lazily fetched, cached, refreshed, shared by threads and tasks.

    With a pinned ``Config.public_key`` the set is that one key and never fetches.

    Args:
        config: the deployment's settings (URL, timeouts, cache lifetimes, clock, on_event).
        on_change: called (outside any lock) whenever the key set changes or is invalidated,
            so caches derived from the keys (the verified-token cache) can be cleared.
    """

    def __init__(self, config: Config, *, on_change: Callable[[], None] | None = None) -> None:
        self.config = config
        self._on_change = on_change
        self._lock = threading.Lock()
        self._flight: Flight[FetchError | None] | None = None
        self._suppressed_window = -math.inf
        self._state = KeySetState(
            max_age=config.jwks_max_age,
            cooldown=config.jwks_cooldown,
            stale_if_error=config.jwks_stale_if_error,
        )
        self._pinned: KeyIndex | None = None
        if config.public_key is not None:
            try:
                self._pinned = KeyIndex([key_from_pem(config.public_key)])
            except ValueError as exc:  # loads as PEM, but weak or of an unsupported type
                raise ConfigurationError(
                    f"public_key cannot verify Wacht tokens: {exc} (set WACHT_JWT_KEY to the "
                    "deployment's RSA (>= 2048 bits), EC or Ed25519 public key)"
                ) from exc
        # How long after its start anyone waits for a fetch: fetch_jwks ends by jwks_timeout
        # (one deadline over lookup, connect, headers and body), plus a grace for parsing the
        # key set and publishing it.
        self._wait_for = config.jwks_timeout + _GRACE
        # A fetch running far longer than that is presumed stuck (a bug, a starved thread): it
        # is detached so that later callers may start a new one instead of waiting on it.
        self._stuck_after = 2 * self._wait_for

    # ---------------------------------------------------------------- read side

    @property
    def pinned(self) -> bool:
        """Whether this set is a pinned public key (networkless, never fetches)."""
        return self._pinned is not None

    @property
    def generation(self) -> int:
        """Increases every time the key set changes or is invalidated."""
        return self._state.generation

    def current(self) -> KeyIndex | None:
        """The fresh keys, without any I/O or locking, or ``None``."""
        if self._pinned is not None:
            return self._pinned
        state = self._state
        index = state.index
        if index is not None and self.config.clock() < state.fresh_until:
            return index
        return None

    def get(self) -> KeyIndex:
        """Keys to verify with.

        Fresh keys are returned at once. Expired keys that may still serve are returned at
        once too, while one refresh runs in a background thread (stale-while-revalidate).
        Only without any usable key does this caller fetch, or wait for the fetch running.

        Raises:
            JWKSUnavailableError: no usable keys and the key server cannot provide them.
        """
        index = self.current()
        if index is not None:
            return index
        plan = self._plan_get()
        if plan.background:
            self._spawn(plan, "wacht-auth-jwks-refresh")
        elif plan.flight is not None:
            self._run_or_wait(plan)
        return self._usable_or_raise(plan)

    async def aget(self) -> KeyIndex:
        """:meth:`get` for asyncio: a fetch runs in a worker thread, never on the loop."""
        index = self.current()
        if index is not None:
            return index
        plan = self._plan_get()
        if plan.background:
            self._spawn(plan, "wacht-auth-jwks-refresh")
        elif plan.flight is not None:
            await self._arun_or_wait(plan)
        return self._usable_or_raise(plan)

    def refresh_unknown(self, seen: KeyIndex) -> KeyIndex | None:
        """New keys after a token named an unknown ``kid`` (or no kid-less key verified it).

        At most one fetch per cooldown, shared by every caller; returns ``None`` when the
        refresh is suppressed, fails, or brings no new key set, so the caller rejects the token.
        """
        if self._pinned is not None:
            return None
        plan = self._plan_refresh(seen)
        if plan.index is not None or plan.flight is None:
            return plan.index
        self._run_or_wait(plan)
        return self._newer_than(seen)

    async def arefresh_unknown(self, seen: KeyIndex) -> KeyIndex | None:
        """:meth:`refresh_unknown` for asyncio."""
        if self._pinned is not None:
            return None
        plan = self._plan_refresh(seen)
        if plan.index is not None or plan.flight is None:
            return plan.index
        await self._arun_or_wait(plan)
        return self._newer_than(seen)

    # ---------------------------------------------------------------- operator side

    def refresh(self) -> None:
        """Fetch the keys now, bypassing the cooldown (joins a fetch already running).

        Raises:
            JWKSUnavailableError: the fetch failed (the last good keys keep serving).
        """
        self._forced("manual")

    async def arefresh(self) -> None:
        """:meth:`refresh` for asyncio."""
        await self._aforced("manual")

    def prefetch(self) -> None:
        """Load the keys eagerly (at start-up) unless fresh ones are cached.

        Raises:
            JWKSUnavailableError: the fetch failed.
        """
        if self.current() is None:
            self._forced("prefetch")

    async def aprefetch(self) -> None:
        """:meth:`prefetch` for asyncio."""
        if self.current() is None:
            await self._aforced("prefetch")

    def invalidate(self) -> None:
        """Forget the cached keys and cooldowns; the next verification fetches again."""
        if self._pinned is not None:
            return
        with self._lock:
            self._state.reset()
        emit(
            self.config.on_event,
            "jwks_invalidated",
            {"url": self.config.jwks_url},
            message="JWKS cache invalidated for %(url)s",
        )
        if self._on_change is not None:
            self._on_change()

    # ---------------------------------------------------------------- internals

    def _plan_get(self) -> _Plan:
        now = self.config.clock()
        with self._lock:
            state = self._state
            if state.is_fresh(now):
                return _Plan(index=state.index)
            stale = state.usable(now)
            if self._running() is not None:
                if stale is not None:  # someone is refreshing; serve the old keys meanwhile
                    return _Plan(index=stale)
                return _Plan(flight=self._flight)
            reason = state.due(now)
            if reason is None:
                return _Plan(index=stale)
            plan = self._start(now, reason)
            if stale is None:
                return plan  # nothing usable: this caller fetches, later ones wait for it
            # Stale-while-revalidate (docs/keys.md, "Freshness"): the old keys serve this
            # caller too, and the refresh runs behind its back.
            return _Plan(index=stale, flight=plan.flight, own=True, reason=reason, background=True)

    def _plan_refresh(self, seen: KeyIndex) -> _Plan:
        now = self.config.clock()
        with self._lock:
            state = self._state
            if state.index is not None and state.index is not seen:
                return _Plan(index=state.index)  # another caller already brought new keys
            if self._running() is not None:
                return _Plan(flight=self._flight)
            if state.may_refresh(now):
                return self._start(now, "unknown_kid")
            retry = state.retry_after(now)
            # One INFO line per cooldown window; the rest of a flood goes to DEBUG.
            first = self._suppressed_window != state.next_attempt
            self._suppressed_window = state.next_attempt
        emit(
            self.config.on_event,
            "jwks_refresh_suppressed",
            {"url": self.config.jwks_url, "retry_after": retry},
            level=logging.INFO if first else logging.DEBUG,
            message="JWKS refresh for an unknown key suppressed by the cooldown "
            "(next in %(retry_after)ss) for %(url)s",
        )
        return _Plan()

    def _running(self) -> Flight[FetchError | None] | None:
        """The fetch in progress, unless it is presumed stuck (caller holds the lock)."""
        flight = self._flight
        if flight is not None and time.monotonic() - flight.started > self._stuck_after:
            self._flight = flight = None
        return flight

    def _start(self, now: float, reason: str) -> _Plan:
        """Open a flight (caller holds the lock)."""
        self._state.start(now)
        flight = self._flight = Flight[FetchError | None](self._wait_for, None)
        return _Plan(flight=flight, own=True, reason=reason)

    def _forced(self, reason: str) -> None:
        plan = self._plan_forced(reason)
        self._run_or_wait(plan)
        self._raise_if_failed(plan)

    async def _aforced(self, reason: str) -> None:
        plan = self._plan_forced(reason)
        await self._arun_or_wait(plan)
        self._raise_if_failed(plan)

    def _plan_forced(self, reason: str) -> _Plan:
        now = self.config.clock()
        with self._lock:
            if self._running() is not None:
                return _Plan(flight=self._flight)
            return self._start(now, reason)

    def _raise_if_failed(self, plan: _Plan) -> None:
        if self._pinned is not None:
            return
        flight = plan.flight
        if flight is not None and flight.result is not None:
            raise JWKSUnavailableError(
                f"fetching the signing keys failed: {flight.result.detail}",
                retry_after=self._state.retry_after(self.config.clock()),
                url=self.config.jwks_url,
            )

    def _run_or_wait(self, plan: _Plan) -> None:
        assert plan.flight is not None
        if self._pinned is not None:
            return
        if plan.own:
            self._run(plan.flight, plan.reason)
        else:
            plan.flight.wait()

    async def _arun_or_wait(self, plan: _Plan) -> None:
        assert plan.flight is not None
        if self._pinned is not None:
            return
        if plan.own:
            self._spawn(plan, "wacht-auth-jwks-fetch")
        await plan.flight.await_()

    def _spawn(self, plan: _Plan, name: str) -> None:
        """Run the fetch of ``plan`` in a daemon thread of its own; it ends by the deadline.

        A thread of its own rather than a loop's executor: the fetch must finish (and wake
        every waiter, on every loop) even if the task that started it is cancelled, the
        executor is busy with the app's own blocking work, or that loop is shutting down.
        """
        assert plan.flight is not None
        worker = threading.Thread(
            target=self._run, args=(plan.flight, plan.reason), name=name, daemon=True
        )
        try:
            worker.start()
        except BaseException as exc:
            self._abandon(plan.flight)
            if not isinstance(exc, Exception):
                raise
            # No thread to be had (interpreter shutdown, a thread limit): a failed fetch, so
            # stale keys keep serving and a caller without keys gets jwks_unavailable.

    def _abandon(self, flight: Flight[FetchError | None]) -> None:
        """Release waiters of a fetch that could not even start."""
        with self._lock:
            if self._flight is flight:
                self._flight = None
        flight.finish(FetchError("error", "the key fetch could not be started"))

    def _usable_or_raise(self, plan: _Plan) -> KeyIndex:
        if plan.index is not None:
            return plan.index
        now = self.config.clock()
        with self._lock:
            index = self._state.usable(now)
            retry = self._state.retry_after(now)
        if index is not None:
            return index
        raise JWKSUnavailableError(
            "no signing keys are available and the key server cannot be reached",
            retry_after=retry,
            url=self.config.jwks_url,
        )

    def _newer_than(self, seen: KeyIndex) -> KeyIndex | None:
        with self._lock:
            index = self._state.usable(self.config.clock())
        return index if index is not None and index is not seen else None

    def _run(self, flight: Flight[FetchError | None], reason: str) -> None:
        """Perform the fetch of ``flight`` and publish its outcome. Never raises."""
        config = self.config
        url = config.jwks_url
        assert url is not None
        started = time.perf_counter()
        error: FetchError | None = None
        changed = False
        stale: KeyIndex | None = None
        stale_fields: dict[str, Any] = {}
        fields: dict[str, Any] = {"url": url, "reason": reason}
        try:
            try:
                body, cache_control = fetch_jwks(
                    url, timeout=config.jwks_timeout, max_bytes=config.jwks_max_bytes
                )
                index, skipped, fingerprint = load_jwks(body)
            except FetchError as exc:
                error = exc
            except Exception as exc:  # a bug or an odd library error: still just a failed fetch
                error = FetchError("error", f"{type(exc).__name__}")
            duration_ms = (time.perf_counter() - started) * 1000.0
            now = config.clock()
            with self._lock:
                state = self._state
                if error is None:
                    lifetime = freshness(config.jwks_max_age, cache_control)
                    changed = state.succeed(now, index, fingerprint, lifetime)
                    fields.update(
                        outcome="ok",
                        keys=len(index),
                        kids=sorted({k.kid for k in index.keys if k.kid is not None}),
                        skipped=skipped,
                        max_age=lifetime,
                        changed=changed,
                    )
                else:
                    stale = state.usable(now)
                    fields.update(outcome=error.outcome, error=error.detail)
                    if stale is not None:
                        stale_fields = {
                            "url": url,
                            "age": now - state.fetched_at,
                            "stale_until": state.fresh_until + state.stale_if_error,
                            "error": error.outcome,
                        }
                fields["duration_ms"] = round(duration_ms, 3)
                if self._flight is flight:
                    self._flight = None
        finally:
            if self._flight is flight:  # an unexpected failure above: never strand waiters
                with self._lock:
                    if self._flight is flight:
                        self._flight = None
            flight.finish(error)

        if error is None:
            emit(
                config.on_event,
                "jwks_fetch",
                fields,
                message="fetched JWKS %(url)s (reason %(reason)s): %(outcome)s, %(keys)s keys "
                "in %(duration_ms).1f ms",
            )
            if changed and self._on_change is not None:
                self._on_change()
        else:
            emit(
                config.on_event,
                "jwks_fetch",
                fields,
                level=logging.WARNING,
                message="fetching JWKS %(url)s (reason %(reason)s) failed: %(outcome)s "
                "(%(error)s) after %(duration_ms).1f ms",
            )
            if stale is not None:
                emit(
                    config.on_event,
                    "jwks_stale",
                    stale_fields,
                    level=logging.WARNING,
                    message="serving stale keys for %(url)s (%(age).0f s old) after a failed "
                    "refresh (%(error)s)",
                )
