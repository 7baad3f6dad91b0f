"""``python -m benchmarks.stacked_bench``: K separate target fits against one stacked fit of K.

The fits are the default study's ``scratch`` target fits (the suite's module and batches from
``classifier_and_batches``, random init from ``train_seed``): model i has seed i (its own
labelled subset, init, batches and augmentation draws) and every second one the lower learning
rate 1e-3, so the stack mixes what a sweep's runs differ in. Separate fits run ``bare_loop``
(benchmarks/bench.py: the suite's step without the Trainer, channels-last as the suite runs
them); the stacked fit runs :func:`lightning_modules.stacked.fit_stacked` on fresh copies of
the same modules. Both sides alternate in one process, every K in every repeat, so the machine's
load moves both alike; the ratio is separate seconds / stacked seconds (= fits per second of
stacked over separate), median and range over the repeats.

Equality: the largest |difference| of test logits and of test accuracy between each model's
stacked and separate fit. The yardstick is what the suite itself changes under a float
reordering: the same separate fits in NCHW instead of channels-last (``reference`` rows).
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

from benchmarks.bench import bare_loop, fit_config
from benchmarks.cli_types import positive_int
from benchmarks.inputs import RunContext, new_backbone
from benchmarks.run import run_context
from benchmarks.training import classifier_and_batches
from lightning_modules.classifier import ClassifierModule
from lightning_modules.datamodules import RandomBatches
from lightning_modules.stacked import fit_stacked

Fits = list[tuple[ClassifierModule, RandomBatches]]


def contexts(cache: Path, k: int, steps: int, threads: int, *overrides: str) -> list[RunContext]:
    """The run contexts of K target fits that differ in seed, labelled subset and lr."""
    return [
        run_context(
            fit_config(
                cache,
                "regime=scratch",
                f"seed={i}",
                f"train.steps={steps}",
                f"threads={threads}",
                *(["train.lr=1e-3", "train.head_lr=1e-3"] if i % 2 else []),
                *overrides,
            )
        )
        for i in range(k)
    ]


def build(ctxs: list[RunContext], channels_last: bool) -> Fits:
    """Fresh modules and batches, as ``regimes.py`` builds a scratch run's target fit."""
    fits = []
    for ctx in ctxs:
        module, batches = classifier_and_batches(ctx, new_backbone(ctx.cfg, ctx.cfg.train_seed))
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        fits.append((module.to(memory_format=fmt), batches))
    return fits


def separate(fits: Fits) -> float:
    """Seconds of the K fits one after the other."""
    start = time.perf_counter()
    for module, batches in fits:
        bare_loop(module, batches)
    return time.perf_counter() - start


def stacked(fits: Fits) -> float:
    """Seconds of the K fits as one stacked fit."""
    start = time.perf_counter()
    fit_stacked([m for m, _ in fits], [b for _, b in fits])
    return time.perf_counter() - start


def differences(a: Fits, b: Fits, ctxs: list[RunContext]) -> dict[str, float]:
    """Largest |logit| and |test accuracy| differences between two sets of the same fits."""
    logit, acc = 0.0, 0.0
    for (ma, _), (mb, _), ctx in zip(a, b, ctxs, strict=True):
        x, y = ctx.target.x_test, ctx.target.y_test
        la, lb = ma.predict_logits(x), mb.predict_logits(x)
        logit = max(logit, float((la - lb).abs().max()))
        acc_a, acc_b = ((lg.argmax(1) == y).float().mean() for lg in (la, lb))
        acc = max(acc, float((acc_a - acc_b).abs()))
    return {"max_abs_logit_diff": logit, "max_abs_acc_diff": acc}


def measure(ks: list[int], threads: int, steps: int, repeats: int) -> list[dict[str, Any]]:
    """Interleaved timings per K at one thread count, plus equality of the last repeat."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="regimebench-stacked-") as cache:
        ctxs = {k: contexts(Path(cache), k, steps, threads) for k in ks}
        separate(build(ctxs[ks[0]][:1], True)), stacked(build(ctxs[ks[0]][:1], True))  # warm-up
        times: dict[int, tuple[list[float], list[float]]] = {k: ([], []) for k in ks}
        last: dict[int, tuple[Fits, Fits]] = {}
        for rep in range(repeats):
            for k in ks:
                sep, stk = build(ctxs[k], True), build(ctxs[k], True)
                if rep % 2:
                    times[k][1].append(stacked(stk))
                    times[k][0].append(separate(sep))
                else:
                    times[k][0].append(separate(sep))
                    times[k][1].append(stacked(stk))
                last[k] = (sep, stk)
        rows = []
        for k in ks:
            sep_s, stk_s = times[k]
            ratios = [a / b for a, b in zip(sep_s, stk_s, strict=True)]
            rows.append(
                {
                    "threads": threads,
                    "k": k,
                    "steps": steps,
                    "separate_fits_per_s": k / statistics.median(sep_s),
                    "stacked_fits_per_s": k / statistics.median(stk_s),
                    "ratio": statistics.median(ratios),
                    "ratio_min": min(ratios),
                    "ratio_max": max(ratios),
                    **differences(*last[k], ctxs[k]),
                }
            )
        kref = min(max(ks), 4)  # the yardstick: the same separate fits, NCHW against NHWC
        nchw = build(ctxs[max(ks)][:kref], False)
        separate(nchw)
        ref = differences(last[max(ks)][0][:kref], nchw, ctxs[max(ks)][:kref])
        rows.append({"threads": threads, "k": kref, "steps": steps, "reference": True, **ref})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Measure, print one row per (threads, K), write JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stacked_bench", description=__doc__)
    parser.add_argument("--ks", type=positive_int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=positive_int, default=150, help="steps per fit")
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = [r for t in args.threads for r in measure(args.ks, t, args.steps, args.repeats)]
    print(
        f"{'thr':>3} {'K':>3} {'sep fits/s':>10} {'stk fits/s':>10} {'ratio':>6} "
        f"{'[min, max]':>14} {'|dlogit|':>9} {'|dacc|':>7}"
    )
    for r in rows:
        diffs = f"{r['max_abs_logit_diff']:9.3g} {r['max_abs_acc_diff']:7.4f}"
        if r.get("reference"):
            print(f"{r['threads']:3d} {r['k']:3d} {'reference: separate NCHW vs NHWC':>44} {diffs}")
            continue
        print(
            f"{r['threads']:3d} {r['k']:3d} {r['separate_fits_per_s']:10.3f} "
            f"{r['stacked_fits_per_s']:10.3f} {r['ratio']:6.2f} "
            f"[{r['ratio_min']:5.2f}, {r['ratio_max']:5.2f}] {diffs}"
        )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
