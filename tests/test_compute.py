"""FLOP accounting against analytic counts, including torch's two known traps."""

import pytest
import torch
from timm.layers import Attention, set_fused_attn, use_fused_attn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.compute import flop_counter_mode, train_step_flops, unfused_attention


def _conv_flops(counter_factory, groups):
    torch.manual_seed(0)
    n, c, hw, k = 4, 8, 10, 3
    conv = torch.nn.Conv2d(c, c, k, padding=1, groups=groups, bias=False)
    x = torch.rand(n, c, hw, hw, requires_grad=True)
    with counter_factory() as counter:
        conv(x).sum().backward()
    one_pass = 2 * n * hw * hw * c * (c // groups) * k * k  # multiply-adds x 2
    return counter.get_total_flops(), one_pass


@pytest.mark.parametrize("groups", [1, 8])
def test_conv_forward_and_backward_match_analytic(groups):
    counted, one_pass = _conv_flops(flop_counter_mode, groups)
    assert counted == 3 * one_pass  # forward, grad-input, grad-weight


def test_torch_default_overcounts_depthwise_weight_gradient_by_groups():
    counted, one_pass = _conv_flops(lambda: FlopCounterMode(display=False), groups=8)
    assert counted == 2 * one_pass + 8 * one_pass  # the trap our mapping corrects


def _attention_flops(fused: bool) -> int:
    was = use_fused_attn()
    set_fused_attn(fused)
    try:
        torch.manual_seed(0)
        attn = Attention(32, num_heads=4)
    finally:
        set_fused_attn(was)
    with flop_counter_mode() as counter, torch.no_grad():
        attn(torch.rand(2, 16, 32))
    return counter.get_total_flops()


def test_attention_counted_only_when_unfused():
    b, seq, d, h = 2, 16, 32, 4
    analytic = (
        2 * b * seq * d * 3 * d  # qkv projection
        + 2 * 2 * b * h * seq * seq * (d // h)  # q @ k.T and attn @ v
        + 2 * b * seq * d * d
    )  # output projection
    assert _attention_flops(fused=False) == analytic
    assert _attention_flops(fused=True) < analytic  # the trap: fused SDPA is invisible on CPU


def test_unfused_attention_context_restores_the_setting():
    before = use_fused_attn()
    with unfused_attention():
        assert not use_fused_attn()
    assert use_fused_attn() == before


def test_train_step_flops_positive_and_linear_in_batch():
    f8 = train_step_flops("test_resnet", 16, 8, 5)
    f16 = train_step_flops("test_resnet", 16, 16, 5)
    assert f8 > 0
    assert f16 == pytest.approx(2 * f8, rel=1e-6)


def test_counting_a_step_leaves_the_global_rng_where_it_was():
    """The count is cached per process: a first call that reseeded would make runs differ."""
    train_step_flops.cache_clear()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    train_step_flops("test_resnet", 16, 3, 5)  # a miss: builds and seeds a template
    assert torch.equal(torch.get_rng_state(), before)
