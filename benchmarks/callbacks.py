"""Hydra callback: when a multirun ends, build its report. It only calls the report command."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

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
