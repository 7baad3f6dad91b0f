"""``regimebench-repro SWEEP_DIR [--runs N] [--tolerance T]``: re-run recorded runs, compare.

Each sampled ``ok`` record is re-run from the resolved config stored in it, in a temporary
folder with a fresh cache (so a change in pretraining code is caught too, not masked by a cached
backbone), at the thread count the record was made with. Every metric is compared; the exit
status is 1 when any differs by more than the tolerance (default 0: bit for bit, which holds
on the same machine and thread count).
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import sys
import tempfile
from pathlib import Path

from benchmarks import tuning
from benchmarks.cli_types import non_negative_float, positive_int
from benchmarks.run import execute
from reports.collect import DuplicateRunsError, NoRecordsError, collect


def compare(old: dict[str, float], new: dict[str, float], tolerance: float) -> list[tuple]:
    """(metric, recorded, rerun, |diff|, ok) for every metric of either record."""
    rows = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, math.nan), new.get(key, math.nan)
        diff = abs(a - b)
        ok = diff <= tolerance or (math.isnan(a) and math.isnan(b))
        rows.append((key, a, b, diff, ok))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Re-run a sample of a sweep's runs; print a table; exit 1 on a mismatch."""
    parser = argparse.ArgumentParser(
        prog="regimebench-repro",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--runs", type=positive_int, help="how many runs to re-run (default: all)")
    parser.add_argument(
        "--tolerance", type=non_negative_float, default=0.0, help="allowed |difference|"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the choice of runs")
    args = parser.parse_args(argv)
    try:
        runs, records, _ = collect([args.sweep_dir])
    except (NoRecordsError, DuplicateRunsError) as err:
        print(f"regimebench-repro: error: {err}", file=sys.stderr)
        return 2
    chosen = [
        (row.run_dir, rec) for row, rec in zip(runs.itertuples(), records, strict=True) if rec.ok
    ]
    if args.runs is not None and args.runs < len(chosen):
        chosen = random.Random(args.seed).sample(chosen, args.runs)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    bad_runs = []
    print(f"  {'metric':26s} {'recorded':>10s} {'rerun':>10s} {'|diff|':>10s}")
    with tempfile.TemporaryDirectory(prefix="regimebench-repro-") as tmp:
        for i, (run_dir, rec) in enumerate(chosen):
            cfg = tuning.declared_config(rec.config, rec.selection)  # execute applies the trial
            cfg.paths.cache_dir = str(Path(tmp) / "cache")
            new = execute(cfg, Path(tmp) / str(i))
            assert new is not None  # a fresh folder never holds a finished record
            print(run_dir)
            for key, a, b, diff, ok in compare(rec.metrics, new.metrics, args.tolerance):
                flag = "" if ok else "  MISMATCH"
                print(f"  {key:26s} {a:10.6f} {b:10.6f} {diff:10.2e}{flag}")
                if not ok:
                    bad_runs.append(run_dir)
    bad = sorted(set(bad_runs))
    if bad:
        print(f"{len(bad)} of {len(chosen)} runs differ beyond {args.tolerance}:")
        for run_dir in bad:
            print(f"  {run_dir}")
        return 1
    print(f"{len(chosen)} runs reproduced within {args.tolerance}")
    return 0


def entry() -> None:
    """Console-script wrapper."""
    sys.exit(main())
