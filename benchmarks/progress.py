"""The sweep-level progress line: runs done, skipped, failed, remaining, estimated time left.

Lightning's bar shows one fit; a sweep of a hundred runs also needs to say where it stands. Jobs
may run in this process (basic launcher), in reused worker processes (joblib) or on other
machines (submitit), so the state is a small append-only log in the sweep folder rather than a
variable: the sweeper writes the plan (how many jobs, when it started, each job's regime) and
every job appends a line when it starts and one when it ends. A line is far shorter than
``PIPE_BUF``, so appends from parallel jobs on one file system do not interleave.

The time left is estimated per job still to run, not from the overall rate. A default sweep's
first jobs build the shared backbones (a 33 s linear probe whose own work takes 0.2 s), so the
overall rate after its first job promised 1 h 36 min for a sweep that had 3.5 min to go. So a
job's time is split into its recurring part (its regime's mean, builds left out) and the stages
it builds: the sweeper plans which job is the first to need each cached stage
(``benchmarks/schedule.py``) and writes that into the plan, and a job still to run costs its
regime's mean plus, per stage it is planned to build, the mean build time of that stage's
planned builders that ended (a builder that found its stage cached adds 0, so a resumed sweep
corrects itself). Leaving every build out as "one-off" said "about 1m24s left" in the forgetting
study with 7 runs of 1.5 min to go: every job there builds its own continued stages. The sum is
divided by the number of jobs seen running at once.

A regime with no finished run yet counts at the mean of finished runs of regimes that declare
the same stage nodes (``benchmarks.regimes.READS``, written into the plan), else at the mean of
all finished runs. Counting it as zero said "at least 3s left" in a default sweep whose cheap
probes had finished first, with every fine-tuning still to run. Until every stage still to
build has a finished builder, the line says "at least".
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from common.records import RunRecord

LOG_NAME = ".progress.tsv"
OUTCOMES = ("ok", "failed", "skipped", "error")


@dataclass(frozen=True)
class Planned:
    """A job still to run: its regime, the cached stages it is planned to build, its folder.

    ``reads``: the stage nodes its regime declares (None: not known), which say what a regime
    with no finished run yet is like.
    """

    kind: str
    builds: tuple[str, ...] = ()
    job: str = ""  # the job folder's name: matches its end line to this plan line
    reads: tuple[str, ...] | None = None

    def line(self) -> str:
        """This job's ``todo`` line of the log."""
        reads = "" if self.reads is None else "\t" + ",".join(self.reads)
        return f"todo\t{self.kind}\t{','.join(self.builds)}\t{self.job}{reads}\n"


def _planned(kinds: Iterable[str | Planned]) -> list[Planned]:
    return [k if isinstance(k, Planned) else Planned(k) for k in kinds]


def start(sweep_dir: Path, total: int, skipped: int, kinds: Iterable[str | Planned] = ()) -> None:
    """Begin a fresh log for one sweep invocation; finished jobs left out count as skipped.

    ``kinds`` are the jobs still to run: a regime alone, or a :class:`Planned` job.
    """
    sweep_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"plan\t{total}\t{time.time():.3f}\n", *["skipped\n"] * skipped]
    lines += [p.line() for p in _planned(kinds)]
    (sweep_dir / LOG_NAME).write_text("".join(lines))


def _append(sweep_dir: Path, line: str) -> None:
    path = sweep_dir / LOG_NAME
    if path.exists():  # no plan: a job launched by something other than our sweeper
        with path.open("a") as fh:
            fh.write(line)


def add_todo(sweep_dir: Path, kinds: Iterable[str | Planned]) -> None:
    """A later batch's jobs to run."""
    for planned in _planned(kinds):
        _append(sweep_dir, planned.line())


def job_started(sweep_dir: Path) -> None:
    """A job began (how many run at once is read from these)."""
    _append(sweep_dir, "start\n")


def job_ended(
    sweep_dir: Path,
    outcome: str,
    kind: str = "",
    seconds: float = math.nan,
    oneoff: float | None = None,
    job: str = "",
    built: dict[str, float] | None = None,
) -> None:
    """Append one job's outcome (one of :data:`OUTCOMES`), regime, run time and build times.

    ``built``: seconds per cached stage this job built (:func:`build_seconds`); ``oneoff``, the
    part of ``seconds`` that is not its regime's recurring work, defaults to their sum.
    """
    assert outcome in OUTCOMES, outcome
    built = built or {}
    oneoff = sum(built.values()) if oneoff is None else oneoff
    stages = ",".join(f"{stage}={value:.3f}" for stage, value in built.items())
    _append(sweep_dir, f"{outcome}\t{kind}\t{seconds:.3f}\t{oneoff:.3f}\t{job}\t{stages}\n")


def build_seconds(record: RunRecord) -> dict[str, float]:
    """Per cached stage, the seconds this run spent building it (what no cache hit saved)."""
    compute = record.compute or {}
    return {
        key.removesuffix("_seconds_full"): value
        - compute.get(key.replace("_seconds_full", "_seconds_saved"), 0.0)
        for key, value in compute.items()
        if key.endswith("_seconds_full") and isinstance(value, int | float)
    }


@dataclass(frozen=True)
class Progress:
    """Counts and timings of one sweep invocation, read back from its log."""

    total: int
    started: float
    counts: dict[str, int]
    pending: list[Planned] = field(default_factory=list)  # planned jobs that have not ended
    done: dict[str, list[float]] = field(default_factory=dict)  # regime -> recurring seconds
    builds: dict[str, list[float]] = field(default_factory=dict)  # stage -> planned builders'
    concurrency: int = 1  # the most jobs seen running at once
    declared: dict[str, tuple[str, ...]] = field(default_factory=dict)  # regime -> its reads

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

        Per job still to run: its regime's mean run time without builds (:meth:`recurring`),
        plus the mean build time of each stage it is planned to build; the sum over the jobs
        seen running at once. A stage with no finished builder yet counts as zero, so the figure
        is then a lower bound (said as "at least"). Before any run has finished with a timing
        (say every one so far failed), the overall rate of the jobs that ended.
        """
        if not any(self.done.values()):
            ran = self.finished - self.counts.get("skipped", 0)
            return None if ran == 0 else ((now - self.started) / ran * self.remaining, False)
        left, bound = 0.0, False
        for job in self.pending:
            left += self.recurring(job.kind)
            for seen in (self.builds.get(s) for s in job.builds):
                if seen:
                    left += statistics.fmean(seen)
                else:
                    bound = True
        return left / self.concurrency, bound

    def recurring(self, kind: str) -> float:
        """A regime's mean run time without builds; for one not seen yet, that of its likes.

        Its likes are the finished runs of regimes that declare the same stage nodes, else every
        finished run. Needs at least one finished run.
        """
        if self.done.get(kind):
            return statistics.fmean(self.done[kind])
        reads = self.declared.get(kind)
        alike = [s for k, runs in self.done.items() if self._alike(k, reads) for s in runs]
        return statistics.fmean(alike or [s for runs in self.done.values() for s in runs])

    def _alike(self, kind: str, reads: tuple[str, ...] | None) -> bool:
        return reads is not None and self.declared.get(kind) == reads

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


def _pop(pending: list[Planned], kind: str, job: str) -> Planned | None:
    """The plan line of an ended job: by its folder, else the first of its regime."""
    for match in (lambda p: job != "" and p.job == job, lambda p: p.kind == kind):
        found = next((p for p in pending if match(p)), None)
        if found is not None:
            pending.remove(found)
            return found
    return None


def _built(text: str) -> dict[str, float]:
    pairs = (item.split("=") for item in text.split(",") if item)
    return {stage: float(value) for stage, value in pairs}


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
    pending: list[Planned] = []
    done: dict[str, list[float]] = {}
    builds: dict[str, list[float]] = {}
    declared: dict[str, tuple[str, ...]] = {}
    running = concurrency = 0
    for line in lines[1:]:
        word, *rest = line.split("\t")
        if word == "todo" and rest:
            planned = _todo(rest)
            pending.append(planned)
            if planned.reads is not None:
                declared[planned.kind] = planned.reads
        elif word == "start":
            running += 1
            concurrency = max(concurrency, running)
        elif word in counts:
            counts[word] += 1
            if word == "skipped" and not rest:
                continue  # left out by the sweeper: never started
            running = max(running - 1, 0)
            kind, seconds, oneoff, job, built = (rest + ["", "nan", "0", "", ""])[:5]
            planned = _pop(pending, kind, job)
            recurring = float(seconds) - float(oneoff)
            if word != "ok" or not math.isfinite(recurring):
                continue
            done.setdefault(kind, []).append(max(recurring, 0.0))
            for stage in planned.builds if planned else ():
                builds.setdefault(stage, []).append(_built(built).get(stage, 0.0))
    at_once = max(concurrency, 1)
    return Progress(int(total), float(started), counts, pending, done, builds, at_once, declared)


def _todo(fields: list[str]) -> Planned:
    """A ``todo`` line's job; its ``reads`` is None in a log written without them."""
    kind, stages, job = (fields + ["", ""])[:3]
    reads = tuple(s for s in fields[3].split(",") if s) if len(fields) > 3 else None
    return Planned(kind, tuple(s for s in stages.split(",") if s), job, reads)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
