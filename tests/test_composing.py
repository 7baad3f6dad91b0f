"""Job configs composed once per group choice equal Hydra's own compose, job for job."""

from __future__ import annotations

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from benchmarks.composing import GroupCachedCompose
from benchmarks.run import CONF_DIR

SWEEPS = {
    "digits": (["experiment=digits"], ["seed=3", "regime=finetune", "budget.per_class=5"]),
    "tuned": (
        ["experiment=digits_tuned"],
        ["seed=1", "regime=svm", "budget.per_class=all", "tuning.trial=6"],
    ),
    "groups and adds": (
        [],
        [
            "data@source=digits",
            "model=resnet18",
            "regime=scratch",
            "train.lr=0.01",
            "+tuning.grids.svm={svm.c_grid:[1.0,10.0]}",
            "~trainer.logger.csv",
            "seed=2",
        ],
    ),
    "value only": ([], ["budget.per_class=2", "subset_seed=4"]),
}


def _jobs(job: list[str]) -> list[list[str]]:
    """The job, the same job with other values, and one with another group choice."""
    other = [o.replace("seed=", "seed=1").replace("=5", "=2") for o in job]
    regime = [o for o in job if not o.startswith("regime=")] + ["regime=lp_ft"]
    return [job, other, job, regime]


@pytest.mark.parametrize("name", list(SWEEPS))
def test_group_cached_compose_equals_hydras_compose(name):
    master_overrides, job = SWEEPS[name]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", master_overrides, RunMode.MULTIRUN)
        fast = GroupCachedCompose(loader)
        for overrides in _jobs(job):
            ours = fast(master_config=master, sweep_overrides=overrides)
            hydras = loader.load_sweep_config(master, list(overrides))
            assert OmegaConf.to_yaml(ours) == OmegaConf.to_yaml(hydras), overrides
            assert OmegaConf.is_struct(ours) and list(ours.hydra.overrides.task) == overrides
        assert len(fast.bases) == 2  # the regime=lp_ft job is another group choice
