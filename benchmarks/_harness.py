"""Timing and reporting shared by every benchmark.

Rules (docs/performance.md): ``time.perf_counter_ns``, the garbage collector off while a round runs,
every case measured for several rounds and summarised by its median. The cases of one table
are run *interleaved* (round 1 of every case, then round 2 …) so that a burst of load from
another process on the machine lands on all of them alike instead of skewing one ratio.

On a machine that other processes keep busy, wall-clock time counts the time this process
waits for a CPU. ``--clock cpu`` then times with ``time.thread_time_ns`` (CPU time of this
thread only: every benchmark runs its work on the calling thread), which is far steadier;
the run prints the load average and the CPU share it got so a reader can tell.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "CLOCKS",
    "Measured",
    "Plan",
    "Report",
    "Target",
    "measure",
    "set_clock",
    "timed_round",
]

#: The clocks a run can time with: wall clock (the default) or this thread's CPU time.
CLOCKS: dict[str, Callable[[], int]] = {
    "wall": time.perf_counter_ns,
    "cpu": time.thread_time_ns,
}
_clock: Callable[[], int] = time.perf_counter_ns


def set_clock(name: str) -> None:
    """Time every following round with the clock named ``name`` (see :data:`CLOCKS`)."""
    global _clock
    _clock = CLOCKS[name]


@dataclass(frozen=True)
class Plan:
    """How much to measure: ``rounds`` rounds of ``ops`` operations per case."""

    rounds: int
    ops: int

    def scaled(self, factor: float) -> Plan:
        """The same number of rounds with ``factor`` times the operations (at least 1)."""
        return Plan(self.rounds, max(1, int(self.ops * factor)))


@dataclass
class Measured:
    """One case: the per-round figures (nanoseconds per operation) and their median."""

    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def ns(self) -> float:
        """Median nanoseconds per operation."""
        return statistics.median(self.samples)

    @property
    def us(self) -> float:
        """Median microseconds per operation."""
        return self.ns / 1000.0

    @property
    def per_second(self) -> float:
        """Operations per second at the median."""
        return 1e9 / self.ns

    @property
    def spread(self) -> float:
        """Interquartile range of the rounds, in percent of the median (how noisy it was)."""
        if len(self.samples) < 2:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.samples, n=4)
        return 100.0 * (q3 - q1) / self.ns

    def ratio(self, other: Measured) -> float:
        """Median over rounds of this case's time divided by ``other``'s in the same round.

        The cases of a table run interleaved, so a round's figures were taken moments apart:
        pairing them cancels load that came and went between rounds, which the ratio of the
        two medians would not.
        """
        return statistics.median(a / b for a, b in zip(self.samples, other.samples, strict=True))


@dataclass(frozen=True)
class Target:
    """A promise from the issues, checked against the measured figures (informative only)."""

    label: str
    value: float
    limit: float
    higher_is_better: bool
    unit: str = "x"

    @property
    def met(self) -> bool:
        """Whether the figure meets the target."""
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    def line(self) -> str:
        """``label  value  target  PASS|MISS``, aligned."""
        op = "≥" if self.higher_is_better else "≤"
        figure = f"{self.value:.2f}{self.unit}"
        goal = f"target {op} {self.limit:g}{self.unit}"
        return f"  {self.label:<46} {figure:>10}   {goal:<16} {'PASS' if self.met else 'MISS'}"


def timed_round(run: Callable[[], int]) -> float:
    """Run ``run`` once with the collector off; ``run`` returns how many operations it did.

    Returns nanoseconds per operation.
    """
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        clock = _clock
        start = clock()
        count = run()
        elapsed = clock() - start
    finally:
        if enabled:
            gc.enable()
    return elapsed / max(count, 1)


def measure(cases: Sequence[tuple[str, Callable[[], int]]], rounds: int) -> list[Measured]:
    """Measure ``cases`` interleaved: one warm-up pass, then ``rounds`` timed passes.

    Each case is a name and a function running one round (returning its operation count).
    """
    results = [Measured(name) for name, _ in cases]
    for _, run in cases:  # warm-up: imports, caches of the interpreter, first key fetch
        run()
    for _ in range(rounds):
        for result, (_, run) in zip(results, cases, strict=True):
            result.samples.append(timed_round(run))
    return results


@dataclass
class Report:
    """A titled table of ``(label, figure, note)`` rows and the target checks under it."""

    title: str
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def print(self) -> None:
        """Print the table."""
        print(self.title)
        for label, figure, note in self.rows:
            print(f"  {label:<46} {figure:>10}   {note}".rstrip())
        for target in self.targets:
            print(target.line())
        print()
