"""Single flight across threads, asyncio tasks and event loops (docs/keys.md, Single flight).

The key server answers slowly (``delay``) so that every caller really arrives while the one
fetch is in flight; every wait in here is bounded.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.helpers import FakeClock
from tests.test_keyset import no_fetch_outlives_its_test, until  # noqa: F401 (autouse fixture)
from wacht_auth.errors import WachtAuthError
from wacht_auth.keys import KeyIndex
from wacht_auth.keyset import KeySet
from wacht_auth.session import Session
from wacht_auth.testing import Issuer
from wacht_auth.verifier import Verifier

N = 200
#: Served "at once": far below the 3 s a caller waiting for the held refresh would take.
PROMPT = 1.0


def make(issuer: Issuer, **overrides: Any) -> Verifier:
    values: dict[str, Any] = {"jwks_timeout": 2.0, "token_cache_size": 0}
    values.update(overrides)
    return Verifier(issuer.config(**values))


def run_threads(count: int, target: Any) -> list[Any]:
    """Start ``count`` threads at once (behind a barrier) and collect results or errors."""
    barrier = threading.Barrier(count, timeout=10)
    results: list[Any] = [None] * count

    def work(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_threads_on_a_cold_cache_make_one_fetch(issuer: Issuer) -> None:
    issuer.delay(0.3)
    verifier = make(issuer)
    tokens = [issuer.token(f"user_{i}") for i in range(N)]
    results = run_threads(N, lambda i: verifier.verify(tokens[i]))
    assert all(isinstance(r, Session) for r in results), [
        r for r in results if not isinstance(r, Session)
    ][:3]
    assert [r.user_id for r in results] == [f"user_{i}" for i in range(N)]
    assert issuer.fetch_count == 1


async def test_tasks_on_a_cold_cache_make_one_fetch(issuer: Issuer) -> None:
    issuer.delay(0.3)
    verifier = make(issuer)
    count = 1000  # the documented figure; tasks are cheap enough to test it literally
    tokens = [issuer.token(f"user_{i}") for i in range(count)]
    sessions = await asyncio.wait_for(
        asyncio.gather(*(verifier.averify(token) for token in tokens)), timeout=20
    )
    assert [s.user_id for s in sessions] == [f"user_{i}" for i in range(count)]
    assert issuer.fetch_count == 1


def test_threads_and_several_event_loops_share_one_fetch(issuer: Issuer) -> None:
    issuer.delay(0.4)
    verifier = make(issuer)
    token = issuer.token()

    async def many() -> list[Session]:
        return await asyncio.gather(*(verifier.averify(token) for _ in range(50)))

    def target(i: int) -> Any:
        if i % 2:
            return asyncio.run(asyncio.wait_for(many(), timeout=10))
        return verifier.verify(token)

    results = run_threads(8, target)
    assert not [r for r in results if isinstance(r, Exception)]
    assert issuer.fetch_count == 1


async def test_fetch_does_not_block_the_event_loop(issuer: Issuer) -> None:
    issuer.delay(0.5)
    verifier = make(issuer)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        started = time.monotonic()
        await asyncio.wait_for(verifier.averify(issuer.token()), timeout=5)
        elapsed = time.monotonic() - started
    finally:
        task.cancel()
    assert elapsed >= 0.4
    assert ticks >= 15  # the loop kept running while the keys were fetched


async def test_a_cancelled_task_does_not_strand_the_others(issuer: Issuer) -> None:
    issuer.delay(0.3)
    verifier = make(issuer)
    first = asyncio.create_task(verifier.averify(issuer.token()))
    await asyncio.sleep(0.05)  # the first task owns the fetch now
    others = [asyncio.create_task(verifier.averify(issuer.token(f"u{i}"))) for i in range(20)]
    first.cancel()
    sessions = await asyncio.wait_for(asyncio.gather(*others), timeout=5)
    assert len(sessions) == 20
    assert issuer.fetch_count == 1


def test_concurrent_random_kid_flood_is_bounded(issuer: Issuer, clock: FakeClock) -> None:
    verifier = make(issuer)
    good = issuer.token()
    verifier.verify(good)
    clock.advance(31)
    issuer.delay(0.2)
    tokens = [issuer.token(headers={"kid": f"k{i}"}) for i in range(N)]

    def target(i: int) -> str:
        try:
            verifier.verify(tokens[i])
        except WachtAuthError as exc:
            return exc.code
        return "ok"

    codes = run_threads(N, target)
    assert set(codes) == {"key_not_found"}
    assert issuer.fetch_count == 2
    issuer.delay(0)
    assert verifier.verify(good).user_id == "user_1"


async def test_async_random_kid_flood_is_bounded(issuer: Issuer, clock: FakeClock) -> None:
    verifier = make(issuer)
    await verifier.averify(issuer.token())
    clock.advance(31)

    async def attempt(i: int) -> str:
        try:
            await verifier.averify(issuer.token(headers={"kid": f"k{i}"}))
        except WachtAuthError as exc:
            return exc.code
        return "ok"

    codes = await asyncio.wait_for(asyncio.gather(*(attempt(i) for i in range(N))), 10)
    assert set(codes) == {"key_not_found"}
    assert issuer.fetch_count == 2


def test_cold_cache_with_server_down_answers_everyone_quickly(issuer: Issuer) -> None:
    issuer.down()
    verifier = make(issuer)
    token = issuer.token()

    def target(i: int) -> str:
        try:
            verifier.verify(token)
        except WachtAuthError as exc:
            return exc.code
        return "ok"

    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(target, range(64)))
    assert set(codes) == {"jwks_unavailable"}
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------- stale-while-revalidate


class GatedKeyServer:
    """A loopback key server that holds every answer until :meth:`release` (at most 5 s).

    It answers with the issuer's JWK Set as it is when the gate opens (so a rotation made
    meanwhile is served) and counts the requests that reached it.
    """

    def __init__(self, issuer: Issuer) -> None:
        self.gate = threading.Event()
        self.requests = 0
        lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    owner.requests += 1
                owner.gate.wait(5)
                body = json.dumps(issuer.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up before the gate opened

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def release(self) -> None:
        self.gate.set()

    def hold(self) -> None:
        self.gate.clear()

    def __enter__(self) -> GatedKeyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gated(issuer: Issuer) -> Iterator[GatedKeyServer]:
    with GatedKeyServer(issuer) as server:
        yield server


def expired_keyset(
    issuer: Issuer, clock: FakeClock, gated: GatedKeyServer, changes: list[int] | None = None
) -> tuple[KeySet, KeyIndex]:
    """A key set whose keys were loaded, then expired; the key server now holds its answer."""
    on_change = None if changes is None else (lambda: changes.append(1))
    keys = KeySet(issuer.config(jwks_url=gated.url, jwks_timeout=3.0), on_change=on_change)
    gated.release()
    old = keys.get()
    gated.hold()
    clock.advance(601)  # past max-age, well within stale-if-error
    return keys, old


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_expired_keys_serve_threads_at_once_while_one_refresh_runs(
    issuer: Issuer, clock: FakeClock, gated: GatedKeyServer
) -> None:
    changes: list[int] = []
    keys, old = expired_keyset(issuer, clock, gated, changes)
    issuer.rotate()  # the refresh will bring a new key set
    results = run_threads(N, lambda i: timed(keys.get))
    assert all(index is old for index, _ in results)
    # Nobody waited for the key server, which is still holding its answer.
    assert max(elapsed for _, elapsed in results) < PROMPT
    until(lambda: gated.requests == 2)
    gated.release()
    until(lambda: keys.current() is not None)
    new = keys.get()
    assert new is not old
    assert changes == [1]  # the new set replaced the old one: derived caches are cleared
    assert gated.requests == 2  # N callers, exactly one refresh


async def test_expired_keys_serve_tasks_at_once_while_one_refresh_runs(
    issuer: Issuer, clock: FakeClock, gated: GatedKeyServer
) -> None:
    keys, old = expired_keyset(issuer, clock, gated)
    issuer.rotate()

    async def call() -> tuple[KeyIndex, float]:
        started = time.monotonic()
        index = await keys.aget()
        return index, time.monotonic() - started

    results = await asyncio.wait_for(asyncio.gather(*(call() for _ in range(N))), 5)
    assert all(index is old for index, _ in results)
    assert max(elapsed for _, elapsed in results) < PROMPT
    until(lambda: gated.requests == 2)
    gated.release()
    deadline = time.monotonic() + 3
    while keys.current() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert (await keys.aget()) is not old
    assert gated.requests == 2


def test_expired_keys_serve_threads_and_loops_with_one_refresh(
    issuer: Issuer, clock: FakeClock, gated: GatedKeyServer
) -> None:
    keys, old = expired_keyset(issuer, clock, gated)

    async def many() -> list[tuple[KeyIndex, float]]:
        async def call() -> tuple[KeyIndex, float]:
            started = time.monotonic()
            index = await keys.aget()
            return index, time.monotonic() - started

        return await asyncio.gather(*(call() for _ in range(20)))

    def target(i: int) -> list[tuple[KeyIndex, float]]:
        if i % 2:
            return asyncio.run(asyncio.wait_for(many(), timeout=5))
        return [timed(keys.get)]

    results = [item for items in run_threads(8, target) for item in items]
    assert len(results) == 4 + 4 * 20
    assert all(index is old for index, _ in results)
    assert max(elapsed for _, elapsed in results) < PROMPT
    until(lambda: gated.requests == 2)
    gated.release()
    until(lambda: keys.current() is not None)
    assert gated.requests == 2


def test_a_refresh_that_brings_the_same_keys_changes_nothing(
    issuer: Issuer, clock: FakeClock, gated: GatedKeyServer
) -> None:
    changes: list[int] = []
    keys, old = expired_keyset(issuer, clock, gated, changes)
    gated.release()
    assert keys.get() is old  # stale, served at once; the refresh runs behind it
    until(lambda: keys.current() is not None)
    assert keys.get() is old  # the same set: the same index, no cache cleared
    assert changes == []


def test_with_no_usable_key_callers_wait_for_the_one_fetch(
    issuer: Issuer, clock: FakeClock, gated: GatedKeyServer
) -> None:
    keys, old = expired_keyset(issuer, clock, gated)
    clock.advance(3600)  # past stale-if-error too: these keys may no longer serve
    issuer.rotate()
    released: list[float] = []

    def release() -> None:
        released.append(time.monotonic())
        gated.release()

    opener = threading.Timer(0.3, release)
    opener.start()
    try:
        results = run_threads(50, lambda i: (keys.get(), time.monotonic()))
    finally:
        opener.cancel()
    assert all(index is not old and index is results[0][0] for index, _ in results)
    assert min(returned for _, returned in results) >= released[0]  # all waited for the fetch
    assert gated.requests == 2


def test_no_request_waits_for_an_expiry_refresh(issuer: Issuer, clock: FakeClock) -> None:
    verifier = make(issuer)
    token = issuer.token(lifetime=24 * 3600)
    verifier.verify(token)
    clock.advance(601)  # the keys expired: the next request starts a refresh
    issuer.delay(1.2)
    for _ in range(3):  # the one that starts the refresh does not wait for it either
        started = time.monotonic()
        assert verifier.verify(token).user_id == "user_1"  # served by the expired keys
        assert time.monotonic() - started < 0.6
    until(lambda: issuer.fetch_count == 2)


async def test_no_task_waits_for_an_expiry_refresh(issuer: Issuer, clock: FakeClock) -> None:
    verifier = make(issuer)
    token = issuer.token(lifetime=24 * 3600)
    await verifier.averify(token)
    clock.advance(601)
    issuer.delay(1.2)
    for _ in range(3):
        started = time.monotonic()
        await asyncio.wait_for(verifier.averify(token), timeout=5)
        assert time.monotonic() - started < 0.6
    until(lambda: issuer.fetch_count == 2)
