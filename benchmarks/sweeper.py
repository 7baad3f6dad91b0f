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

Private API, kept on purpose: ``BasicSweeper`` lives in ``hydra._internal`` (Hydra 1.3 has no
public home for its stock sweeper). Subclassing it keeps Hydra's own override parsing, sweep
product, ``max_batch_size`` chunking and ``multirun.yaml``, and adds only the skip; writing a
sweeper against the public ``Sweeper`` interface would copy those 100 lines. What this class
relies on (``sweep`` calls ``get_job_batch``, then ``validate_batch_is_legal`` and
``launcher.launch`` with that batch; ``overrides`` holds the batches, ``batch_index`` counts the
ones handed out) is pinned by ``tests/test_sweep_contracts.py``, so a Hydra upgrade that changes
it fails there first. The skip it buys: re-running a finished 105-run sweep took 22 s, 15 of
them composing the finished jobs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # see the docstring
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from benchmarks import outcome, preflight, progress
from benchmarks.cleanup import remove_with_empty_parents
from benchmarks.composing import GroupCachedCompose
from benchmarks.config import ConfigError, conf_fingerprint, job_dirname
from benchmarks.regimes import READS
from benchmarks.schedule import builders_first, planned_builds, regime_of
from common.records import RECORD_NAME, finished_record

log = logging.getLogger("hydra.regimebench")  # the parent process only configures "hydra"


class ResumingSweeper(BasicSweeper):
    """BasicSweeper whose batches leave out jobs with a matching finished record."""

    def _job_dir(self, overrides: Sequence[str]) -> Path:
        cfg = self.config.hydra
        name = override_dirname(overrides, cfg.job.config.override_dirname)
        return Path(cfg.sweep.dir) / job_dirname(name)

    def _finished(self, overrides: Sequence[str]) -> bool:
        rec = finished_record(self._job_dir(overrides) / RECORD_NAME)
        if rec is None:
            return False
        job = rec.job
        return (
            sorted(job.get("overrides", [])) == sorted(overrides)
            and job.get("conf_fingerprint") == conf_fingerprint()
        )

    def get_job_batch(self) -> Sequence[Sequence[str]]:
        """The next batch without its finished jobs (they still count in the report)."""
        first = self.batch_index == 0
        batch = super().get_job_batch()
        todo = builders_first(
            [job for job in batch if not self._finished(job)], self.config.regime.name
        )
        skipped = len(batch) - len(todo)
        prewarm = getattr(self.launcher, "prewarm", None)  # benchmarks/launcher.py
        if todo and prewarm is not None:
            try:
                prewarm()  # workers import torch while validate_batch_is_legal composes the jobs
            except ConfigError as err:  # e.g. hydra.launcher.n_jobs=0
                self._stop(str(err))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        default = self.config.regime.name
        kinds = []
        for job, builds in zip(todo, planned_builds(todo, default), strict=True):
            kind = regime_of(job, default)
            kinds.append(progress.Planned(kind, builds, self._job_dir(job).name, READS.get(kind)))
        if first:
            total = sum(len(b) for b in self.overrides)
            progress.start(sweep_dir, total, skipped, kinds)
        else:
            for _ in range(skipped):
                progress.job_ended(sweep_dir, "skipped")
            progress.add_todo(sweep_dir, kinds)
        if skipped:
            log.info(
                "skip %d finished runs (ok records, same overrides and config files); %d to run",
                skipped,
                len(todo),
            )
        return todo

    def sweep(self, arguments: list[str]) -> Any:
        """Run every job (Hydra's loop); note the failed ones for the console script's exit."""
        returns = super().sweep(arguments)
        outcome.note_sweep(returns, RECORD_NAME)
        return returns

    def _stop(self, message: str) -> NoReturn:
        """One line, exit 2, and no sweep folder left behind that holds nothing else."""
        _remove_empty_sweep_dir(Path(self.config.hydra.sweep.dir))
        print(f"regimebench: error: {message}", file=sys.stderr)
        sys.exit(2)

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Compose every job (as Hydra does) and validate it before any run trains.

        A bad value stops the sweep with one line naming the job, the key, the value and what
        is allowed. That includes what only the data can say (a budget larger than a class, a
        folder without images): each distinct job's domains are built here, once.
        """
        loader = self.hydra_context.config_loader
        compose = getattr(loader, "_regimebench_compose", loader.load_sweep_config)
        in_workers = getattr(self.launcher, "check_jobs", None)  # benchmarks/launcher.py
        if in_workers is not None:
            composed, failure = in_workers(batch)
        else:
            fast = GroupCachedCompose(loader)  # Hydra's compose once per group choice
            composed, failure = preflight.check_jobs(fast, self.config, batch)
        if failure is not None:
            self._stop(failure[1])
        if type(self.launcher).__name__ != "BasicLauncher":  # the jobs decode their own data
            preflight.release()

        # Hydra composes every job twice: here, and again in the launcher (0.07-0.13 s each,
        # depending on the CPU: 7-14 s of a 105-run sweep). The launcher gets the config
        # composed here, once.
        def load_sweep_config(master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
            cfg = composed.pop(tuple(sweep_overrides), None)
            if cfg is None or master_config is not self.config:
                return compose(master_config=master_config, sweep_overrides=sweep_overrides)
            return cfg

        # By name: Hydra's plugin scan may load a second copy of the class. ParallelLauncher
        # hands each worker its config; other launchers pickle the loader to their workers
        # and compose there. For Hydra's BasicLauncher (in hydra._internal) the loader's
        # load_sweep_config is replaced on this one loader object: BasicLauncher has no hook
        # for a composed config, and it calls exactly that method once per job, which
        # tests/test_sweep_contracts.py pins.
        use_composed = getattr(self.launcher, "use_composed", None)
        if use_composed is not None:
            use_composed(composed)
        elif type(self.launcher).__name__ == "BasicLauncher":
            loader._regimebench_compose = compose  # noqa: SLF001
            loader.load_sweep_config = load_sweep_config


def override_dirname(overrides: Sequence[str], settings: DictConfig) -> str:
    """A job's ``hydra.job.override_dirname`` from its overrides alone, before composition.

    Hydra's rule (its ``get_overrides_dirname``, in ``hydra._internal``), through the public
    parser: each override's own text unless its key is excluded or under ``hydra``, sorted,
    joined by ``item_sep``, every ``=`` written as ``kv_sep``. ``settings`` is
    ``hydra.job.config.override_dirname``; ``tests/test_sweep_contracts.py`` checks the result
    against the value Hydra composes.
    """
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    exclude = set(settings.exclude_keys)
    kept = (o for o in parsed if o.key_or_group not in exclude and not o.is_hydra_override())
    lines = sorted(str(o.input_line) for o in kept)
    return settings.item_sep.join(lines).replace("=", settings.kv_sep)


def _remove_empty_sweep_dir(sweep_dir: Path) -> None:
    """Undo what Hydra wrote before validation when the folder holds nothing else."""
    leftovers = {"multirun.yaml", progress.LOG_NAME}
    if sweep_dir.is_dir() and all(p.name in leftovers for p in sweep_dir.iterdir()):
        remove_with_empty_parents(sweep_dir)
