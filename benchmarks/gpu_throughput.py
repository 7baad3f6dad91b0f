"""The GPU check's throughput part: a CIFAR-sized bf16 fit, the suite against a bare loop.

``model=resnet18`` at 32x32 RGB on ten classes of synthetic images that ``data=imagefolder``
reads (there is no network where a GPU is lent, and nothing is downloaded), through the suite's
real fit path (``fitting.fit``: the Trainer from ``conf/trainer``) against the bench's bare loop
over the same module, batches and optimiser under the same bf16 autocast, interleaved in one
process as ``bench.throughput`` does.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from benchmarks.gpu_check import Scale


def image_tree(root: Path, per_class: int) -> Path:
    """Ten classes of seeded random 32x32 RGB PNGs: CIFAR's shape, read by the real loader."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(10):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(root / f"class{c}" / f"{i}.png")
    return root


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cifar_throughput(scale: Scale, cap: float) -> dict[str, Any]:
    """Median over pairs of (bare-loop time / suite time) for a bf16 CIFAR-sized target fit.

    ``bench.throughput`` leaves the bare side's module on the CPU and times without waiting for
    the GPU, so the pairing is done here with the bench's own module, batches and bare loop.
    """
    from benchmarks import fitting
    from benchmarks.bench import bare_loop, fit_config, module_and_batches
    from benchmarks.run import run_context

    deadline = time.perf_counter() + cap  # no new pair starts after it
    with tempfile.TemporaryDirectory(prefix="regimebench-gpu-cifar-") as tmp:
        tree = image_tree(Path(tmp) / "images", scale.images_per_class)
        overrides = [
            "regime=scratch", "budget.per_class=all", "data=imagefolder", f"data.root={tree}",
            *scale.model, f"trainer={scale.trainer}", "trainer.precision=bf16-mixed",
            f"train.steps={scale.steps}", f"train.batch_size={scale.batch_size}",
        ]  # fmt: skip
        ctx = run_context(fit_config(Path(tmp) / "cache", *overrides))
        torch.set_num_threads(ctx.cfg.threads)
        fits = iter(range(2 * scale.pairs + 2))

        def suite() -> float:
            module, batches = module_and_batches(ctx)
            logs = Path(tmp) / "logs" / f"train{next(fits)}"
            _sync(ctx.device)
            start = time.perf_counter()
            fitting.fit(ctx.cfg, module, batches, logs)
            _sync(ctx.device)
            return time.perf_counter() - start

        def bare() -> float:
            module, batches = module_and_batches(ctx)
            module = module.to(ctx.device)
            if ctx.cfg.trainer.channels_last:
                module = module.to(memory_format=torch.channels_last)
            autocast = torch.autocast(ctx.device.type, dtype=torch.bfloat16)
            _sync(ctx.device)
            start = time.perf_counter()
            with autocast if ctx.cfg.trainer.precision == "bf16-mixed" else nullcontext():
                bare_loop(module, batches)
            _sync(ctx.device)
            return time.perf_counter() - start

        # The warm-up pair pays kernel selection, the allocator and the first set-up. A timed
        # pair starts only when the previous one says it ends before the deadline; when none
        # does, the warm-up pair is the measurement (cifar_pairs = 0 says so).
        warm = (suite(), bare())
        pairs: list[tuple[float, float]] = []
        while (
            len(pairs) < scale.pairs
            and time.perf_counter() + sum(pairs[-1] if pairs else warm) < deadline
        ):
            if len(pairs) % 2:  # the order alternates, as in bench.throughput
                bare_s = bare()
                pairs.append((suite(), bare_s))
            else:
                pairs.append((suite(), bare()))
        precision = str(ctx.cfg.trainer.precision)
        device = str(ctx.device)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the study's workers share this GPU next
    timed = pairs or [warm]
    ratios = [b / s for s, b in timed]
    suite_s = statistics.median(s for s, _ in timed)
    return {
        "cifar_throughput_ratio": statistics.median(ratios),
        "cifar_throughput_ratio_min": min(ratios),
        "cifar_throughput_ratio_max": max(ratios),
        "cifar_pairs": len(pairs),
        "cifar_suite_steps_per_s": scale.steps / suite_s,
        "cifar_bare_steps_per_s": scale.steps / statistics.median(b for _, b in timed),
        "cifar_suite_images_per_s": scale.steps * scale.batch_size / suite_s,
        "cifar_batch_size": scale.batch_size,
        "cifar_precision": precision,
        "cifar_device": device,
    }
