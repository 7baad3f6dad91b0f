"""Hydra callbacks: a progress line after every job of a sweep, and the report when it ends."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from benchmarks import progress
from common.records import RECORD_NAME, finished_record

log = logging.getLogger("regimebench")


class BuildReport(Callback):
    """Write ``<sweep dir>/report/`` from the sweep's records at the end of ``-m``."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Build the report; a report failure is logged, never hides the finished runs."""
        from reports.build import build_report, is_up_to_date

        sweep_dir = Path(config.hydra.sweep.dir)
        if is_up_to_date([sweep_dir], sweep_dir / "report"):  # a re-run that only skipped
            print(f"report (up to date): {sweep_dir / 'report' / 'index.html'}")
            return
        try:
            index = build_report([sweep_dir], sweep_dir / "report")
        except Exception:  # noqa: BLE001
            log.exception("the report failed; rerun: regimebench-report %s", sweep_dir)
            return
        print(f"report: {index}")


class SweepProgress(Callback):
    """After each job of a multirun: runs finished, skipped, failed, remaining and time left.

    Runs in the job's process (the sweep's own with the basic launcher, a worker with joblib, the
    job's log with submitit), so it reads the shared log in the sweep folder.
    """

    _started: float | None = None  # this job's start, in its own process

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Note that a job runs (the estimate divides by how many run at once)."""
        if config.hydra.mode == RunMode.MULTIRUN:
            self._started = time.perf_counter()
            progress.job_started(Path(config.hydra.sweep.dir))

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Append this job's outcome and timing, and print where the sweep stands."""
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        ok = job_return.status == JobStatus.COMPLETED
        outcome = job_return._return_value if ok else "error"  # noqa: SLF001  (no public getter)
        outcome = outcome if outcome in progress.OUTCOMES else "error"
        # The job's wall time, Hydra's own work included, and what it spent building stages.
        seconds = math.nan if self._started is None else time.perf_counter() - self._started
        job_dir = Path(config.hydra.runtime.output_dir)
        built: dict[str, float] = {}
        if outcome == "ok":
            record = finished_record(job_dir / RECORD_NAME)
            built = {} if record is None else progress.build_seconds(record)
        kind = str(config.regime.name)
        progress.job_ended(sweep_dir, outcome, kind, seconds, job=job_dir.name, built=built)
        state = progress.read(sweep_dir)
        if state is not None:
            log.info(state.line(time.time()))
