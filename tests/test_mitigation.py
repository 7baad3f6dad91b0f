"""Forgetting mitigations: weight interpolation (wise_ft), L2-SP and EWC, on real tiny fits."""

import copy

import pytest
import timm
import torch

from benchmarks import anchoring
from benchmarks.config import ConfigError
from benchmarks.pretraining import pretrained_backbone
from benchmarks.run import execute, run_context
from benchmarks.training import train_classifier
from lightning_modules.interpolation import interpolate
from lightning_modules.normalization import InputStats, normalize, stats_of, with_stats
from lightning_modules.penalties import AnchorPenalty, diagonal_fisher
from lightning_modules.probe import normalize_features


def _tiny_backbone(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = timm.create_model("test_resnet", num_classes=0, in_chans=1)
    return with_stats(net, InputStats((0.3,), (0.4,), "test"))


# --- weight interpolation ------------------------------------------------------------------


def test_interpolation_ends_reproduce_the_start_and_the_fitted_predictions(compose_cfg):
    """alpha 0 is the LP-FT start and alpha 1 the fit, bit for bit, BatchNorm statistics too."""
    cfg = compose_cfg("regime=wise_ft", "budget.per_class=3", "train.steps=6")
    ctx = run_context(cfg)
    backbone = pretrained_backbone(ctx).backbone
    trained = train_classifier(ctx, backbone, keep_start=True)
    module, x = trained.module, ctx.target.x_test
    fitted = module.predict_logits(x)
    end = {k: v.clone() for k, v in module.state_dict().items()}
    start_module = copy.deepcopy(module)
    start_module.load_state_dict(trained.start)
    start_logits = start_module.predict_logits(x)
    assert not torch.equal(start_logits, fitted)  # the fit moved: the test can fail

    module.load_state_dict(interpolate(trained.start, end, 0.0))
    assert all(torch.equal(module.state_dict()[k], v) for k, v in trained.start.items())
    assert torch.equal(module.predict_logits(x), start_logits)
    module.load_state_dict(interpolate(trained.start, end, 1.0))
    assert torch.equal(module.predict_logits(x), fitted)
    half = interpolate(trained.start, end, 0.5)
    name = next(k for k in end if k.endswith("running_var"))  # statistics move with weights
    assert torch.allclose(half[name], (trained.start[name] + end[name]) / 2)


def test_interpolation_refuses_states_of_two_networks():
    with pytest.raises(ValueError, match="states differ"):
        interpolate({"a": torch.zeros(1)}, {"b": torch.zeros(1)}, 0.5)


def test_wise_ft_records_its_curve_and_its_ends_are_the_probe_and_lp_ft(compose_cfg, tmp_path):
    common = ("budget.per_class=3", "train.steps=6")
    wise = execute(compose_cfg("regime=wise_ft", *common), tmp_path / "wise")
    lp_ft = execute(compose_cfg("regime=lp_ft", *common), tmp_path / "lp_ft")
    assert wise.status == "ok", wise.error
    m = wise.metrics
    alphas = ("0", "0.25", "0.5", "0.75", "1")
    assert all(f"wise/target/{a}" in m and f"wise/source/{a}" in m for a in alphas)
    # alpha = 1 is the LP-FT fit of the same seeds; the run's own numbers are alpha 0.5's
    assert m["wise/target/1"] == lp_ft.metrics["test/acc"]
    assert m["wise/source/1"] == lp_ft.metrics["source/acc_after"]
    assert m["wise/alpha"] == 0.5 and m["test/acc"] == m["wise/target/0.5"]
    assert m["source/acc_after"] == m["wise/source/0.5"]
    # alpha = 0 is the pretrained backbone: its source probe is forgetting's "before", up to
    # the last digits of channels-last weights (at most one source test image)
    assert abs(m["wise/source/0"] - m["source/acc_before"]) <= 1 / 250
    assert m["wise/target/0.5"] not in (m["wise/target/0"], m["wise/target/1"])  # in between


def test_wise_ft_chooses_alpha_on_the_holdout(compose_cfg, tmp_path):
    cfg = compose_cfg(
        "regime=wise_ft",
        "selection=holdout",
        "selection.per_class=4",
        "wise_ft.alpha=null",
        "budget.per_class=3",
    )
    m = execute(cfg, tmp_path).metrics
    vals = {float(k.rsplit("/", 1)[1]): v for k, v in m.items() if k.startswith("wise/val/")}
    best = max(vals, key=lambda a: (vals[a], a))
    assert m["wise/alpha"] == best
    assert m["val/acc"] == vals[best]
    assert m["test/acc"] == m[f"wise/target/{best:g}"]


def test_wise_ft_can_recompute_batchnorm_statistics_on_the_budget(compose_cfg, tmp_path):
    common = ("regime=wise_ft", "budget.per_class=3", "train.steps=6")
    kept = execute(compose_cfg(*common), tmp_path / "kept").metrics
    redone = execute(compose_cfg(*common, "wise_ft.batchnorm=recompute"), tmp_path / "redone")
    assert redone.status == "ok", redone.error
    m = redone.metrics
    # statistics of the 15 labelled target images instead of the interpolated ones: at both
    # ends another network than the start and the fit (alpha 1 is re-scored, not LP-FT's score)
    assert m["wise/target/0"] != kept["wise/target/0"]
    assert m["wise/target/1"] != kept["wise/target/1"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["wise_ft.alpha=null"], "wise_ft.alpha=None is invalid"),
        (["selection=cv"], "selection.protocol='cv' is invalid"),
        (["wise_ft.alphas=[0.5,2]"], "wise_ft.alphas="),
        (["train.head_init=random"], "train.head_init='random' is invalid; allowed: probe"),
        (["wise_ft.batchnorm=reset"], "wise_ft.batchnorm='reset' is invalid"),
    ],
)
def test_wise_ft_refuses_what_it_cannot_run(overrides, message, compose_cfg, tmp_path):
    cfg = compose_cfg("regime=wise_ft", *overrides)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        execute(cfg, tmp_path)


# --- L2-SP and EWC ------------------------------------------------------------------------


def test_anchor_penalty_is_zero_at_the_anchor_and_its_gradient_matches_finite_differences():
    net = _tiny_backbone()
    weights = {n: torch.rand_like(p) for n, p in net.named_parameters()}
    for importance in (None, weights):
        penalty = AnchorPenalty(net, strength=3.0, importance=importance)
        assert float(penalty(net)) == 0.0
        moved = copy.deepcopy(net).double()
        with torch.no_grad():
            for p in moved.parameters():
                p.add_(0.01 * torch.randn_like(p))
        pen = AnchorPenalty(net.double(), 3.0, importance)
        net.float()
        value = pen(moved)
        assert float(value) > 0
        (grad,) = torch.autograd.grad(value, [next(moved.parameters())])
        name, param = next(moved.named_parameters())
        for idx in [(0, 0, 0, 0), (1, 0, 1, 2), (3, 0, 2, 1)]:
            eps = 1e-6
            with torch.no_grad():
                param[idx] += eps
                up = float(pen(moved))
                param[idx] -= 2 * eps
                down = float(pen(moved))
                param[idx] += eps
            assert grad[idx].item() == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)
            w = 1.0 if importance is None else float(weights[name][idx])
            expected = 3.0 * w * (param[idx] - pen.anchor[name][idx])
            assert grad[idx].item() == pytest.approx(float(expected), rel=1e-9)


def test_fisher_equals_a_brute_force_sum_over_examples_and_classes():
    net = _tiny_backbone()
    torch.manual_seed(1)
    x = torch.rand(6, 1, 16, 16)
    w, b = torch.randn(net.num_features, 4) * 0.3, torch.randn(4) * 0.1

    def head(features):
        return normalize_features(features) @ w + b

    fisher = diagonal_fisher(net, head, x, batch_size=4)  # two chunks
    assert not any(f.requires_grad for f in fisher.values())
    net.eval()
    brute = {n: torch.zeros_like(p) for n, p in net.named_parameters()}
    for xi in x:
        log_p = torch.log_softmax(head(net(normalize(xi[None], stats_of(net)))), -1)[0]
        for k in range(4):
            grads = torch.autograd.grad(log_p[k], list(net.parameters()), retain_graph=True)
            for (n, _), g in zip(net.named_parameters(), grads, strict=True):
                brute[n] += log_p[k].exp().detach() * g.pow(2)
    for n, value in brute.items():
        assert torch.allclose(fisher[n], value / len(x), rtol=1e-4, atol=1e-10), n
    assert sum(float(f.sum()) for f in fisher.values()) > 0


def test_l2sp_at_strength_zero_is_finetune_and_a_strong_penalty_holds_the_weights(
    compose_cfg, tmp_path
):
    common = ("budget.per_class=3", "train.steps=8")
    finetune = execute(compose_cfg("regime=finetune", *common), tmp_path / "ft")
    free = execute(compose_cfg("regime=l2sp", "l2sp.strength=0", *common), tmp_path / "l0")
    assert free.metrics["test/acc"] == finetune.metrics["test/acc"]
    assert free.metrics["source/acc_after"] == finetune.metrics["source/acc_after"]

    def moved(regime: str, *overrides: str) -> float:
        cfg = compose_cfg(f"regime={regime}", *overrides, *common)
        ctx = run_context(cfg)
        pre = pretrained_backbone(ctx)
        backbone = pre.backbone
        start = [p.detach().clone() for p in backbone.parameters()]
        pen = None
        if regime == "l2sp":
            pen = AnchorPenalty(backbone, cfg.l2sp.strength)
        elif regime == "ewc":
            pen = AnchorPenalty(backbone, cfg.ewc.strength, anchoring.source_fisher(ctx, pre)[0])
        train_classifier(ctx, backbone, penalty=pen)
        return sum(
            float((p - s).pow(2).sum()) for p, s in zip(backbone.parameters(), start, strict=True)
        )

    free_move = moved("finetune")
    assert moved("l2sp", "l2sp.strength=1000") < free_move
    assert moved("ewc", "ewc.strength=1e8", "ewc.fisher_samples=32") < free_move


def test_ewc_caches_its_fisher_per_pretraining(compose_cfg, tmp_path):
    common = ("regime=ewc", "ewc.fisher_samples=16", "train.steps=4")
    first = execute(compose_cfg(*common, "budget.per_class=1"), tmp_path / "a")
    second = execute(compose_cfg(*common, "budget.per_class=3"), tmp_path / "b")
    assert first.status == second.status == "ok", (first.error, second.error)
    assert first.info["fisher_cached"] is False and second.info["fisher_cached"] is True
    assert first.info["fisher_hash"] == second.info["fisher_hash"]
    assert first.info["fisher_likelihood"] == "source_probe"
    assert first.compute["fisher_samples"] == 16
    other = execute(compose_cfg(*common[:2], "ewc.fisher_samples=8"), tmp_path / "c")
    assert other.info["fisher_cached"] is False  # another subset of images: another Fisher
    assert other.info["fisher_hash"] != first.info["fisher_hash"]


def test_ewc_on_a_supervised_source_uses_its_head_from_a_cold_cache(compose_cfg, tmp_path):
    """The source head has trainable weights: the Fisher must not keep their graph."""
    common = ("regime=ewc", "pretrain=supervised", "ewc.fisher_samples=16")
    cold = execute(compose_cfg(*common), tmp_path / "cold")
    assert cold.status == "ok", cold.error
    assert cold.info["fisher_cached"] is False
    assert cold.info["fisher_likelihood"] == "source_head"
    assert "source/head_forgetting" in cold.metrics


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["regime=l2sp", "l2sp.strength=-1"], "l2sp.strength=-1.0 is invalid"),
        (["regime=ewc", "ewc.fisher_samples=0"], "ewc.fisher_samples=0 is invalid"),
        (
            ["regime=ewc", "train.module=tests.byo_example.UserClassifier"],
            "train.module='tests.byo_example.UserClassifier' is invalid",
        ),
    ],
)
def test_penalised_regimes_refuse_what_they_cannot_run(overrides, message, compose_cfg, tmp_path):
    with pytest.raises(ConfigError, match=message):
        execute(compose_cfg(*overrides), tmp_path)
