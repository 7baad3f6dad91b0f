"""The golden numbers: the rerun matches the kept file, and a moved number is named exactly."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.golden import (
    GOLDEN_FILE,
    METRICS,
    check,
    differences,
    file_with,
    numeric_environment,
    run_sweep,
    set_for,
    sets_of,
    tolerances,
)
from benchmarks.golden_means import halfwidths, mean_differences


def _runs_from(golden: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [{k: r[k] for k in ("regime", "per_class", "seed")} | r["metrics"] for r in golden["runs"]]
    )


def test_golden_file_is_complete_and_its_tolerances_follow_from_it():
    for golden in sets_of(json.loads(GOLDEN_FILE.read_text())):
        runs = _runs_from(golden)
        assert len(runs) == 10 * 2 * 3  # regimes x budgets x seeds of experiment=golden
        assert golden["environment"]["torch"].startswith("2.14.1")
        assert tolerances(runs) == golden["tolerances"]  # from the seed spread, not guessed
        assert differences(golden, runs) == []


def test_each_numeric_environment_is_compared_with_its_own_set_only():
    avx2 = {"made": "a", "environment": {"torch": "2.14.1", "cpu_capability": "AVX2"}, "runs": []}
    avx512 = avx2 | {"made": "b", "environment": avx2["environment"] | {"cpu_capability": "AVX512"}}
    golden = file_with(file_with(None, avx2), avx512)
    assert set_for(golden, {"torch": "2.14.1", "cpu_capability": "AVX512", "python": "x"}) is avx512
    assert set_for(golden, {"torch": "2.15.0", "cpu_capability": "AVX2"}) is None
    redone = avx2 | {"made": "c"}
    assert [s["made"] for s in sets_of(file_with(golden, redone))] == ["b", "c"]  # add
    assert [s["made"] for s in sets_of(file_with(None, redone))] == ["c"]  # update
    old_format = {"experiment": "experiment=golden"} | avx2  # one set at the top level
    assert set_for(old_format, avx2["environment"]) is old_format


def test_a_machine_without_a_set_is_still_checked_by_seed_means():
    golden = json.loads(GOLDEN_FILE.read_text())
    runs = _runs_from(sets_of(golden)[0])
    here = numeric_environment() | {"cpu_capability": "NO_SUCH_ISA"}
    lines = check(golden, runs, here)
    assert "no set made in this numeric environment" in lines[0]
    assert "cpu_capability=NO_SUCH_ISA" in lines[0]
    assert not any("runs, " in line for line in lines)  # no per-run comparison
    assert lines[-2].endswith("set: 0 outside their interval") and lines[-1] == "golden: ok"


def test_seed_means_catch_a_planted_regression_and_pass_the_golden_runs_themselves():
    golden = sets_of(json.loads(GOLDEN_FILE.read_text()))[0]
    runs = _runs_from(golden)
    assert mean_differences(golden, runs, METRICS) == []
    width = halfwidths(runs, METRICS, n_new=3)
    tol = width[("finetune", "2", "test/acc")]
    assert 0 < tol < 0.3  # the interval is finite and narrower than a broken regime's drop
    broken = copy.deepcopy(runs)
    broken.loc[broken["regime"] == "finetune", "test/acc"] -= tol + 0.01
    problems = mean_differences(golden, broken, METRICS)
    assert problems and all(p.startswith("finetune per_class=") for p in problems)
    assert any(f"interval ±{tol:.4g})" in p for p in problems)
    within = copy.deepcopy(runs)
    within.loc[within["regime"] == "finetune", "test/acc"] -= tol * 0.9
    assert mean_differences(golden, within, METRICS) == []
    # a metric constant over the golden seeds (a frozen probe forgets 0) must stay constant
    frozen = copy.deepcopy(runs)
    frozen.loc[frozen["regime"] == "linear_probe", "source/forgetting"] = 0.001
    assert len(mean_differences(golden, frozen, METRICS)) == 2  # both budgets
    assert (
        "missing from the rerun"
        in mean_differences(golden, runs[runs["regime"] != "svm"], METRICS)[0]
    )


def test_a_moved_number_is_reported_with_run_metric_and_size():
    golden = sets_of(json.loads(GOLDEN_FILE.read_text()))[0]
    runs = _runs_from(golden)
    tol = golden["tolerances"]["finetune"]["2"]["test/acc"]
    moved = copy.deepcopy(runs)
    row = (moved["regime"] == "finetune") & (moved["per_class"] == "2") & (moved["seed"] == 1)
    moved.loc[row, "test/acc"] -= tol + 0.01
    [line] = differences(golden, moved)
    assert line.startswith("finetune per_class=2 seed=1: test/acc ")
    assert f"({-(tol + 0.01):+.4f}, tolerance ±{tol:.4f})" in line
    within = copy.deepcopy(runs)
    within.loc[row, "test/acc"] -= tol * 0.9
    assert differences(golden, within) == []
    assert "missing from the rerun" in differences(golden, runs[~row])[0]


@pytest.mark.slow
def test_rerunning_the_golden_sweep_matches_the_kept_numbers(tmp_path):
    """Per run on the CPU that made a set (else by means only), and a planted regression fails."""
    golden = json.loads(GOLDEN_FILE.read_text())
    runs = run_sweep(tmp_path)
    lines = check(golden, runs, numeric_environment())
    assert lines[-1] == "golden: ok", "\n".join(lines)
    if set_for(golden, numeric_environment()) is not None:
        assert "golden: 60 runs, 0 outside tolerance" in "\n".join(lines)
    broken = runs.copy()
    broken.loc[broken["regime"] == "lp_ft", "test/acc"] -= 0.3  # a regime that broke
    lines = check(golden, broken, numeric_environment())
    assert lines[-1] == "golden: FAILED"
    assert any(line.startswith("golden: lp_ft per_class=2: mean test/acc") for line in lines)


def _other_cpu() -> str:
    """A kernel level this CPU can run, other than its own, for which the golden file has no set.

    Not AVX2 on an AVX512 machine: the file's set was made on a real AVX2 machine, and AVX2
    emulated on AVX512 is not that (oneDNN picks its kernels by the CPU, not this variable).
    """
    return "default"


@pytest.mark.slow
def test_the_golden_check_passes_on_another_cpu():
    """ATEN_CPU_CAPABILITY emulates another machine's kernels: no set of its own, means hold."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": _other_cpu()}
    script = Path(sys.executable).parent / "regimebench-golden"
    proc = subprocess.run(
        [str(script), "check"], env=env, capture_output=True, text=True, timeout=3600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "no set made in this numeric environment" in proc.stdout
    assert "golden: ok" in proc.stdout
