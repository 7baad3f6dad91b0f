"""Each regime end to end through the real stages on the composed config (tiny fits)."""

import json

import pytest
import torch

from benchmarks.config import ConfigError
from benchmarks.pretraining import pretrained_backbone
from benchmarks.regimes import REGIMES
from benchmarks.run import execute, run_context
from common.cache import stable_hash
from common.records import read_record

PRETRAINED = (
    "finetune",
    "lp_ft",
    "linear_probe",
    "incremental_pretrain",
    "longer_pretrain",
    "unrelated_pretrain",
    "task_pretrain",
    "domain_then_task_pretrain",
    "wise_ft",
    "l2sp",
    "ewc",
)


# Text-only regimes run on the default text domains (tests/test_text.py has the text study).
TEXT = [
    "model=gpt2_tiny", "data@source=python_docs", "data=python_code", "pretrain=clm",
    "data.text.unlabeled_passages=100", "model.text.width=16", "model.text.layers=1",
    "train.augment=false",
]  # fmt: skip
TEXT_ONLY = {regime: TEXT for regime in ("tfidf", "task_pretrain", "domain_then_task_pretrain")}
# unrelated_pretrain needs its corpus: on images, any domain that is neither source nor target.
NEEDS = TEXT_ONLY | {"unrelated_pretrain": ["+data@control=digits_invert"]}


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_regime_writes_an_ok_record(regime, compose_cfg, tmp_path):
    cfg = compose_cfg(f"regime={regime}", "budget.per_class=2", *NEEDS.get(regime, []))
    record = execute(cfg, tmp_path / regime)
    assert record.status == "ok", record.error
    m = record.metrics
    assert 0 <= m["test/acc"] <= 1 and 0 <= m["test/ece"] <= 1
    assert record.budget["n_labelled"] == 2 * len(record.classes["target"])
    assert (tmp_path / regime / "record.json").exists()
    pretrained = regime in PRETRAINED
    assert ("source/forgetting" in m) == pretrained
    if pretrained:
        assert m["source/forgetting"] == pytest.approx(
            m["source/acc_before"] - m["source/acc_after"]
        )


def test_rerun_skips_a_finished_run(compose_cfg, tmp_path):
    cfg = compose_cfg("regime=pixels")
    assert execute(cfg, tmp_path) is not None
    assert execute(cfg, tmp_path) is None  # same config hash, status ok
    assert execute(compose_cfg("regime=pixels", "seed=1"), tmp_path) is not None


def test_pretraining_is_cached_across_regimes_and_budgets(compose_cfg, tmp_path):
    first = execute(compose_cfg("regime=finetune", "budget.per_class=1"), tmp_path / "a")
    second = execute(compose_cfg("regime=linear_probe", "budget.per_class=5"), tmp_path / "b")
    assert first.info["pretrain_cached"] is False
    assert second.info["pretrain_cached"] is True
    assert first.info["pretrain_hash"] == second.info["pretrain_hash"]
    assert first.metrics["source/acc_before"] == second.metrics["source/acc_before"]


def test_finetune_moves_the_backbone_and_probe_does_not(compose_cfg):
    cfg = compose_cfg("regime=finetune")
    ctx = run_context(cfg)
    backbone = pretrained_backbone(ctx).backbone
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    REGIMES["linear_probe"](ctx)
    frozen = pretrained_backbone(ctx).backbone
    assert all(torch.equal(before[k], v) for k, v in frozen.state_dict().items())
    from benchmarks.training import train_classifier

    module = train_classifier(ctx, backbone).module
    changed = [k for k, v in module.backbone.state_dict().items() if not torch.equal(before[k], v)]
    assert any("running_mean" in k for k in changed)  # BatchNorm statistics moved
    assert any(k.endswith("weight") for k in changed)


def test_probe_and_pixels_are_different_predictors(compose_cfg):
    ctx = run_context(compose_cfg("regime=linear_probe", "budget.per_class=5"))
    a = REGIMES["linear_probe"](ctx).metrics
    b = REGIMES["pixels"](ctx).metrics
    assert a["test/ece"] != b["test/ece"]


def test_same_seed_same_labelled_subset_for_every_regime(compose_cfg):
    comparison = [r for r in REGIMES if r != "continual_pretrain"]  # its target is its stream's
    subsets = {
        r: run_context(compose_cfg(f"regime={r}", "budget.per_class=5")).labelled
        for r in comparison
    }
    first = next(iter(subsets.values()))
    assert all(torch.equal(first, s) for s in subsets.values())


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("budget.per_class=0", "budget.per_class=0 is invalid"),
        ("budget.per_class=500", "larger than the smallest class"),
        ("threads=0", "threads=0 is invalid"),
        ("regime.name=nonsense", "regime.name='nonsense' is invalid; allowed: "),
        ("pretrain.objective=byol", "pretrain.objective='byol'"),
        ("data.transform=blur", "data.transform='blur'"),
    ],
)
def test_bad_values_stop_before_anything_is_written(override, match, compose_cfg, tmp_path):
    with pytest.raises(ConfigError, match=match):
        execute(compose_cfg(override), tmp_path / "job")
    assert not (tmp_path / "job").exists()


def test_diverged_run_is_a_failed_record_not_a_crash(compose_cfg, tmp_path):
    record = execute(compose_cfg("regime=scratch", "train.lr=1e12", "train.steps=6"), tmp_path)
    assert record.status == "failed"
    assert "NonFiniteLossError: train/loss became" in record.error
    assert record.metrics == {}
    assert (tmp_path / "record.json").exists()


def test_supervised_source_keeps_its_head_for_head_retained_forgetting(compose_cfg, tmp_path):
    cfg = compose_cfg(
        "regime=finetune", "pretrain=supervised", "pretrain.steps=40", "train.steps=20"
    )
    m = execute(cfg, tmp_path / "sup").metrics
    assert m["source/head_forgetting"] == pytest.approx(
        m["source/head_acc_before"] - m["source/head_acc_after"]
    )
    assert m["source/head_acc_before"] > 0.3  # 10 source classes: the head really was trained
    # fine-tuning on digits 5-9 rewrites features the 0-9 head relied on
    assert m["source/head_acc_after"] != m["source/head_acc_before"]
    record = read_record(tmp_path / "sup" / "record.json")
    assert "head-retained" in record.definitions["source/head_forgetting"]
    simclr = execute(compose_cfg("regime=finetune"), tmp_path / "ssl").metrics
    assert "source/head_forgetting" not in simclr  # no source head exists


def _head_inits(monkeypatch) -> list:
    """Spy on the head each target fit starts from (None: a new random head)."""
    from benchmarks import training

    seen, real = [], training.classifier_and_batches

    def spy(ctx, backbone, head_init=None, labelled=None, penalty=None):
        seen.append(head_init)
        return real(ctx, backbone, head_init, labelled, penalty)

    monkeypatch.setattr(training, "classifier_and_batches", spy)
    return seen


def test_lp_ft_head_starts_from_the_probe_and_finetune_does_not(compose_cfg, monkeypatch):
    from benchmarks.probing import fit_labelled_probe, pretrained_features

    seen = _head_inits(monkeypatch)
    ctx = run_context(compose_cfg("regime=lp_ft", "budget.per_class=5"))
    outcome = REGIMES["lp_ft"](ctx)
    pre = pretrained_backbone(ctx)
    features = pretrained_features(ctx, pre.backbone, stable_hash(pre.cache.key))
    probe = fit_labelled_probe(ctx, features.train).probe
    assert torch.allclose(seen[0][0], probe.weight.float())
    assert torch.allclose(seen[0][1], probe.bias.float())
    assert outcome.info["head_init"] == "probe"
    ft = run_context(compose_cfg("regime=finetune", "budget.per_class=5"))
    outcome = REGIMES["finetune"](ft)
    assert seen[1] is None and outcome.info["head_init"] == "random"


@pytest.mark.parametrize(("regime", "wrong"), [("finetune", "probe"), ("lp_ft", "random")])
def test_a_head_init_against_the_regime_name_is_refused(regime, wrong, compose_cfg, tmp_path):
    cfg = compose_cfg(f"regime={regime}", f"train.head_init={wrong}")
    with pytest.raises(ConfigError, match=f"train.head_init='{wrong}' is invalid; allowed: "):
        execute(cfg, tmp_path / "job")


def test_longer_pretrain_continues_on_the_source_like_incremental_on_the_target(
    compose_cfg, tmp_path
):
    inc_cfg = compose_cfg("regime=incremental_pretrain")
    lon_cfg = compose_cfg("regime=longer_pretrain")
    for node in ("continued_pretrain", "train", "pretrain"):  # the same compute, the same recipe
        assert inc_cfg[node] == lon_cfg[node]
    inc, lon = execute(inc_cfg, tmp_path / "inc"), execute(lon_cfg, tmp_path / "lon")
    assert lon.status == "ok", lon.error
    assert inc.info["pretrain_hash"] == lon.info["pretrain_hash"]
    assert inc.info["continued_pretrain_hash"] != lon.info["continued_pretrain_hash"]
    entry = tmp_path / "cache" / "continued" / lon.info["continued_pretrain_hash"]
    key = json.loads((entry / "meta.json").read_text())["key"]
    # an image domain's key leaves out its null text settings (benchmarks/keys.domain_key)
    source = {
        k: v for k, v in lon.config["source"].items() if k != "name" and (k, v) != ("text", None)
    }
    assert key["target"]["spec"] == source  # SimCLR ran on the source's images
    assert key["target"]["loaded"]["classes"] == lon.classes["source"]
    assert key["continued"]["steps"] == inc.config["continued_pretrain"]["steps"]
    samples = "continued_pretrain_samples"
    assert lon.compute[samples] == inc.compute[samples]


def test_the_probe_records_how_its_l2_was_chosen(compose_cfg, tmp_path):
    one = execute(compose_cfg("regime=pixels", "budget.per_class=1"), tmp_path / "one").info
    assert one["probe_l2_selected_by"] == "default" and one["probe_l2_at_edge"] is False
    cfg = compose_cfg("regime=pixels", "budget.per_class=5", "probe.l2_grid=[1e3,1e4]")
    edge = execute(cfg, tmp_path / "edge").info  # two values: any choice is an edge
    assert edge["probe_l2_selected_by"] == "cv" and edge["probe_l2_at_edge"] is True
    assert edge["probe_l2"] in (1e3, 1e4)
