"""What the resuming sweeper and the parallel launcher rely on in Hydra and its joblib launcher.

Each test pins one behaviour a Hydra or joblib upgrade could change under them (see the module
docstrings of benchmarks/sweeper.py and benchmarks/launcher.py), so such an upgrade fails here,
by name, rather than as a sweep that re-runs finished jobs or a worker that rejects its args.
"""

import importlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
from joblib import Parallel, delayed
from omegaconf import OmegaConf

from benchmarks.config import CONF_DIR, register
from benchmarks.launcher import joblib_args
from benchmarks.sweeper import override_dirname


@pytest.mark.parametrize(
    "overrides",
    [
        ["regime=scratch", "seed=3", "budget.per_class=all"],
        ["experiment=digits", "seed=1", "regime=finetune"],  # experiment is excluded
        ["data.root='/tmp/x=y'", "+comparisons.extra=1", "train.lr=1e-3"],  # '=' in a value
        ["seed=0", "hydra.job.config.override_dirname.kv_sep=_", "threads=1"],
        ["hydra.job.config.override_dirname.item_sep=__", "seed=2", "regime=pixels"],
    ],
)
def test_override_dirname_is_the_one_hydra_composes(overrides):
    """The sweeper finds a job's folder before composing it; it must be Hydra's folder."""
    register()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    job = cfg.hydra.job
    assert override_dirname(overrides, job.config.override_dirname) == job.override_dirname


def _recorded(events: list, max_batch_size: int):
    """Hydra's basic sweeper, noting the calls the resuming sweeper overrides or wraps.

    The class is looked up now: Hydra's plugin scan re-executes its module (see
    benchmarks/sweeper.py), and a subclass of an earlier copy fails its ``super()`` call.
    """
    module = importlib.import_module("hydra._internal.core_plugins.basic_sweeper")

    class Recorded(module.BasicSweeper):
        def get_job_batch(self):
            batch = super().get_job_batch()
            events.append(("batch", self.batch_index, [list(j) for j in batch]))
            return batch

        def validate_batch_is_legal(self, batch):
            events.append(("validate", [list(j) for j in batch]))

    return Recorded(max_batch_size=max_batch_size)


class _Launcher:
    def __init__(self, events: list) -> None:
        self.events = events

    def launch(self, job_overrides, initial_job_idx):
        self.events.append(("launch", [list(j) for j in job_overrides], initial_job_idx))
        return [JobReturn(status=JobStatus.COMPLETED, _return_value=0) for _ in job_overrides]


def test_basic_sweeper_contract(tmp_path: Path):
    """Per batch: get_job_batch, then validate_batch_is_legal and launch with what it returned.

    benchmarks/sweeper.py drops finished jobs in ``get_job_batch``, counts the sweep's jobs from
    ``overrides`` (a list of batches of override lists) and tells the first batch by
    ``batch_index``; all of that is BasicSweeper's, in ``hydra._internal``.
    """
    events: list = []
    sweeper = _recorded(events, max_batch_size=2)
    sweeper.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}})
    sweeper.launcher = _Launcher(events)
    sweeper.hydra_context = SimpleNamespace(config_loader=None)
    returns = sweeper.sweep(["a=1,2,3", "b=x"])
    first, second = [["a=1", "b=x"], ["a=2", "b=x"]], [["a=3", "b=x"]]
    assert sweeper.overrides == [first, second]
    assert events == [
        ("batch", 1, first),
        ("validate", first),
        ("launch", first, 0),
        ("batch", 2, second),
        ("validate", second),
        ("launch", second, 2),
    ]
    assert [len(r) for r in returns] == [2, 1]
    assert (tmp_path / "sweep" / "multirun.yaml").is_file()


def test_basic_launcher_composes_each_job_through_the_loaders_method(tmp_path: Path):
    """The sweeper hands Hydra's BasicLauncher its configs by replacing that one method."""
    module = importlib.import_module("hydra._internal.core_plugins.basic_launcher")
    calls = []

    class Composed(Exception):
        pass

    def load_sweep_config(master_config, sweep_overrides):
        calls.append((master_config, sweep_overrides))
        raise Composed  # enough: what the launcher does with the config is Hydra's run_job

    hydra = {"sweep": {"dir": str(tmp_path)}, "hydra_logging": None, "verbose": False}
    config = OmegaConf.create({"hydra": hydra})
    launcher = module.BasicLauncher()
    context = SimpleNamespace(config_loader=SimpleNamespace(load_sweep_config=load_sweep_config))
    launcher.setup(hydra_context=context, task_function=print, config=config)
    with pytest.raises(Composed):
        launcher.launch([["a=1", "b=x"], ["a=2", "b=x"]], initial_job_idx=0)
    assert calls == [(config, ["a=1", "b=x"])]


def test_joblib_args_are_what_joblib_accepts():
    """The joblib launcher's schema types these as strings; joblib needs numbers as ints."""
    node = OmegaConf.structured(JobLibLauncherConf)
    node.merge_with({"n_jobs": 2, "pre_dispatch": "3", "batch_size": "1", "max_nbytes": "1000"})
    kwargs = OmegaConf.to_container(node)
    del kwargs["_target_"]
    args = joblib_args(kwargs)
    assert (args["pre_dispatch"], args["batch_size"], args["max_nbytes"]) == (3, 1, 1000)
    assert args["backend"] == "loky"
    assert Parallel(**args)(delayed(abs)(-i) for i in range(3)) == [0, 1, 2]
    stock = joblib_args(OmegaConf.to_container(OmegaConf.structured(JobLibLauncherConf)))
    assert (stock["pre_dispatch"], stock["batch_size"]) == ("2*n_jobs", "auto")  # left as is
