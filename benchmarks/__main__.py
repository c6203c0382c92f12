"""``python -m benchmarks``: run the core and framework tables and print them.

Targets are informative: the exit status is 0 whether they are met or not (timings depend on
the machine and on what else runs on it); a benchmark whose set-up fails exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata

from ._harness import CLOCKS, Plan, Report, set_clock

SECTIONS = ("core", "asgi", "oauth", "django", "flask", "gateway", "webhooks")
#: Full run: under a minute of CPU on the 2-core development machine. Quick: a few seconds.
#: Many short rounds rather than a few long ones: the median then shrugs off the rounds that
#: another process's burst of work slowed down.
FULL = {"core": Plan(rounds=15, ops=300), "web": Plan(rounds=15, ops=250)}
QUICK = {"core": Plan(rounds=5, ops=100), "web": Plan(rounds=5, ops=100)}
_FRAMEWORKS = {
    "asgi": ("benchmarks.asgi", "wacht_auth.integrations.asgi"),
    "oauth": ("benchmarks.asgi_oauth", "wacht_auth.integrations.asgi"),
    "django": ("benchmarks.wsgi_django", "wacht_auth.integrations.django"),
    "flask": ("benchmarks.wsgi_flask", "wacht_auth.integrations.flask"),
    "gateway": ("benchmarks.gateway", "httpx"),
}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    """One paragraph naming the machine and the versions the figures depend on."""
    from cryptography.hazmat.backends.openssl import backend

    versions = ", ".join(
        f"{name} {_version(name)}"
        for name in ("wacht-auth", "cryptography", "PyJWT", "starlette", "Django", "Flask")
    )
    return (
        f"Machine: {_cpu_model()} ({platform.machine()}), {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}\n"
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{backend.openssl_version_text()}\n"
        f"{versions}\n"
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run(sections: Sequence[str], quick: bool, out: Callable[[Report], None]) -> list[str]:
    """Run ``sections``; hand every report to ``out``; return the targets missed."""
    plans = QUICK if quick else FULL
    missed: list[str] = []

    def keep(report: Report) -> None:
        out(report)
        missed.extend(
            f"{report.title.split(':')[0]}: {t.label}" for t in report.targets if not t.met
        )

    if "core" in sections:
        from . import core

        for alg in core.ALGORITHMS:
            keep(core.bench(alg, plans["core"]))
        keep(core.bench_oauth(plans["core"]))

    if "webhooks" in sections:
        from . import webhooks

        keep(webhooks.bench(plans["core"]))

    wanted = [s for s in SECTIONS[1:] if s in sections and s in _FRAMEWORKS]
    if wanted:
        from ._web import Fixture

        fixture = Fixture.create(plans["web"])
        try:
            for section in wanted:
                module_name, adapter = _FRAMEWORKS[section]
                try:
                    importlib.import_module(adapter)
                except ImportError as exc:
                    print(f"{section}: skipped, the adapter is not available ({exc})\n")
                    continue
                module = importlib.import_module(module_name)
                keep(module.bench(fixture, plans["web"]))
        finally:
            fixture.stop()
    return missed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="wacht-auth speed, against the floor and PyJWT"
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds and operations")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall: time.perf_counter_ns (default); cpu: this thread's CPU time, steadier on a "
        "machine other processes keep busy",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        help="run only this section (repeatable); default: all",
    )
    args = parser.parse_args(argv)
    sections = args.only or list(SECTIONS)
    set_clock(args.clock)
    print(machine())
    clock = "time.perf_counter_ns" if args.clock == "wall" else "time.thread_time_ns (CPU)"
    print(f"Clock: {clock}; load average at start: {_load()}\n")
    started, cpu_started = time.perf_counter(), time.process_time()
    missed = run(sections, args.quick, Report.print)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(f"Targets missed: {len(missed)}" + "".join(f"\n  {m}" for m in missed))
    print(
        f"Total time: {elapsed:.0f} s; CPU share this process got: {100 * cpu / elapsed:.0f}%; "
        f"load average at end: {_load()}"
    )
    print("(targets are informative: the exit status is 0 either way)")
    return 0


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
