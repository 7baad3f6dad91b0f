"""ResumingSweeper: Hydra's basic sweeper, minus the jobs that already finished.

Hydra composes every job of a sweep twice (once to validate the batch, once to launch it), about
0.07 s each here, so re-running a finished 105-run sweep spent 15 of its 22 s composing configs
only to skip them. A job is dropped before composition when its folder holds an ``ok`` record
made from the same overrides and the same config files (``conf/`` and the schema), because
composition is a pure function of those. Anything else is launched and still checked by config
hash inside the run (``benchmarks/run.py``), so a changed config is never skipped.

Only Hydra's plugin scan (through ``hydra_plugins/regimebench``) may import this module: the
scan re-executes ``basic_sweeper``, and a subclass of an earlier ``BasicSweeper`` would then
fail Hydra's own ``super()`` call. Shared pieces therefore live in ``benchmarks.config``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from hydra._internal.config_loader_impl import get_overrides_dirname
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from benchmarks.config import conf_fingerprint
from benchmarks.records import RECORD_NAME, finished_record

log = logging.getLogger("hydra.regimebench")  # the parent process only configures "hydra"


class ResumingSweeper(BasicSweeper):
    """BasicSweeper whose batches leave out jobs with a matching finished record."""

    def _job_dir(self, overrides: Sequence[str]) -> Path:
        cfg = self.config.hydra
        parser = OverridesParser.create()
        name = get_overrides_dirname(
            overrides=parser.parse_overrides(list(overrides)),
            exclude_keys=list(cfg.job.config.override_dirname.exclude_keys),
            item_sep=cfg.job.config.override_dirname.item_sep,
            kv_sep=cfg.job.config.override_dirname.kv_sep,
        )
        return Path(cfg.sweep.dir) / name

    def _finished(self, overrides: Sequence[str]) -> bool:
        rec = finished_record(self._job_dir(overrides) / RECORD_NAME)
        if rec is None:
            return False
        job = rec.get("job") or {}
        return (
            sorted(job.get("overrides", [])) == sorted(overrides)
            and job.get("conf_fingerprint") == conf_fingerprint()
        )

    def get_job_batch(self) -> Sequence[Sequence[str]]:
        """The next batch without its finished jobs (they still count in the report)."""
        batch = super().get_job_batch()
        todo = [job for job in batch if not self._finished(job)]
        if len(todo) < len(batch):
            log.info(
                "skip %d finished runs (ok records, same overrides and config files); %d to run",
                len(batch) - len(todo),
                len(todo),
            )
        return todo
