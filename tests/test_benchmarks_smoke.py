"""The benchmarks run: each one, for a handful of operations (no timing is asserted).

``make bench`` is the real run; this only proves that every benchmark still works against the
current code (names, set-up, and the set-up checks that each measured app really verifies).
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmarks import core
from benchmarks._harness import Plan, Report, Target, measure
from benchmarks._web import Fixture

ROOT = Path(__file__).resolve().parent.parent
TINY = Plan(rounds=2, ops=3)


def _figures_are_sane(report: Report) -> None:
    assert report.rows and report.targets
    for target in report.targets:
        assert isinstance(target, Target)
        # A ratio is positive; a share (µs over a baseline) is a difference of two medians,
        # which a tiny plan's noise may push below zero: finite is what can be checked.
        assert target.value > 0 if target.unit == "x" else math.isfinite(target.value)
        assert target.line().endswith(("PASS", "MISS"))


def test_measure_runs_each_case_interleaved() -> None:
    calls: list[str] = []

    def case(name: str) -> Callable[[], int]:
        def run() -> int:
            calls.append(name)
            return 2

        return run

    results = measure([("a", case("a")), ("b", case("b"))], rounds=3)
    assert calls == ["a", "b"] * 4  # one warm-up pass, then three rounds
    assert [len(r.samples) for r in results] == [3, 3]
    assert all(r.ns >= 0 for r in results)


@pytest.mark.parametrize("alg", sorted(core.ALGORITHMS))
def test_core_benchmark_runs(alg: str) -> None:
    report = core.bench(alg, TINY)
    _figures_are_sane(report)
    assert alg[:2] in report.title


def test_core_oauth_benchmark_runs() -> None:
    report = core.bench_oauth(TINY)
    _figures_are_sane(report)
    assert "OAuth" in report.title


@pytest.fixture(scope="module")
def fixture() -> Iterator[Fixture]:
    made = Fixture.create(TINY)
    yield made
    made.stop()


def test_starlette_benchmark_runs(fixture: Fixture) -> None:
    from benchmarks import asgi

    _figures_are_sane(asgi.bench(fixture, TINY))


def test_starlette_oauth_benchmark_runs(fixture: Fixture) -> None:
    from benchmarks import asgi_oauth

    report = asgi_oauth.bench(fixture, TINY)
    _figures_are_sane(report)
    assert "OAuth" in report.title and any("PyJWKClient" in row[0] for row in report.rows)


def test_flask_benchmark_runs(fixture: Fixture) -> None:
    from benchmarks import wsgi_flask

    _figures_are_sane(wsgi_flask.bench(fixture, TINY))


def test_django_benchmark_runs() -> None:
    # A child process: the benchmark configures Django settings, which must not leak into the
    # settings the adapter tests configure in this process.
    code = (
        "from benchmarks import wsgi_django; from benchmarks._web import Fixture; "
        "from benchmarks._harness import Plan; p = Plan(rounds=2, ops=3); "
        "f = Fixture.create(p); r = wsgi_django.bench(f, p); f.stop(); r.print()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Django" in done.stdout and "req/s" in done.stdout


def test_command_line() -> None:
    from benchmarks.__main__ import machine

    assert "Python" in machine() and "OpenSSL" in machine()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "--only" in done.stdout and "--quick" in done.stdout


def test_gateway_benchmark_runs(fixture: Fixture) -> None:
    from benchmarks import gateway

    _figures_are_sane(gateway.bench(fixture, TINY))
