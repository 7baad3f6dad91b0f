"""``regimebench-bench [--out FILE.json]``: the suite's speed, as ratios taken side by side.

1. Target-training throughput of the suite (``fitting.fit``: a ``lightning.Trainer`` fit with the
   default CSV logger, set-up included) against a bare PyTorch loop over the same module,
   batches, optimiser, schedule and threads, interleaved in one process; median of the
   per-repeat ratios. ``--throughput-only`` stops after this one (seconds, not minutes).
2. ``linear_probe`` on cached features against the same L-BFGS probe run end to end through the
   frozen backbone (every closure evaluation re-runs the backbone): speed-up, accuracy gap.
3. The default sweep (``experiment=digits``) cold, then the same command again: time ratio.
4. How often pretraining and feature extraction ran in that sweep, against how many distinct
   configurations needed them (from the records' cache bookkeeping).

``--gpu`` runs the GPU check instead (``benchmarks/gpu_check.py``; ``--dry-run`` on the CPU).

Absolute times on shared machines are noisy; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from benchmarks import fitting
from benchmarks.cli_types import positive_int
from benchmarks.inputs import RunContext, new_backbone
from benchmarks.pretraining import pretrained_backbone
from benchmarks.run import CONF_DIR, run_context
from benchmarks.sweep_bench import TARGETS, compose_speed, print_table, sweep_speed
from benchmarks.training import classifier_and_batches
from lightning_modules.classifier import ClassifierModule
from lightning_modules.datamodules import RandomBatches
from lightning_modules.probe import LinearProbe, extract_features, fit_probe, normalize_features


def fit_config(cache: Path, *overrides: str) -> DictConfig:
    """The composed run config a measured fit uses, caching into ``cache``."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[f"paths.cache_dir={cache}", *overrides])


def module_and_batches(ctx: RunContext) -> tuple[ClassifierModule, RandomBatches]:
    """The suite's own module and batches for one target fit (fresh weights each call)."""
    return classifier_and_batches(ctx, new_backbone(ctx.cfg, 0))


def bare_loop(module: ClassifierModule, batches: RandomBatches) -> None:
    """The hand-written reference: the same module and optimiser, no Lightning."""
    opt_cfg = module.configure_optimizers()
    opt, sched = opt_cfg["optimizer"], opt_cfg["lr_scheduler"]["scheduler"]
    module.train()
    for x, y in batches:
        loss = F.cross_entropy(module(module.augment(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()


def throughput(cache: Path, repeats: int, *overrides: str) -> dict[str, Any]:
    """Median over repeats of (bare-loop time / suite time) for one default target fit.

    One discarded warm-up pair first (the first fit of a process pays oneDNN's kernel setup),
    then pairs whose order alternates, so neither side always runs on a warmer cache. The
    quartiles of the per-pair ratios show how much this machine's timing noise moves the median.
    """
    ctx = run_context(fit_config(cache, "regime=scratch", "budget.per_class=all", *overrides))
    torch.set_num_threads(ctx.cfg.threads)
    fits = iter(range(2 * repeats + 2))

    def suite() -> float:
        module, batches = module_and_batches(ctx)
        logs = cache / "logs" / f"train{next(fits)}"  # the default logger writes a CSV per fit
        start = time.perf_counter()
        fitting.fit(ctx.cfg, module, batches, logs)
        return time.perf_counter() - start

    def bare() -> float:
        module, batches = module_and_batches(ctx)
        if ctx.cfg.trainer.channels_last:  # what fitting.fit does to the suite's module
            module = module.to(memory_format=torch.channels_last)
        start = time.perf_counter()
        bare_loop(module, batches)
        return time.perf_counter() - start

    suite(), bare()
    suite_s, bare_s = [], []
    for i in range(repeats):
        if i % 2:
            bare_s.append(bare())
            suite_s.append(suite())
        else:
            suite_s.append(suite())
            bare_s.append(bare())
    ratios = [b / s for s, b in zip(suite_s, bare_s, strict=True)]
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    steps = ctx.cfg.train.steps
    return {
        "train_throughput_ratio": statistics.median(ratios),
        "train_throughput_ratio_q1": quartiles[0],
        "train_throughput_ratio_q3": quartiles[2],
        "suite_steps_per_s": steps / statistics.median(suite_s),
        "bare_steps_per_s": steps / statistics.median(bare_s),
    }


def probe_end_to_end(
    backbone: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    l2: float,
    max_iter: int,
) -> LinearProbe:
    """The same L-BFGS probe, but every loss evaluation runs the frozen backbone again."""
    backbone.eval()
    weight = torch.zeros(
        backbone.num_features, num_classes, dtype=torch.float64, requires_grad=True
    )
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [weight, bias], max_iter=max_iter, tolerance_grad=1e-9, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        z = normalize_features(extract_features(backbone, images).double())
        loss = F.cross_entropy(z @ weight + bias, labels) + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return LinearProbe(weight.detach(), bias.detach(), l2)


def probe_speed(cache: Path) -> dict[str, Any]:
    """Cached-feature probe vs end-to-end probe at the largest budget, same l2 and iterations."""
    ctx = run_context(fit_config(cache, "regime=linear_probe", "budget.per_class=all"))
    torch.set_num_threads(ctx.cfg.threads)
    backbone = pretrained_backbone(ctx).backbone
    x, y = ctx.target.x_train[ctx.labelled], ctx.target.y_train[ctx.labelled]
    l2, iters = ctx.cfg.probe.default_l2, ctx.cfg.probe.max_iter
    start = time.perf_counter()
    feats = extract_features(backbone, x)
    extract_s = time.perf_counter() - start
    start = time.perf_counter()
    cached = fit_probe(feats, y, ctx.target.num_classes, (), l2, max_iter=iters)
    cached_s = time.perf_counter() - start
    start = time.perf_counter()
    e2e = probe_end_to_end(backbone, x, y, ctx.target.num_classes, l2, iters)
    e2e_s = time.perf_counter() - start
    test_feats = extract_features(backbone, ctx.target.x_test)

    def acc(p: LinearProbe) -> float:
        return float((p.logits(test_feats).argmax(1) == ctx.target.y_test).float().mean())

    return {
        "probe_speedup": e2e_s / cached_s,
        "probe_accuracy_diff": acc(cached) - acc(e2e),
        "probe_cached_seconds": cached_s,
        "probe_end_to_end_seconds": e2e_s,
        "feature_extraction_seconds": extract_s,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the four measurements (or the GPU check), print a table, write JSON."""
    parser = argparse.ArgumentParser(
        prog="regimebench-bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--repeats", type=positive_int, default=11, help="throughput repeats (median)"
    )
    parser.add_argument(
        "--sweep",
        default="experiment=digits",
        help="sweep overrides, space-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--throughput-only", action="store_true", help="only the fit against the bare loop"
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides of the throughput fit, e.g. trainer.logger={} (default: none)",
    )
    parser.add_argument(
        "--gpu", action="store_true", help="the GPU check instead (benchmarks/gpu_check.py)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="with --gpu: the same parts on the CPU, tiny"
    )
    args = parser.parse_args(argv)
    if args.dry_run and not args.gpu:
        parser.error("--dry-run only goes with --gpu")
    if args.gpu:
        from benchmarks import gpu_check  # it imports this module

        return gpu_check.main(args.out, args.dry_run)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="regimebench-cache-") as cache:
        results |= throughput(Path(cache), args.repeats, *args.set)
        if not args.throughput_only:
            results |= probe_speed(Path(cache))
    if not args.throughput_only:
        results |= compose_speed(args.sweep.split())
        results |= sweep_speed(args.sweep.split())
        results["sweep"] = args.sweep
    results["threads"] = torch.get_num_threads()
    print_table(results, TARGETS)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


def entry() -> None:
    """Console-script wrapper."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
