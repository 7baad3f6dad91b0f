"""``regimebench-golden check|update|add``: the repository's reference numbers, kept from rotting.

``tests/golden/digits.json`` holds the metrics of every run of ``experiment=golden`` (a small
fixed sweep on the digits default), one set per numeric environment they were made in. ``check``
reruns the sweep in a scratch folder and compares run by run with the set of this machine's
environment; ``update`` rewrites the file with this machine's set alone after a change whose
effect on the numbers is intended (say why in the commit); ``add`` keeps the other sets and adds
or replaces this machine's, for a new kind of machine with unchanged code.

A numeric environment is the torch version and the CPU kernels torch dispatches to
(``cpu_capability``: AVX2, AVX512, ...). The same code gives different numbers run by run on
AVX2 and AVX512 kernels: training is chaotic, so a different rounding moves a run about as far
as a different seed does. Emulating another machine (``ATEN_CPU_CAPABILITY=default
ONEDNN_MAX_CPU_ISA=AVX``) put 15 of 30 runs outside the tolerances below. Such numbers are not
comparable run by run, so the per-run check compares only with the set made in this machine's
environment. Every ``check`` also compares each regime x budget's mean over seeds with every
set in the file (``benchmarks/golden_means.py``), which holds on any CPU: a machine with no set
of its own still gets a check, and says that its runs were compared by means only.

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
import torch

from benchmarks.config import CONF_DIR
from benchmarks.golden_means import mean_differences
from common.metrics import PINNED
from reports.collect import collect

GOLDEN_FILE = CONF_DIR.parent / "tests" / "golden" / "digits.json"
EXPERIMENT = "experiment=golden"
METRICS = PINNED  # the registry's metrics the golden file pins (common/metrics.py)
RULE = "2 x the seed-to-seed standard deviation (ddof=1) of each regime x budget cell"
KEY = ("regime", "per_class", "seed")
NUMERIC_ENVIRONMENT = ("torch", "cpu_capability")  # what changes a run's floating-point path


def numeric_environment() -> dict[str, str]:
    """This machine's numeric environment (the golden sweep trains on the CPU)."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def _signature(environment: dict[str, Any]) -> dict[str, Any]:
    return {k: environment.get(k) for k in NUMERIC_ENVIRONMENT}


def sets_of(golden: dict[str, Any]) -> list[dict[str, Any]]:
    """The file's sets; a file of the first format (one set at the top level) is one set."""
    return golden.get("sets", [golden])


def set_for(golden: dict[str, Any], environment: dict[str, Any]) -> dict[str, Any] | None:
    """The set made in ``environment``'s numeric environment, or None."""
    want = _signature(environment)
    return next((s for s in sets_of(golden) if _signature(s["environment"]) == want), None)


def describe(environment: dict[str, Any]) -> str:
    """``torch=2.14.1 cpu_capability=AVX2``: a numeric environment in one line."""
    return " ".join(f"{k}={v}" for k, v in _signature(environment).items())


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
        k: v for k, v in records[0].environment.items() if k != "git_commit"
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
    """One set of the file: a finished golden sweep, its environment and its tolerances."""
    rows = []
    for r in runs.sort_values(list(KEY)).to_dict("records"):
        metrics = {m: float(r[m]) for m in METRICS if m in r and not pd.isna(r[m])}
        rows.append(
            {"regime": r["regime"], "per_class": str(r["per_class"]), "seed": int(r["seed"])}
            | {"metrics": metrics}
        )
    return {
        "made": dt.date.today().isoformat(),
        "environment": runs.attrs.get("environment", {}),
        "tolerances": tolerances(runs),
        "runs": rows,
    }


def file_with(golden: dict[str, Any] | None, new_set: dict[str, Any]) -> dict[str, Any]:
    """The file with ``new_set`` in place of any set of the same numeric environment."""
    others = [] if golden is None else sets_of(golden)
    others = [
        s for s in others if _signature(s["environment"]) != _signature(new_set["environment"])
    ]
    return {
        "experiment": EXPERIMENT,
        "tolerance_rule": RULE,
        "numeric_environment": list(NUMERIC_ENVIRONMENT),
        "sets": [*others, new_set],
    }


def differences(golden: dict[str, Any], runs: pd.DataFrame) -> list[str]:
    """One line per run and metric outside its tolerance, or missing; empty when all match.

    ``golden`` is one set (:func:`set_for`), made in the same numeric environment as ``runs``.
    """
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


def check(golden: dict[str, Any], runs: pd.DataFrame, here: dict[str, Any]) -> list[str]:
    """What ``check`` prints for a finished rerun; the last line says whether it passed.

    Per run against the set of this numeric environment, where the file has one; per regime x
    budget mean against every set, on any machine.
    """
    kept = set_for(golden, here)
    lines, problems = [], 0
    if kept is None:
        made = "; ".join(describe(s["environment"]) for s in sets_of(golden))
        lines.append(
            f"no set made in this numeric environment ({describe(here)}); the file has {made}. "
            "Runs on other CPU kernels differ like seeds: compared by seed means only "
            "(`regimebench-golden add` keeps this machine's numbers)."
        )
    else:
        moved = differences(kept, runs)
        lines += [*moved, f"{len(runs)} runs, {len(moved)} outside tolerance ({RULE})"]
        problems += len(moved)
    for each in sets_of(golden):
        off = mean_differences(each, runs, METRICS)
        where = describe(each["environment"])
        lines += [*off, f"seed means vs the {where} set: {len(off)} outside their interval"]
        problems += len(off)
    return [f"golden: {line}" for line in lines] + [f"golden: {'FAILED' if problems else 'ok'}"]


def main(argv: list[str] | None = None) -> int:
    """``check``: exit 1 with one line per moved number or seed mean, 0 when all match."""
    parser = argparse.ArgumentParser(
        prog="regimebench-golden",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("check", "update", "add"))
    parser.add_argument("--golden", type=Path, default=GOLDEN_FILE, help="the golden file")
    args = parser.parse_args(argv)
    if args.action == "check" and not args.golden.exists():
        print(
            f"regimebench-golden: error: no golden file at {args.golden}; run "
            "`regimebench-golden update` first",
            file=sys.stderr,
        )
        return 2
    golden = json.loads(args.golden.read_text()) if args.golden.exists() else None
    with tempfile.TemporaryDirectory(prefix="regimebench-golden-") as tmp:
        runs = run_sweep(Path(tmp))
    if args.action in ("update", "add"):
        new_set = golden_from(runs)
        content = file_with(golden if args.action == "add" else None, new_set)
        args.golden.parent.mkdir(parents=True, exist_ok=True)
        args.golden.write_text(json.dumps(content, indent=1) + "\n")
        print(f"wrote {args.golden} ({len(runs)} runs; sets: {len(content['sets'])})")
        return 0
    assert golden is not None
    lines = check(golden, runs, numeric_environment())
    print("\n".join(lines))
    return 1 if lines[-1] == "golden: FAILED" else 0


def entry() -> None:
    """Console-script wrapper: the exit status of :func:`main`."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
