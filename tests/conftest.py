"""Shared fixtures: composed configs (Hydra's compose API on the real conf/), tiny overrides."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from benchmarks.run import CONF_DIR

# A few optimiser steps everywhere: real fits, seconds not minutes.
TINY = [
    "pretrain.steps=4",
    "pretrain.batch_size=16",
    "train.steps=4",
    "train.batch_size=8",
    "continued_pretrain.steps=3",
    "continued_pretrain.batch_size=16",
]


@pytest.fixture(autouse=True)
def _reset_global_state() -> Iterator[None]:
    threads = torch.get_num_threads()
    GlobalHydra.instance().clear()
    yield
    GlobalHydra.instance().clear()
    torch.set_num_threads(threads)


@pytest.fixture
def compose_cfg(tmp_path) -> Callable[..., DictConfig]:
    """Compose conf/config.yaml with overrides, caching into a per-test folder."""

    def make(*overrides: str, tiny: bool = True) -> DictConfig:
        tiny_overrides = TINY if tiny else []
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(
                "config",
                overrides=[f"paths.cache_dir={tmp_path / 'cache'}", *tiny_overrides, *overrides],
            )

    return make
