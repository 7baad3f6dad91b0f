"""A tiny digits_forgetting sweep through the real entry point: matrix, metrics, findings."""

import json

import pandas as pd
import pytest
from helpers import run_cli

TINY_STREAM = [
    "-m",
    "experiment=digits_forgetting",
    "seed=0,1",
    "continued_pretrain.replay=0.0,0.25",
    "continued_pretrain.schedule=rewarm",
    "pretrain.steps=6",
    "pretrain.batch_size=32",
    "continued_pretrain.steps=6",
    "continued_pretrain.batch_size=32",
    "budget.per_class=5",
]


@pytest.mark.slow
def test_tiny_forgetting_sweep_writes_matrix_metrics_and_findings(tmp_path):
    run_cli(TINY_STREAM, tmp_path)
    sweep = tmp_path / "multirun" / "digits_forgetting"
    records = [json.loads(p.read_text()) for p in sweep.glob("*/record.json")]
    assert len(records) == 4 and {r["status"] for r in records} == {"ok"}
    rec = records[0]
    assert rec["info"]["stream_domains"] == ["digits", "digits_rot90", "digits_invert"]
    assert {f"R/{i}/{j}" for i in range(3) for j in range(3)} <= set(rec["metrics"])
    assert abs(rec["metrics"]["test/acc"] - rec["metrics"]["R/2/2"]) < 0.1  # l2 choice only
    assert "R/i/j" in rec["definitions"] and "b/j" in rec["definitions"]
    # one source pretraining per seed, shared by both replay variants
    assert sum(not r["info"]["pretrain_cached"] for r in records) == 2

    report = sweep / "report"
    matrix = pd.read_csv(report / "accuracy_matrix.csv")
    assert list(matrix.columns) == [
        "variant",
        "stage",
        "stage_domain",
        "domain",
        "mean",
        "ci_low",
        "ci_high",
        "n_seeds",
    ]
    assert len(matrix) == 2 * 3 * 3 and (matrix["n_seeds"] == 2).all()
    assert set(matrix["variant"]) == {"replay=0.0", "replay=0.25"}
    transfer = pd.read_csv(report / "transfer_metrics.csv")
    stream_rows = transfer[transfer["variant"].str.startswith("replay=")]
    assert set(stream_rows["metric"]) >= {
        "average_accuracy",
        "backward_transfer",
        "forward_transfer",
        "forgetting_max",
        "forgetting_first",
        "target_gain",
    }
    assert stream_rows["definition"].str.len().min() > 20
    # the numbers in the table follow from the matrix (GEM BWT of the replay=0.0 variant's mean)
    bwt = stream_rows.set_index(["variant", "metric"]).loc[("replay=0.0", "backward_transfer")]
    m = matrix[matrix["variant"] == "replay=0.0"].set_index(["stage", "domain"])["mean"]
    expected = (
        (m[(2, "digits")] - m[(0, "digits")]) + (m[(2, "digits_rot90")] - m[(1, "digits_rot90")])
    ) / 2
    assert bwt["value"] == pytest.approx(expected, abs=1e-9)
    page = (report / "index.html").read_text()
    assert "Replay of 25% (schedule rewarm)" in page
    for figure in ("accuracy_matrix", "forgetting_vs_replay", "forgetting_tradeoff"):
        assert (report / "figures" / f"{figure}.png").stat().st_size > 0
