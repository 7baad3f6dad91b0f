"""Cache keys hold every value a build used: change any one of them and the cache misses.

The fault this guards against: ``model.in_chans: null`` took the channels from the target, but
the pretraining key hashed the config, so after one RGB image-folder run a gray digits run
loaded the 3-channel backbone and crashed (``size mismatch for conv1``).
"""

import shutil

import pytest
from helpers import write_image_tree

from benchmarks import keys
from benchmarks.inputs import domain
from benchmarks.run import run_context
from common.cache import CACHE_VERSION, stable_hash, versioned
from lightning_modules.datasets import load
from lightning_modules.domains import build_domain

PRETRAIN_INPUTS = [
    "seed=1",
    "threads=1",
    "deterministic=false",
    "model.image_size=12",
    "model.in_chans=3",
    "model.drop_rate=0.1",
    "pretrain.steps=5",
    "pretrain.batch_size=8",
    "pretrain.lr=0.01",
    "pretrain.temperature=0.2",
    "pretrain=supervised",
    "data@source=digits",
    "source.transform=invert",
    "source.split_seed=1",
    "source.test_fraction=0.4",
    "source.normalize.mean=[0.5]",  # the statistics the backbone is trained with
    "probe.max_iter=50",
    "trainer.precision=bf16-mixed",
]


def _ctx(compose_cfg, *overrides):
    return run_context(compose_cfg(*overrides))


def _pretrain_hash(compose_cfg, *overrides):
    ctx = _ctx(compose_cfg, *overrides)
    return stable_hash(keys.pretrain(ctx))


@pytest.mark.parametrize("change", PRETRAIN_INPUTS)
def test_pretrain_key_misses_on_every_input(change, compose_cfg):
    assert _pretrain_hash(compose_cfg) != _pretrain_hash(compose_cfg, change)


def test_pretrain_key_ignores_what_does_not_change_the_backbone(compose_cfg, tmp_path):
    base = _pretrain_hash(compose_cfg)
    assert base == _pretrain_hash(compose_cfg, "train.steps=7", "budget.per_class=2")
    assert base == _pretrain_hash(compose_cfg, "trainer.enable_progress_bar=true")
    assert base == _pretrain_hash(compose_cfg, "source.name=renamed")
    assert base == _pretrain_hash(compose_cfg, "subset_seed=5")  # subsets share a pretraining
    assert base != _pretrain_hash(compose_cfg, "train_seed=5")


def _clear_domain_caches():
    load.cache_clear()
    build_domain.cache_clear()


def test_keys_follow_channels_that_come_from_the_data(compose_cfg, tmp_path):
    """Same config, same path: an RGB tree, then a gray one. Every key must change."""
    tree = tmp_path / "tree"
    args = ["data=imagefolder", f"data.root={tree}", "data@source=digits", "budget.per_class=2"]

    def hashes():
        _clear_domain_caches()
        ctx = _ctx(compose_cfg, *args)
        pre = keys.pretrain(ctx)
        return (
            stable_hash(pre),
            stable_hash(keys.continued(ctx, pre, ctx.cfg.data, ctx.target, 0)),
            stable_hash(keys.features(ctx, "backbone")),
            int(ctx.target.x_train.shape[1]),
        )

    write_image_tree(tree, rgb=True)
    rgb = hashes()
    shutil.rmtree(tree)
    write_image_tree(tree, rgb=False)
    gray = hashes()
    _clear_domain_caches()
    assert (rgb[-1], gray[-1]) == (3, 1)
    assert all(a != b for a, b in zip(rgb[:-1], gray[:-1], strict=True))
    # and an RGB folder target against the digits target: the source is digits in both
    assert _pretrain_hash(compose_cfg, "data=digits") != rgb[0]


@pytest.mark.parametrize(
    "change",
    ["seed=1", "continued_pretrain.steps=4", "continued_pretrain.replay=0.2", "data=digits_rot90"],
)
def test_continued_key_misses_on_every_input(change, compose_cfg):
    def h(*overrides):
        ctx = _ctx(compose_cfg, *overrides)
        target = domain(ctx.cfg.data, ctx.cfg)
        return stable_hash(keys.continued(ctx, keys.pretrain(ctx), ctx.cfg.data, target, 0))

    assert h() != h(change)


def test_continued_key_tells_a_replaying_stream_stage_from_incremental(compose_cfg):
    ctx = _ctx(compose_cfg)
    base = keys.pretrain(ctx)
    alone = keys.continued(ctx, base, ctx.cfg.data, ctx.target, 0)
    assert alone != keys.continued(ctx, base, ctx.cfg.data, ctx.target, 1)
    assert alone != keys.continued(ctx, {**base, "seed": 9}, ctx.cfg.data, ctx.target, 0)


@pytest.mark.parametrize(
    "change", ["data.transform=invert", "model.image_size=12", "data=digits_0to4", "seed=1"]
)
def test_features_key_misses_on_every_input(change, compose_cfg):
    def h(*overrides):
        return stable_hash(keys.features(_ctx(compose_cfg, *overrides), "backbone"))

    assert h() != h(change)
    assert h() != stable_hash(keys.features(_ctx(compose_cfg), "other backbone"))


@pytest.mark.parametrize(
    "change",
    [
        "budget.per_class=2",
        "probe.max_iter=50",
        "seed=1",
        "subset_seed=1",
        "train_seed=1",
        "data@stream.s1=digits_0to4",
    ],
)
def test_stream_start_key_misses_on_every_input(change, compose_cfg):
    def h(*overrides):
        ctx = _ctx(compose_cfg, "regime=continual_pretrain", *overrides)
        cfg = ctx.cfg
        stream = [domain(cfg.stream[k], cfg) for k in cfg.stream]
        return stable_hash(keys.stream_start(ctx, "backbone", stream))

    assert h() != h(change)


def test_fractaldb_key_misses_on_every_parameter(tmp_path):
    params = {"categories": 4, "instances": 8, "size": 16, "points": 600, "threshold": 0.05}
    params["seed"] = 0
    base = stable_hash(versioned("fractaldb", params=params))
    for name in params:
        other = params | {name: params[name] + 1}
        assert stable_hash(versioned("fractaldb", params=other)) != base, name
    assert versioned("fractaldb", params=params)["version"] == CACHE_VERSION


def test_probe_trials_share_one_pretraining_and_source_probe(compose_cfg, tmp_path):
    """A grid over probe.* tunes the target probe only: before, each trial re-pretrained.

    The source probe (forgetting's before) keeps the declared settings, so every trial of a
    linear_probe grid hits the first trial's pretrained entry and reports the same source side.
    """
    from benchmarks.run import execute

    grid = "+tuning.grids.linear_probe={probe.l2_grid:[1.0e-3,1.0e-1,10.0]}"
    runs = [
        execute(
            compose_cfg("regime=linear_probe", "tuning.trials=3", grid, f"tuning.trial={t}"),
            tmp_path / f"trial{t}",
        )
        for t in (0, 2)
    ]
    first, other = (r.info for r in runs)
    assert first["pretrain_hash"] == other["pretrain_hash"]
    assert (first["pretrain_cached"], other["pretrain_cached"]) == (False, True)
    assert runs[0].metrics["source/acc_before"] == runs[1].metrics["source/acc_before"]
    assert runs[0].selection["hparams"] != runs[1].selection["hparams"]  # the trials differ
