"""The report's training curves: the median-seed run per arm, its fits, cached stages found."""

import math
import shutil

import pandas as pd
import pytest
from helpers import synthetic_record, write_dict

from benchmarks.run import execute
from reports.build import build_report
from reports.collect import collect
from reports.training import chosen_runs, read_curve, summary_row


def test_the_chooser_picks_the_median_seed_at_the_smallest_and_largest_budget(tmp_path):
    accs = {  # (regime, budget): accuracy per seed
        ("scratch", 1): [0.9, 0.1, 0.5, 0.3, 0.7],  # median 0.5: seed 2
        ("scratch", 5): [0.2, 0.8, 0.6, 0.4],  # even: the lower middle, 0.4: seed 3
        ("scratch", "all"): [0.95, 0.85, 0.9],  # median 0.9: seed 2
        ("pixels", 1): [0.3, 0.2, 0.1],  # a baseline: no fits, never chosen
    }
    for (regime, k), values in accs.items():
        for seed, acc in enumerate(values):
            write_dict(
                tmp_path / f"{regime}-{k}-{seed}" / "record.json",
                synthetic_record(regime, k, seed, acc),
            )
    write_dict(
        tmp_path / "failed" / "record.json",
        synthetic_record("scratch", 1, 7, float("nan"), status="failed"),
    )
    runs, _, _ = collect([tmp_path])
    chosen = chosen_runs(runs, without={"pixels"})
    picked = {(r.per_class, r.seed, r.budget_end, r.n_seeds) for r in chosen.itertuples()}
    assert picked == {("1", 2, "smallest", 5), ("all", 2, "largest", 3)}  # 5 per class: neither
    assert set(chosen_runs(runs)["regime"]) == {"scratch", "pixels"}


def test_a_non_finite_loss_is_kept_and_named(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train/loss,lr-AdamW\n0,0,2.3,\n0,0,,0.1\n0,9,1.5,\n0,19,nan,\n")
    curve = read_curve(path)
    assert curve["step"].tolist() == [0, 9, 19]  # the row of another metric only is left out
    assert math.isnan(curve["loss"].iloc[-1])
    row = pd.Series(
        {
            "arm": "scratch",
            "per_class": "1",
            "budget_end": "only",
            "run_dir": "/j",
            "test/acc": 0.5,
            "n_seeds": 1,
        }
    )
    line = summary_row(row, type("L", (), {"fit": "train", "origin": "this run", "curve": curve}))
    assert line["non-finite from step"] == 19
    assert line["last/first"] == pytest.approx(1.5 / 2.3)
    assert read_curve(tmp_path / "missing.csv") is None


LOG = ["trainer.log_every_n_steps=1", "pretrain.steps=6", "train.steps=6"]


def test_a_tiny_sweep_s_report_shows_the_curves_of_its_median_runs(
    compose_cfg, tmp_path, monkeypatch
):
    monkeypatch.setenv("REGIMEBENCH_PDF", "matplotlib")  # the page is what is checked here
    sweep = tmp_path / "sweep"
    jobs = [("finetune", k, s) for k in (1, 2) for s in (0, 1)] + [("pixels", 1, 0)]
    for regime, k, seed in jobs:  # each seed builds its pretraining at budget 1; 2 hits it
        cfg = compose_cfg(f"regime={regime}", f"budget.per_class={k}", f"seed={seed}", *LOG)
        record = execute(cfg, sweep / f"{regime}-{k}-{seed}")
        assert record.status == "ok", record.error
    index = build_report([sweep], tmp_path / "report")
    assert (index.parent / "figures" / "training_curves.png").stat().st_size > 0
    page = index.read_text()
    assert 'alt="training-loss curves of the chosen runs"' in page
    runs = pd.read_csv(index.parent / "runs.csv", dtype={"per_class": str})
    median = {}
    for k in (1, 2):
        cell = runs[(runs["regime"] == "finetune") & (runs["per_class"] == str(k))]
        cell = cell.sort_values(["test/acc", "subset_seed", "train_seed"], kind="stable")
        median[k] = cell.iloc[(len(cell) - 1) // 2]["seed"]
    section = page.split('id="training-curves"')[1].split('id="forgetting"')[0]
    assert f"finetune-2-{median[2]}" in section and f"finetune-1-{median[1]}" in section
    assert f"finetune-2-{1 - median[2]}" not in section  # the other seed is not shown
    assert f"from the cache, built by finetune-1-{median[2]}" in section  # the builder's curve
    assert "pixels" not in section  # a baseline has no fit
    # only the cache hits: their pretraining was built outside the folder read
    hits = tmp_path / "hits"
    for k in (0, 1):
        shutil.copytree(sweep / f"finetune-2-{k}", hits / f"finetune-2-{k}")
    page = build_report([hits], tmp_path / "r2").read_text()
    assert "from the cache, built outside these sweeps: no curve here" in page
    assert (tmp_path / "r2" / "figures" / "training_curves.png").exists()  # train curves remain
    # records without CSVs (loggers off, older records): the section says so, nothing fails
    for csv in sweep.glob("*/*/metrics.csv"):
        csv.unlink()
    index = build_report([sweep], tmp_path / "r3")
    assert "No training curves: the job folders" in index.read_text()
    assert not (index.parent / "figures" / "training_curves.png").exists()
