"""Webhooks: one verification of a Wacht delivery, ours against the reference library's.

The same delivery (a ``user.updated`` event of a few hundred bytes, one ``v1`` signature) is
verified by:

- **hmac floor**: ``hmac.new(key, signed content, sha256).digest()`` alone: the one HMAC any
  verifier must compute;
- **ours**: ``Receiver.verify`` without a replay guard: headers, the signature compared in
  constant time, the timestamp, the body parsed and checked as an envelope, the ``Event``;
- **ours with the replay guard**: the same with the in-process guard (one lookup);
- **reference**: ``standardwebhooks.Webhook.verify`` (headers, timestamp, signature, the body
  parsed), the Standard Webhooks reference library for Python.

The figure promised is ours over the reference: verifying more (the envelope, a typed event)
must not make a delivery noticeably dearer. The reference library is a test dependency (the
``dev`` extra); without it the table has the floor and ours only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable

from wacht_auth.testing import WebhookSigner
from wacht_auth.webhooks import Receiver, WebhookSecret

from ._harness import Measured, Plan, Report, Target, measure

__all__ = ["bench"]

#: Ours over the reference library, per verification.
REFERENCE_TARGET = 1.5


def _delivery() -> tuple[WebhookSigner, bytes, dict[str, str]]:
    signer = WebhookSigner()
    data = {
        "entity_id": 1_234_567_890_123,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "primary_email_address": "ada@example.com",
        "public_metadata": {"plan": "pro", "seats": 12},
        "updated_at": "2026-12-06T01:00:00.000Z",
    }
    delivery = signer.delivery("user.updated", data)
    return signer, delivery.body, dict(delivery.headers)


def bench(plan: Plan) -> Report:
    """Measure the webhooks table."""
    signer, body, headers = _delivery()
    ours = Receiver(signer.secret, replay_guard=False)
    guarded = Receiver(signer.secret)  # the id is never accepted: each call looks it up
    key = WebhookSecret.parse(signer.secret).key
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    n = plan.ops

    def rounds(verify: Callable[[], object]) -> Callable[[], int]:
        def run() -> int:
            for _ in range(n):
                verify()
            return n

        return run

    cases: list[tuple[str, Callable[[], int]]] = [
        ("floor", rounds(lambda: hmac.new(key, signed, hashlib.sha256).digest())),
        ("ours", rounds(lambda: ours.verify(body, headers))),
        ("guarded", rounds(lambda: guarded.verify(body, headers))),
    ]
    if ours.verify(body, headers).type != "user.updated":
        raise RuntimeError("the delivery does not verify: the set-up is wrong")
    try:
        from standardwebhooks.webhooks import Webhook
    except ImportError:
        reference = None
    else:
        reference = Webhook(signer.secret)
        if reference.verify(body, headers) != json.loads(body):
            raise RuntimeError("the reference library refuses the delivery")
        cases.append(("reference", rounds(lambda: reference.verify(body, headers))))
    measured = measure(cases, plan.rounds)
    return _report(plan, measured, len(body))


def _report(plan: Plan, measured: list[Measured], size: int) -> Report:
    m = {r.name: r for r in measured}

    def row(label: str, r: Measured, note: str = "") -> tuple[str, str, str]:
        figures = f"{r.us:8.2f} µs/op   IQR {r.spread:4.1f}%"
        return (label, f"{r.per_second:8.0f} op/s", f"{figures}  {note}".rstrip())

    report = Report(
        f"Webhooks (one {size}-byte delivery, one v1 signature): {plan.rounds} rounds x "
        f"{plan.ops} verifications, median"
    )
    report.rows = [
        row("hmac floor (the one HMAC-SHA256)", m["floor"]),
        row("ours: Receiver.verify", m["ours"], f"{m['ours'].ratio(m['floor']):.2f}x floor"),
        row("ours, with the in-process replay guard", m["guarded"]),
    ]
    if "reference" in m:
        ratio = m["ours"].ratio(m["reference"])
        report.rows.append(row("standardwebhooks.Webhook.verify", m["reference"]))
        report.targets = [Target("ours vs the reference library", ratio, REFERENCE_TARGET, False)]
    else:
        report.rows.append(("standardwebhooks.Webhook.verify", "skipped", "not installed"))
        report.targets = [
            Target("ours vs the hmac floor", m["ours"].ratio(m["floor"]), 20.0, False)
        ]
    return report
