"""The webhooks benchmark runs, for a handful of operations (no timing is asserted)."""

from __future__ import annotations

from benchmarks import webhooks
from benchmarks.__main__ import SECTIONS
from benchmarks._harness import Plan


def test_webhooks_benchmark_runs_against_the_reference_library() -> None:
    report = webhooks.bench(Plan(rounds=2, ops=3))
    labels = [label for label, _, _ in report.rows]
    assert "standardwebhooks.Webhook.verify" in labels
    assert [t.label for t in report.targets] == ["ours vs the reference library"]
    assert all(t.value > 0 for t in report.targets)
    assert "webhooks" in SECTIONS
