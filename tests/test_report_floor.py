"""The floor: the best classical baseline per budget (plot) and by AULC (sentence)."""

import html
import json
import re

import numpy as np
import pandas as pd
from helpers import as_records, synthetic_record, write_dict

from reports.build import build_report
from reports.floor import baseline_regimes, floor_curve

READS = {"pixels": ["probe"], "svm": ["svm"], "finetune": ["pretrain", "train", "probe"]}
# svm wins at 1 and 5 per class, pixels with all labels; svm has the larger AULC
CURVES = {"pixels": [0.40, 0.60, 0.95], "svm": [0.50, 0.70, 0.90], "finetune": [0.45, 0.8, 0.9]}
BUDGETS = ["1", "5", "all"]


def _write_sweep(root, with_reads=True):
    rng = np.random.default_rng(3)
    for regime, curve in CURVES.items():
        for k, base in zip(BUDGETS, curve, strict=True):
            for seed in range(4):
                acc = float(base + rng.normal(0, 0.005))
                extra = {"reads": READS[regime]} if with_reads else {}
                rec = synthetic_record(regime, k if k == "all" else int(k), seed, acc, **extra)
                rec["subset_seed"] = rec["train_seed"] = seed
                write_dict(root / f"{regime}-{k}-{seed}" / "record.json", rec)


def test_baselines_are_the_regimes_that_read_no_gradient_stage(tmp_path):
    _write_sweep(tmp_path)
    dicts = [json.loads(p.read_text()) for p in tmp_path.rglob("record.json")]
    assert baseline_regimes(as_records(dicts)) == {"pixels", "svm"}
    old = as_records([{k: v for k, v in r.items() if k != "reads"} for r in dicts])
    assert baseline_regimes(old) == set()  # unknown: no floor rather than a wrong one


def test_the_floor_is_the_per_budget_best_baseline_and_the_report_names_it(tmp_path):
    _write_sweep(tmp_path / "s")
    out = build_report([tmp_path / "s"], tmp_path / "report").parent
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False, na_values=[""])
    floor = floor_curve(summary, {"pixels", "svm"})
    assert floor["regime"].tolist() == ["svm", "svm", "pixels"]  # by budget 1, 5, all
    for row in floor.itertuples():
        cell = summary[summary["per_class"].astype(str) == str(row.per_class)]
        best = cell[cell["regime"].isin(["pixels", "svm"])]["test/acc_mean"].max()
        assert row.acc == best
    eff = pd.read_csv(out / "data_efficiency.csv").set_index("arm")
    assert eff.loc["svm", "aulc"] > eff.loc["pixels", "aulc"]
    text = html.unescape(re.sub(r"<[^>]+>", " ", (out / "index.html").read_text()))
    svm = eff.loc["svm"]
    assert (
        f"the best classical baseline by AULC is svm, {svm.aulc:.3f} "
        f"[{svm.aulc_ci_low:.3f}, {svm.aulc_ci_high:.3f}]" in text
    )
    assert "among pixels, svm" in text
