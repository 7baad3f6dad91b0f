"""The fused AdamW choice (on the device types that have the kernel, and only there) and the
cheap CUDA check every AdamW step makes."""

import json
import os
import subprocess
import sys

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


def test_the_cuda_check_keeps_its_answer_and_only_leaves_nvml_without_a_gpu():
    """Lightning's import sets the NVML check; importing the optimiser module must not change
    what ``torch.cuda.is_available()`` answers, and drops the NVML check only where NVML sees
    no GPU (on this CPU machine, so the per-step call is the cached runtime one)."""
    code = (
        "import json, os, torch, lightning\n"
        "flag = os.environ.get('PYTORCH_NVML_BASED_CUDA_CHECK')\n"
        "available, count = torch.cuda.is_available(), torch.cuda.device_count()\n"
        "import lightning_modules.optim\n"
        "after = os.environ.get('PYTORCH_NVML_BASED_CUDA_CHECK')\n"
        "print(json.dumps([flag, available, count, after, torch.cuda.is_available()]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTORCH_NVML_BASED_CUDA_CHECK"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    flag, available, count, after, available_after = json.loads(out)
    assert flag == "1"  # Lightning set it
    assert available_after == available
    assert after == (None if count <= 0 else "1")
