"""API keys through Wacht's gateway (a fake one on loopback): the cost of our layer on top of
the gateway's own round trip.

Each key request costs one gateway call (never cached: the gateway counts them), so the
figure that matters is what the middleware adds to that round trip: the same check sent with
a bare ``httpx.AsyncClient`` (kept alive, one event loop) against a Starlette request with an
API key through ``WachtMiddleware(accept=("session_token", "api_key"))``. The session-token
rows of the Starlette table run with a layer that accepts keys too, so it shows that a session
token never reaches the gateway and pays nothing for it.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from wacht_auth.integrations.asgi import WachtMiddleware
from wacht_auth.testing import FakeGateway
from wacht_auth.verifier import Verifier

from ._harness import Measured, Plan, Report, Target, measure
from ._web import USER_ID, AsgiDriver, Fixture, expect
from .asgi import _app, plain, protected

__all__ = ["bench"]

#: The middleware's share of a key request, over the bare round trip plus a no-auth request.
OVERHEAD_TARGET_US = 150.0


def bench(fixture: Fixture, plan: Plan) -> Report:
    """Measure the gateway table."""
    with FakeGateway() as gateway:
        key = gateway.add_key(owner_user_id=USER_ID)
        config = fixture.issuer.config(gateway_url=gateway.url, deployment_id="1")
        accepting = WachtMiddleware(
            _app(protected), verifier=Verifier(config), accept=("session_token", "api_key")
        )
        keyed = WachtMiddleware(
            _app(owner), verifier=Verifier(config), accept=("session_token", "api_key")
        )
        plain_app = _app(plain)
        body = json.dumps(
            {"principal": {"type": "api_key", "value": key}, "resource": "/", "method": "GET"}
        ).encode()
        driver = AsgiDriver()
        client = httpx.AsyncClient()
        try:
            expect("ours, API key", driver.call(keyed, key), 200, USER_ID.encode())
            expect("ours, session token", driver.call(accepting, fixture.token), 200)
            checks = len(gateway.checks)
            expect("ours, session token", driver.call(accepting, fixture.token), 200)
            if len(gateway.checks) != checks:
                raise RuntimeError("a session token reached the gateway: the set-up is wrong")
            n = plan.ops

            async def bare() -> None:
                for _ in range(n):
                    answer = await client.post(f"{gateway.url}/v1/authz/check", content=body)
                    answer.raise_for_status()

            def bare_round() -> int:
                driver.loop.run_until_complete(bare())
                return n

            measured = measure(
                [
                    ("plain", driver.rounds(plain_app, [fixture.token] * n)),
                    ("bare", bare_round),
                    ("key", driver.rounds(keyed, [key] * n)),
                    ("session", driver.rounds(accepting, [fixture.token] * n)),
                ],
                plan.rounds,
            )
        finally:
            driver.loop.run_until_complete(client.aclose())
            driver.close()
    return _report(plan, measured)


async def owner(request: Any) -> Any:
    from starlette.responses import PlainTextResponse

    return PlainTextResponse(request.state.wacht.owner_user_id)


def _report(plan: Plan, measured: list[Measured]) -> Report:
    m = {r.name: r for r in measured}
    plain_r, bare, key, session = m["plain"], m["bare"], m["key"], m["session"]
    overhead = key.us - bare.us - plain_r.us

    def row(label: str, r: Measured, note: str = "") -> tuple[str, str, str]:
        figures = f"{r.us:8.1f} µs/req   IQR {r.spread:4.1f}%"
        return (label, f"{r.per_second:8.0f} req/s", f"{figures}  {note}".rstrip())

    report = Report(
        f"Gateway (API keys, fake gateway on loopback): {plan.rounds} rounds x {plan.ops} "
        "requests, median"
    )
    report.rows = [
        row("no auth (Starlette)", plain_r),
        row("bare gateway round trip (httpx.AsyncClient)", bare),
        row("our middleware, API key", key, f"{overhead:+.1f} µs over round trip + no auth"),
        row("our middleware accepting keys, session token", session),
    ]
    report.targets = [
        Target("key request overhead over the round trip", max(overhead, 0.01), OVERHEAD_TARGET_US,
               False, " µs"),
    ]  # fmt: skip
    return report
