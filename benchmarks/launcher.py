"""ParallelLauncher: Hydra's joblib launcher, minus costs paid before and between jobs.

Measured on the 2-core CI machine in cold ``experiment=digits`` sweeps (2 workers):

- Each worker imports torch, Lightning and timm (about 8 s) when its first job arrives, which
  is after the sweeper has composed and validated every job. :meth:`prewarm` starts the workers
  and their imports at once.
- The sweeper composes, validates and preflights every job before any trains (0.07-0.15 s a
  job, about a minute for 400 jobs in one process). :meth:`check_jobs` does it on the workers,
  each a share of the jobs, once their imports are done.
- The joblib launcher composes every job's config a second time in its worker (0.13 s each),
  although it has just been composed to validate it. Here each job receives the config
  composed for its check (:meth:`use_composed`).

Everything else is what Hydra's joblib launcher does (its ``_core.launch``, copied rather than
imported: ``_core`` is private): loky backend, the same ``Parallel`` arguments
(the prewarm call uses them too, so that joblib reuses the same worker pool rather than starting
another), and Hydra's ``run_job``. Only Hydra's plugin scan (through ``hydra_plugins/regimebench``)
may subclass this module's class; see ``benchmarks/sweeper.py`` for why.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from joblib import Parallel, delayed, effective_n_jobs
from omegaconf import DictConfig, open_dict

from benchmarks.config import ConfigError

log = logging.getLogger(__name__)

# joblib arguments that the launcher's schema types as strings ("2*n_jobs", "auto", "1M") but that
# joblib needs as ints when they are numbers; Hydra's launcher converts the same three.
_INT_ARGS = ("pre_dispatch", "batch_size", "max_nbytes")


def joblib_args(joblib_cfg: dict[str, Any]) -> dict[str, Any]:
    """The ``Parallel`` arguments of a ``hydra.launcher`` node: number strings made ints."""
    args = dict(joblib_cfg)
    for key in _INT_ARGS:
        value = args.get(key)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            args[key] = int(value)
    args["backend"] = "loky"  # as Hydra's launcher: threads are incompatible with Hydra
    return args


def _import(module: str) -> int:
    """Runs in a worker: import the task's module (torch and all); the worker's pid."""
    importlib.import_module(module)
    return os.getpid()


def _check(
    hydra_context: HydraContext,
    master_config: DictConfig,
    singleton_state: dict[Any, Any],
    batch: list[Sequence[str]],
) -> tuple[dict[tuple[str, ...], DictConfig], tuple[tuple[str, ...], str] | None]:
    """Runs in a worker: compose, validate and preflight a share of the sweep's jobs."""
    setup_globals()
    Singleton.set_state(singleton_state)
    from benchmarks import preflight  # imports torch: the worker has it already (prewarm)
    from benchmarks.composing import GroupCachedCompose

    compose = GroupCachedCompose(hydra_context.config_loader)  # Hydra's compose per group choice
    return preflight.check_jobs(compose, master_config, batch)


def _execute(
    idx: int,
    sweep_config: DictConfig,
    hydra_context: HydraContext,
    task_function: TaskFunction,
    singleton_state: dict[Any, Any],
) -> JobReturn:
    """Hydra's ``_core.execute_job`` with the job's config already composed."""
    setup_globals()
    Singleton.set_state(singleton_state)
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    return run_job(
        hydra_context=hydra_context,
        config=sweep_config,
        task_function=task_function,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


class ParallelLauncher(JoblibLauncher):
    """The joblib launcher with warm workers and configs composed once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._composed: dict[tuple[str, ...], DictConfig] = {}
        self._warming: Iterator[int] | None = None  # the prewarm's results: worker pids

    def _parallel_args(self) -> dict[str, Any]:
        n_jobs = self.joblib.get("n_jobs")
        if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs == 0:
            raise ConfigError(
                f"hydra.launcher.n_jobs={n_jobs} is invalid; allowed: a positive int (workers), "
                "or -1 for one per core (-2 for all but one, ...)"
            )
        return joblib_args(self.joblib)

    def prewarm(self) -> None:
        """Start the workers importing the task's module; returns at once."""
        if self._warming is not None or self.task_function is None:
            return
        args = self._parallel_args()
        workers = effective_n_jobs(args["n_jobs"])
        self._warming = Parallel(**args, return_as="generator_unordered")(
            delayed(_import)(self.task_function.__module__) for _ in range(workers)
        )

    def _warmed(self) -> None:
        """Wait for the prewarm: a Parallel call must end before the pool takes the next."""
        if self._warming is not None:
            for _ in self._warming:
                pass
            self._warming = None

    def check_jobs(
        self, batch: Sequence[Sequence[str]]
    ) -> tuple[dict[tuple[str, ...], DictConfig], tuple[tuple[str, ...], str] | None]:
        """Compose, validate and preflight the jobs on the workers, each a share of them.

        Composition is Hydra's own (the loader's ``load_sweep_config``, as its joblib launcher
        calls it in each worker), once per distinct choice of config groups
        (``benchmarks/composing.py``), and each worker checks its share of the jobs. The
        workers also keep the domains they decoded for the jobs that follow. Returns the
        configs and the failure of the first job, in the sweep's order, that fails.
        """
        assert self.hydra_context is not None
        assert self.config is not None
        args = self._parallel_args()
        self._warmed()
        shares = max(1, min(effective_n_jobs(args["n_jobs"]), len(batch)))
        parts = [list(batch[i::shares]) for i in range(shares)]  # round robin: a like mix each
        state = Singleton.get_state()
        results = Parallel(**args)(
            delayed(_check)(self.hydra_context, self.config, state, part) for part in parts
        )
        composed: dict[tuple[str, ...], DictConfig] = {}
        failures = []
        for found, failure in results:
            composed.update(found)
            if failure is not None:
                failures.append(failure)
        order = {tuple(job): i for i, job in enumerate(batch)}
        first = min(failures, key=lambda f: order[f[0]], default=None)
        return composed, first

    def use_composed(self, composed: dict[tuple[str, ...], DictConfig]) -> None:
        """The configs the sweeper composed and validated, by their overrides."""
        self._composed.update(composed)

    def _config_for(self, overrides: Sequence[str]) -> DictConfig:
        cfg = self._composed.pop(tuple(overrides), None)
        if cfg is not None:
            return cfg
        assert self.hydra_context is not None
        assert self.config is not None
        return self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Hydra's joblib ``launch``, each job handed its composed config."""
        setup_globals()
        assert self.config is not None
        assert self.task_function is not None
        assert self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        args = self._parallel_args()
        self._warmed()  # done by now, as a rule: it ran while the jobs were composed
        log.info(
            "Joblib.Parallel(%s) is launching %d jobs",
            ",".join(f"{k}={v}" for k, v in args.items()),
            len(job_overrides),
        )
        log.info("Launching jobs, sweep output dir : %s", sweep_dir)
        for idx, overrides in enumerate(job_overrides):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        singleton_state = Singleton.get_state()
        runs = Parallel(**args)(
            delayed(_execute)(
                initial_job_idx + idx,
                self._config_for(overrides),
                self.hydra_context,
                self.task_function,
                singleton_state,
            )
            for idx, overrides in enumerate(job_overrides)
        )
        assert all(isinstance(run, JobReturn) for run in runs)
        return runs
