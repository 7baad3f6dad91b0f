"""Stacked fits (lightning_modules/stacked.py) against the separate fits they replace.

The separate fits go through the suite's own path (``fitting.fit``, the Trainer; it gives the
bare loop's weights bit for bit). Both sides compute the same float32 sums in a different order
(oneDNN's grouped against its dense convolution, a batched matmul for 1x1-spatial layers, bmm
for the heads). AdamW's first steps divide each gradient entry by its own magnitude, so an entry
near zero whose sign flips under such a reordering moves its weight by about 2 lr: the
difference after a few steps is a small share of what the fit moved, not 1e-7. Measured on this
case: the suite's own separate fits in NCHW instead of channels-last differ from channels-last
by up to 3.9% of the movement and 2.1e-3 in logits; stacked ones by up to 0.44% and 2.1e-3.
Tolerances: 5% of the movement (weights and running statistics), 1e-2 in logits (scaled by
FEATURE_SCALE = 10), and the same predicted class for every test image.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from benchmarks import fitting
from benchmarks.stacked_bench import build, contexts
from lightning_modules.stacked import StackError, fit_stacked, stack_backbones

SHARE, LOGIT_TOL = 0.05, 1e-2


def _share(a: dict, b: dict, start: dict, keys: list[str]) -> float:
    """||a - b|| over ``keys`` as a share of ||a - start||, how far the separate fit moved."""
    diff = torch.cat([(a[k] - b[k]).flatten() for k in keys]).norm()
    moved = torch.cat([(a[k] - start[k]).flatten() for k in keys]).norm()
    assert moved > 0.01  # the fit trained: equality is not that of two untouched starts
    return float(diff / moved)


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """Three tiny scratch fits (seeds, subsets and lrs differ): separate via the suite's
    Trainer path, stacked via fit_stacked, from identical starts."""
    torch.set_num_threads(1)
    cache = tmp_path_factory.mktemp("cache")
    ctxs = contexts(cache, 3, 4, 1, "train.batch_size=16")
    separate, stacked = build(ctxs, True), build(ctxs, True)
    start = [copy.deepcopy(m.state_dict()) for m, _ in separate]
    for (module, batches), ctx in zip(separate, ctxs, strict=True):
        fitting.fit(ctx.cfg, module, batches)
    fit_stacked([m for m, _ in stacked], [b for _, b in stacked])
    return ctxs, separate, stacked, start


def test_stacked_and_separate_fits_end_with_the_same_weights(fits):
    _, separate, stacked, start = fits
    for (a, _), (b, _), init in zip(separate, stacked, start, strict=True):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        weights = [k for k in sa if sa[k].is_floating_point() and ".running_" not in k]
        assert _share(sa, sb, init, weights) < SHARE


def test_batchnorm_running_statistics_are_each_models_own(fits):
    _, separate, stacked, start = fits
    for (a, _), (b, _), init in zip(separate, stacked, start, strict=True):
        sa, sb = a.state_dict(), b.state_dict()
        stats = [k for k in sa if ".running_" in k]
        assert len(stats) > 0
        assert _share(sa, sb, init, stats) < SHARE
        tracked = [k for k in sa if k.endswith("num_batches_tracked")]
        assert all(int(sb[k]) == int(sa[k]) == 4 for k in tracked)
    first, second = (m.backbone.bn1.running_mean for m, _ in stacked[:2])
    assert not torch.allclose(first, second, atol=1e-3)  # each model's own, not one shared


def test_stacked_and_separate_fits_give_the_same_test_logits(fits):
    ctxs, separate, stacked, _ = fits
    for (a, _), (b, _), ctx in zip(separate, stacked, ctxs, strict=True):
        la, lb = a.predict_logits(ctx.target.x_test), b.predict_logits(ctx.target.x_test)
        torch.testing.assert_close(lb, la, atol=LOGIT_TOL, rtol=0)
        # logits within LOGIT_TOL decide the class wherever the top two are further apart than
        # twice that; nearer, it is a tie either may break (one test image at a margin of 2e-5
        # on an AVX512 machine)
        top = la.topk(2, dim=1).values
        decided = top[:, 0] - top[:, 1] > 2 * LOGIT_TOL
        assert decided.float().mean() > 0.5  # most images are decided: the check is not empty
        assert torch.equal(la.argmax(1)[decided], lb.argmax(1)[decided])


def test_a_layer_that_mixes_channels_is_refused():
    nets = [nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4, 2)) for _ in range(2)]
    with pytest.raises(StackError, match="Linear"):
        stack_backbones(nets)
    with pytest.raises(StackError, match="shape"):
        stack_backbones([nn.Conv2d(1, 4, 3), nn.Conv2d(1, 8, 3)])
