"""The sweep-level progress line: runs done, skipped, failed, remaining, estimated time left.

Lightning's bar shows one fit; a sweep of a hundred runs also needs to say where it stands. Jobs
may run in this process (basic launcher), in reused worker processes (joblib) or on other
machines (submitit), so the state is a small append-only log in the sweep folder rather than a
variable: the sweeper writes the plan (how many jobs, when it started) and every job appends one
line when it ends. A line is far shorter than ``PIPE_BUF``, so appends from parallel jobs on one
file system do not interleave.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

LOG_NAME = ".progress.tsv"
OUTCOMES = ("ok", "failed", "skipped", "error")


def start(sweep_dir: Path, total: int, skipped: int) -> None:
    """Begin a fresh log for one sweep invocation; finished jobs left out count as skipped."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"plan\t{total}\t{time.time():.3f}\n", *["skipped\n"] * skipped]
    (sweep_dir / LOG_NAME).write_text("".join(lines))


def job_ended(sweep_dir: Path, outcome: str) -> None:
    """Append one job's outcome (one of :data:`OUTCOMES`)."""
    assert outcome in OUTCOMES, outcome
    path = sweep_dir / LOG_NAME
    if path.exists():  # no plan: a job launched by something other than our sweeper
        with path.open("a") as fh:
            fh.write(f"{outcome}\n")


@dataclass(frozen=True)
class Progress:
    """Counts of one sweep invocation, read back from its log."""

    total: int
    started: float
    counts: dict[str, int]

    @property
    def finished(self) -> int:
        """Jobs that ended, whatever their outcome."""
        return sum(self.counts.values())

    @property
    def remaining(self) -> int:
        """Jobs of the plan that have not ended yet."""
        return max(self.total - self.finished, 0)

    def eta_seconds(self, now: float) -> float | None:
        """Time left at the rate of the jobs that actually ran (skips are free); None before one."""
        ran = self.finished - self.counts.get("skipped", 0)
        if ran == 0:
            return None
        return (now - self.started) / ran * self.remaining

    def line(self, now: float) -> str:
        """The one-line status a user reads between runs."""
        c = self.counts
        eta = self.eta_seconds(now)
        left = "unknown" if eta is None else _duration(eta)
        return (
            f"sweep: {self.finished}/{self.total} runs finished ({c.get('ok', 0)} ok, "
            f"{c.get('skipped', 0)} skipped, {c.get('failed', 0) + c.get('error', 0)} failed), "
            f"{self.remaining} remaining, about {left} left"
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
    for line in lines[1:]:
        if line in counts:
            counts[line] += 1
    return Progress(int(total), float(started), counts)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
