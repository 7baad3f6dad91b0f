"""``regimebench-golden check|update``: the repository's reference numbers, kept from rotting.

``tests/golden/digits.json`` holds the metrics of every run of ``experiment=golden`` (a small
fixed sweep on the digits default) and the environment they were made in. ``check`` reruns the
sweep in a scratch folder and compares run by run; ``update`` rewrites the file after a change
whose effect on the numbers is intended (say why in the commit).

Tolerances come from the sweep itself, not from a guessed delta: for each regime, budget and
metric, twice the standard deviation over the three seeds of that cell. A code change that moves
a run by more than the spread a different seed causes is a real change. A metric that is
constant across seeds (forgetting of a frozen probe) must match exactly.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.config import CONF_DIR
from reports.collect import collect

GOLDEN_FILE = CONF_DIR.parent / "tests" / "golden" / "digits.json"
EXPERIMENT = "experiment=golden"
METRICS = ("test/acc", "test/f1_macro", "test/ece", "source/acc_after", "source/forgetting")
RULE = "2 x the seed-to-seed standard deviation (ddof=1) of each regime x budget cell"
KEY = ("regime", "per_class", "seed")


def run_sweep(sweep_dir: Path) -> pd.DataFrame:
    """Run ``experiment=golden`` into ``sweep_dir`` (its own cache); one row per run."""
    env_cache = f"paths.cache_dir={sweep_dir / 'cache'}"
    cmd = [str(Path(sys.executable).parent / "regimebench"), "-m", EXPERIMENT, env_cache]
    cmd.append(f"hydra.sweep.dir={sweep_dir / 'sweep'}")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    runs, records, bad = collect([sweep_dir / "sweep"])
    if bad or (runs["status"] != "ok").any():
        raise RuntimeError(f"the golden sweep has failed or unreadable runs: {bad}")
    runs.attrs["environment"] = {
        k: v for k, v in records[0]["environment"].items() if k != "git_commit"
    }
    return runs


def tolerances(runs: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """Per regime, budget and metric: 2 x the standard deviation over seeds of that cell."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (regime, per_class), cell in runs.groupby(["regime", "per_class"]):
        spread = {
            m: 2 * float(cell[m].std(ddof=1))
            for m in METRICS
            if m in cell and cell[m].notna().all()
        }
        out.setdefault(str(regime), {})[str(per_class)] = spread
    return out


def golden_from(runs: pd.DataFrame) -> dict[str, Any]:
    """The file's content for a finished golden sweep."""
    rows = []
    for r in runs.sort_values(list(KEY)).to_dict("records"):
        metrics = {m: float(r[m]) for m in METRICS if m in r and not pd.isna(r[m])}
        rows.append(
            {"regime": r["regime"], "per_class": str(r["per_class"]), "seed": int(r["seed"])}
            | {"metrics": metrics}
        )
    return {
        "experiment": EXPERIMENT,
        "made": dt.date.today().isoformat(),
        "environment": runs.attrs.get("environment", {}),
        "tolerance_rule": RULE,
        "tolerances": tolerances(runs),
        "runs": rows,
    }


def differences(golden: dict[str, Any], runs: pd.DataFrame) -> list[str]:
    """One line per run and metric outside its tolerance, or missing; empty when all match."""
    now = {
        (str(r["regime"]), str(r["per_class"]), int(r["seed"])): r for r in runs.to_dict("records")
    }
    problems = []
    for ref in golden["runs"]:
        key = (ref["regime"], str(ref["per_class"]), int(ref["seed"]))
        name = f"{key[0]} per_class={key[1]} seed={key[2]}"
        if key not in now:
            problems.append(f"{name}: missing from the rerun")
            continue
        for metric, expected in ref["metrics"].items():
            tol = golden["tolerances"][key[0]][key[1]][metric]
            got = now[key].get(metric, math.nan)
            if not abs(got - expected) <= tol:
                problems.append(
                    f"{name}: {metric} {got:.4f} vs golden {expected:.4f} "
                    f"({got - expected:+.4f}, tolerance ±{tol:.4f})"
                )
    return problems


def main(argv: list[str] | None = None) -> int:
    """``check``: exit 1 with one line per moved number; ``update``: rewrite the golden file."""
    parser = argparse.ArgumentParser(
        prog="regimebench-golden",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("check", "update"))
    parser.add_argument("--golden", type=Path, default=GOLDEN_FILE, help="the golden file")
    args = parser.parse_args(argv)
    if args.action == "check" and not args.golden.exists():
        print(
            f"regimebench-golden: error: no golden file at {args.golden}; run "
            "`regimebench-golden update` first",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="regimebench-golden-") as tmp:
        runs = run_sweep(Path(tmp))
    if args.action == "update":
        args.golden.parent.mkdir(parents=True, exist_ok=True)
        args.golden.write_text(json.dumps(golden_from(runs), indent=1) + "\n")
        print(f"wrote {args.golden} ({len(runs)} runs)")
        return 0
    problems = differences(json.loads(args.golden.read_text()), runs)
    for line in problems:
        print(f"golden: {line}")
    print(f"golden: {len(runs)} runs, {len(problems)} outside tolerance ({RULE})")
    return 1 if problems else 0


def entry() -> None:
    """Console-script wrapper: the exit status of :func:`main`."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
