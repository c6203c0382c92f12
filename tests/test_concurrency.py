"""Single flight across threads, asyncio tasks and event loops (DESIGN.md §4).

The key server answers slowly (``delay``) so that every caller really arrives while the one
fetch is in flight; every wait in here is bounded.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.helpers import FakeClock
from wacht_auth.errors import WachtAuthError
from wacht_auth.session import Session
from wacht_auth.testing import Issuer
from wacht_auth.verifier import Verifier

N = 200


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
    count = 1000  # DESIGN.md §4's figure; tasks are cheap enough to test it literally
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


def test_only_the_fetching_request_waits_for_an_expiry_refresh(
    issuer: Issuer, clock: FakeClock
) -> None:
    verifier = make(issuer)
    token = issuer.token(lifetime=24 * 3600)
    verifier.verify(token)
    clock.advance(601)  # the keys expired: the next request refreshes them
    issuer.delay(1.2)
    fetcher = threading.Thread(target=verifier.verify, args=(token,), daemon=True)
    fetcher.start()
    time.sleep(0.15)  # the refresh is in flight now
    started = time.monotonic()
    assert verifier.verify(token).user_id == "user_1"  # served by the expired keys at once
    assert time.monotonic() - started < 0.6
    fetcher.join(timeout=5)
    assert issuer.fetch_count == 2


async def test_tasks_are_served_stale_keys_during_an_expiry_refresh(
    issuer: Issuer, clock: FakeClock
) -> None:
    verifier = make(issuer)
    token = issuer.token(lifetime=24 * 3600)
    await verifier.averify(token)
    clock.advance(601)
    issuer.delay(1.2)
    refresher = asyncio.create_task(verifier.averify(token))
    await asyncio.sleep(0.15)
    started = time.monotonic()
    await asyncio.wait_for(verifier.averify(token), timeout=5)
    assert time.monotonic() - started < 0.6
    await asyncio.wait_for(refresher, timeout=5)
    assert issuer.fetch_count == 2
