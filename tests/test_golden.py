"""The golden numbers: the rerun matches the kept file, and a moved number is named exactly."""

import copy
import json

import pandas as pd
import pytest

from benchmarks.golden import (
    GOLDEN_FILE,
    NO_SET,
    differences,
    file_with,
    main,
    numeric_environment,
    set_for,
    sets_of,
    tolerances,
)


def _kept() -> dict:
    """The set made on this machine's kind of CPU (the CI machine's), or skip saying why."""
    kept = set_for(json.loads(GOLDEN_FILE.read_text()), numeric_environment())
    if kept is None:
        pytest.skip(f"no golden set for {numeric_environment()} (see benchmarks/golden.py)")
    return kept


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


def test_check_on_a_machine_without_a_set_says_so_and_runs_nothing(tmp_path, capsys):
    golden = json.loads(GOLDEN_FILE.read_text())
    for kept in sets_of(golden):
        kept["environment"] = kept["environment"] | {"cpu_capability": "NO_SUCH_ISA"}
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(golden))
    assert main(["check", "--golden", str(path)]) == NO_SET
    out = capsys.readouterr().out
    assert f"no set made in this numeric environment (torch={numeric_environment()['torch']}" in out
    assert "cpu_capability=NO_SUCH_ISA" in out


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
def test_rerunning_the_golden_sweep_matches_the_kept_numbers(capsys):
    _kept()
    assert main(["check"]) == 0, capsys.readouterr().out
    assert "60 runs, 0 outside tolerance" in capsys.readouterr().out
