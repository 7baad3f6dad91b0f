import math

import pytest
import timm
import torch

from lightning_modules.augment import ssl_view
from lightning_modules.classifier import ClassifierModule
from lightning_modules.normalization import InputStats, with_stats
from lightning_modules.objectives import nt_xent
from lightning_modules.probe import _fit, _folds, extract_features, fit_probe, l2_at_edge, select_l2


def _blobs(n_per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    centres = torch.randn(3, 16, generator=torch.Generator().manual_seed(99)) * 3
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(3).repeat_interleave(n_per_class)
    return centres[y] + torch.randn(len(y), 16, generator=gen), y


def test_probe_separates_separable_classes():
    x, y = _blobs(30)
    xt, yt = _blobs(30, seed=1)
    probe = fit_probe(x, y, 3, l2_grid=[1e-3, 1e-1, 10.0], default_l2=0.1)
    assert (probe.logits(xt).argmax(1) == yt).float().mean() > 0.95
    assert probe.l2 in (1e-3, 1e-1, 10.0)


def test_one_shot_has_nothing_to_validate_and_uses_the_default():
    x, y = _blobs(1)
    assert select_l2(x, y, 3, [1e-3, 1.0], default_l2=0.37) == 0.37


def test_stronger_penalty_shrinks_weights():
    x, y = _blobs(10)
    weak = fit_probe(x, y, 3, default_l2=1e-3)
    strong = fit_probe(x, y, 3, default_l2=10.0)
    assert strong.weight.norm() < weak.weight.norm()


def test_probe_initialised_head_reproduces_probe_predictions():
    """A head started from a probe predicts exactly what the probe on cached features does."""
    torch.manual_seed(0)
    backbone = timm.create_model("test_resnet", num_classes=0, in_chans=1)
    with_stats(backbone, InputStats((0.3,), (0.4,), "test"))  # what the suite's builder attaches
    images = torch.rand(40, 1, 16, 16)
    labels = torch.arange(4).repeat(10)
    feats = extract_features(backbone, images)
    probe = fit_probe(feats, labels, 4, default_l2=0.1)
    module = ClassifierModule(
        backbone, 4, 1e-3, 1e-3, 0.0, 10, head_init=(probe.weight.float(), probe.bias.float())
    )
    through_backbone = module.predict_logits(images)
    on_cache = probe.logits(feats).float()
    assert torch.allclose(through_backbone, on_cache, atol=1e-4)


def test_nt_xent_identical_embeddings_is_log_2n_minus_1():
    for n in (2, 4, 8):
        z = torch.ones(n, 5)
        assert math.isclose(float(nt_xent(z, z)), math.log(2 * n - 1), rel_tol=1e-5)


def test_nt_xent_decreases_when_training_an_encoder():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 8, 8)
    enc = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16)
    )
    opt = torch.optim.Adam(enc.parameters(), 1e-2)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(60):
        loss = nt_xent(enc(ssl_view(x, gen, 0.5)), enc(ssl_view(x, gen, 0.5)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10 - 0.3


@pytest.mark.parametrize("steps", [2, 4, 5, 10, 20, 150])
def test_warmup_schedule_works_for_any_length(steps):
    from lightning_modules.optim import warmup_cosine

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = warmup_cosine(opt, steps, 0.1)  # 10 steps at 10% used to divide by zero
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert all(lr > 0 for lr in lrs) and max(lrs) <= 1.0 + 1e-9


def test_the_default_l2_grid_is_log_spaced_over_1e_6_to_1e5(compose_cfg):
    grid = list(compose_cfg().probe.l2_grid)
    assert min(grid) == pytest.approx(1e-6) and max(grid) == pytest.approx(1e5)
    steps = [math.log10(b / a) for a, b in zip(grid, grid[1:], strict=False)]
    assert all(s == pytest.approx(steps[0]) for s in steps)


def test_a_choice_at_either_end_of_the_grid_is_flagged():
    grid = [1e-6, 1e-3, 1.0, 1e5]
    assert l2_at_edge(1e-6, grid) and l2_at_edge(1e5, grid)
    assert not l2_at_edge(1e-3, grid) and not l2_at_edge(0.1, [0.1])


def test_warm_started_cv_chooses_what_cold_fits_choose():
    """The regularisation path is a speed-up only: the same l2 as fitting every value cold."""
    x, y = _blobs(6)
    x = x + torch.randn(x.shape, generator=torch.Generator().manual_seed(5)) * 4  # overlap
    grid = [1e-6, 1e-4, 1e-2, 1.0, 100.0]
    correct = {}
    for l2 in sorted(grid, reverse=True):
        correct[l2] = 0
        for val in _folds(y, 5, 0):
            train = torch.ones(len(y), dtype=torch.bool)
            train[val] = False
            probe = _fit(x[train], y[train], 3, l2, 100)
            correct[l2] += int((probe.logits(x[val]).argmax(1) == y[val]).sum())
    cold = max(sorted(grid, reverse=True), key=lambda l2: correct[l2])
    assert select_l2(x, y, 3, grid, default_l2=0.5) == cold


def test_mostly_zero_features_fit_in_csr_to_the_dense_solution(monkeypatch):
    """TF-IDF-like rows (5% nonzero) take the CSR products; forcing dense gives the same probe."""
    from lightning_modules import probe as probe_module

    gen = torch.Generator().manual_seed(3)
    y = torch.arange(4).repeat_interleave(40)
    x = torch.rand(len(y), 300, generator=gen) * (torch.rand(len(y), 300, generator=gen) < 0.05)
    x[torch.arange(len(y)), y] += 1.0  # one informative column per class
    assert float((x != 0).float().mean()) < probe_module.SPARSE_BELOW
    z = probe_module.normalize_features(x.double())
    assert probe_module._products(z)[0].layout == torch.sparse_csr
    sparse = fit_probe(x, y, 4, l2_grid=[1e-3, 1e-1, 10.0], default_l2=0.1)
    monkeypatch.setattr(probe_module, "SPARSE_BELOW", 0.0)  # nothing is sparse enough: dense
    assert probe_module._products(z)[0].layout == torch.strided
    dense = fit_probe(x, y, 4, l2_grid=[1e-3, 1e-1, 10.0], default_l2=0.1)
    assert sparse.l2 == dense.l2
    torch.testing.assert_close(sparse.weight, dense.weight, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(sparse.bias, dense.bias, rtol=1e-6, atol=1e-8)
