"""The fused AdamW choice: on the device types that have the kernel, and only there."""

import pytest
import torch

from lightning_modules.optim import FUSED_DEVICES, adamw


def _params(device: str) -> list[torch.nn.Parameter]:
    torch.manual_seed(0)
    return [torch.nn.Parameter(torch.randn(5, 3, device=device)) for _ in range(2)]


def _one_step(params: list[torch.nn.Parameter], **kwargs: object) -> list[torch.Tensor]:
    opt = torch.optim.AdamW(params, lr=0.1, weight_decay=0.01, **kwargs)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    return [p.detach().clone() for p in params]


def test_the_copied_device_list_is_within_torchs_own():
    """Pins the private list the copy stands for: a torch that drops one of them fails here."""
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    assert set(FUSED_DEVICES) <= set(_get_fused_kernels_supported_devices())


@pytest.mark.parametrize(
    "device",
    [
        pytest.param(
            d,
            marks=pytest.mark.skipif(
                d != "cpu" and not getattr(torch, d).is_available(), reason=f"no {d}"
            ),
        )
        for d in sorted(FUSED_DEVICES)
    ],
)
def test_fused_adamw_is_chosen_and_steps_like_the_loop(device):
    params = _params(device)
    opt = adamw([{"params": params, "lr": 0.1}], weight_decay=0.01)
    assert opt.param_groups[0]["fused"] is True
    fused = _one_step(_params(device), fused=True)  # torch checks the device on the first step
    loop = _one_step(_params(device), foreach=False)
    for a, b in zip(fused, loop, strict=True):
        torch.testing.assert_close(a, b)


def test_params_on_other_devices_get_torchs_default():
    params = [torch.nn.Parameter(torch.empty(4, device="meta"))]
    assert adamw([{"params": params, "lr": 0.1}], weight_decay=0.0).param_groups[0]["fused"] is None
    assert adamw([{"params": [], "lr": 0.1}], weight_decay=0.0).param_groups[0]["fused"] is None
