"""The sweep-level progress line: runs done, skipped, failed, remaining, estimated time left.

Lightning's bar shows one fit; a sweep of a hundred runs also needs to say where it stands. Jobs
may run in this process (basic launcher), in reused worker processes (joblib) or on other
machines (submitit), so the state is a small append-only log in the sweep folder rather than a
variable: the sweeper writes the plan (how many jobs, when it started, each job's regime) and
every job appends a line when it starts and one when it ends. A line is far shorter than
``PIPE_BUF``, so appends from parallel jobs on one file system do not interleave.

The time left is estimated per regime, not from the overall rate. A default sweep's first jobs
build the shared backbones (a 33 s linear probe whose own work takes 0.2 s), so the overall rate
after its first job promised 1 h 36 min for a sweep that had 3.5 min to go (in `make demo`, the
per-regime "about" figures were 13-17% under the time actually left). Each job's one-off
build time (the ``*_seconds_full`` that no cache hit saved) is left out of its regime's mean,
and the sum is divided by the number of jobs seen running at once. Until every regime still to
run has a finished run, the line says "at least".
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from common.records import RunRecord

LOG_NAME = ".progress.tsv"
OUTCOMES = ("ok", "failed", "skipped", "error")


def start(sweep_dir: Path, total: int, skipped: int, kinds: Iterable[str] = ()) -> None:
    """Begin a fresh log for one sweep invocation; finished jobs left out count as skipped.

    ``kinds`` are the regimes of the jobs still to run, one per job.
    """
    sweep_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"plan\t{total}\t{time.time():.3f}\n", *["skipped\n"] * skipped]
    lines += [f"todo\t{kind}\n" for kind in kinds]
    (sweep_dir / LOG_NAME).write_text("".join(lines))


def _append(sweep_dir: Path, line: str) -> None:
    path = sweep_dir / LOG_NAME
    if path.exists():  # no plan: a job launched by something other than our sweeper
        with path.open("a") as fh:
            fh.write(line)


def add_todo(sweep_dir: Path, kinds: Iterable[str]) -> None:
    """A later batch's jobs to run (their regimes)."""
    for kind in kinds:
        _append(sweep_dir, f"todo\t{kind}\n")


def job_started(sweep_dir: Path) -> None:
    """A job began (how many run at once is read from these)."""
    _append(sweep_dir, "start\n")


def job_ended(
    sweep_dir: Path, outcome: str, kind: str = "", seconds: float = math.nan, oneoff: float = 0.0
) -> None:
    """Append one job's outcome (one of :data:`OUTCOMES`), regime, run time and build time."""
    assert outcome in OUTCOMES, outcome
    _append(sweep_dir, f"{outcome}\t{kind}\t{seconds:.3f}\t{oneoff:.3f}\n")


def oneoff_seconds(record: RunRecord) -> float:
    """Seconds a run spent building cached stages that later runs reuse (not saved by a hit)."""
    compute = record.compute
    return sum(
        value - compute.get(key.replace("_seconds_full", "_seconds_saved"), 0.0)
        for key, value in compute.items()
        if key.endswith("_seconds_full") and isinstance(value, int | float)
    )


@dataclass(frozen=True)
class Progress:
    """Counts and timings of one sweep invocation, read back from its log."""

    total: int
    started: float
    counts: dict[str, int]
    todo: Counter[str] = field(default_factory=Counter)  # regimes of the jobs to run
    done: dict[str, list[float]] = field(default_factory=dict)  # regime -> recurring seconds
    untimed: Counter[str] = field(default_factory=Counter)  # regime -> ended with no timing
    concurrency: int = 1  # the most jobs seen running at once

    @property
    def finished(self) -> int:
        """Jobs that ended, whatever their outcome."""
        return sum(self.counts.values())

    @property
    def remaining(self) -> int:
        """Jobs of the plan that have not ended yet."""
        return max(self.total - self.finished, 0)

    def eta_seconds(self, now: float) -> tuple[float, bool] | None:
        """Time left, and whether it is a lower bound; None before any job finished.

        Per regime, the mean run time without one-off builds, times its jobs still to finish,
        over the jobs seen running at once. A regime with no finished run yet counts as zero, so
        the figure is then a lower bound (said as "at least"). Before any run has finished with
        a timing (say every one so far failed), the overall rate of the jobs that ended.
        """
        samples = [s for runs in self.done.values() for s in runs]
        if not samples:
            ran = self.finished - self.counts.get("skipped", 0)
            return None if ran == 0 else ((now - self.started) / ran * self.remaining, False)
        left, bound = 0.0, False
        for kind, planned in self.todo.items():
            runs = self.done.get(kind, [])
            waiting = max(planned - len(runs) - self.untimed[kind], 0)
            if runs:
                left += waiting * statistics.fmean(runs)
            elif waiting:
                bound = True
        return left / self.concurrency, bound

    def line(self, now: float) -> str:
        """The one-line status a user reads between runs."""
        c = self.counts
        eta = self.eta_seconds(now)
        if eta is None:
            left = "about unknown"
        else:
            left = ("at least " if eta[1] else "about ") + _duration(eta[0])
        return (
            f"sweep: {self.finished}/{self.total} runs finished ({c.get('ok', 0)} ok, "
            f"{c.get('skipped', 0)} skipped, {c.get('failed', 0) + c.get('error', 0)} failed), "
            f"{self.remaining} remaining, {left} left"
        )


def read(sweep_dir: Path) -> Progress | None:
    """The progress of the current invocation, or None when there is no plan."""
    try:
        lines = (sweep_dir / LOG_NAME).read_text().splitlines()
    except OSError:
        return None
    if not lines or not lines[0].startswith("plan\t"):
        return None
    _, total, started = lines[0].split("\t")
    counts = {o: 0 for o in OUTCOMES}
    todo: Counter[str] = Counter()
    done: dict[str, list[float]] = {}
    untimed: Counter[str] = Counter()
    running = concurrency = 0
    for line in lines[1:]:
        word, *rest = line.split("\t")
        if word == "todo" and rest:
            todo[rest[0]] += 1
        elif word == "start":
            running += 1
            concurrency = max(concurrency, running)
        elif word in counts:
            counts[word] += 1
            if word == "skipped" and not rest:
                continue  # left out by the sweeper: never started
            running = max(running - 1, 0)
            kind, seconds, oneoff = (rest + ["", "nan", "0"])[:3]
            recurring = float(seconds) - float(oneoff)
            if word == "ok" and math.isfinite(recurring):
                done.setdefault(kind, []).append(max(recurring, 0.0))
            elif kind:
                untimed[kind] += 1
    return Progress(int(total), float(started), counts, todo, done, untimed, max(concurrency, 1))


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
