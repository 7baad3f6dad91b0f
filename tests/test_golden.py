"""The golden numbers: the rerun matches the kept file, and a moved number is named exactly."""

import copy
import json

import pandas as pd
import pytest

from benchmarks.golden import GOLDEN_FILE, differences, main, tolerances


def _runs_from(golden: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [{k: r[k] for k in ("regime", "per_class", "seed")} | r["metrics"] for r in golden["runs"]]
    )


def test_golden_file_is_complete_and_its_tolerances_follow_from_it():
    golden = json.loads(GOLDEN_FILE.read_text())
    runs = _runs_from(golden)
    assert len(runs) == 5 * 2 * 3  # regimes x budgets x seeds of experiment=golden
    assert golden["environment"]["torch"].startswith("2.14.1")
    assert tolerances(runs) == golden["tolerances"]  # derived from the seed spread, not guessed
    assert differences(golden, runs) == []


def test_a_moved_number_is_reported_with_run_metric_and_size():
    golden = json.loads(GOLDEN_FILE.read_text())
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
def test_rerunning_the_golden_sweep_matches_the_kept_numbers(capsys):
    assert main(["check"]) == 0, capsys.readouterr().out
    assert "30 runs, 0 outside tolerance" in capsys.readouterr().out
