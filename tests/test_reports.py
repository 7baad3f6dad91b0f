"""The report on synthetic records with known values: aggregation, files, escaping, errors."""

import json

import pandas as pd
import pytest
from helpers import synthetic_record as _record
from helpers import write_dict
from scipy import stats

from common.records import SCHEMA_VERSION
from reports.__main__ import main as report_main
from reports.aggregate import summarize
from reports.build import build_report
from reports.collect import collect


@pytest.fixture
def sweep(tmp_path):
    """2 regimes x 2 budgets x 3 seeds with known accuracies, plus one failed run."""
    accs = {
        ("scratch", 1): [0.5, 0.6, 0.7],
        ("scratch", 5): [0.8, 0.8, 0.9],
        ("finetune", 1): [0.7, 0.8, 0.9],
        ("finetune", 5): [0.9, 0.9, 0.9],
    }
    for (regime, k), values in accs.items():
        for seed, acc in enumerate(values):
            fg = 0.1 * seed if regime == "finetune" else None
            write_dict(
                tmp_path / "sweep" / f"{regime}-{k}-{seed}" / "record.json",
                _record(regime, k, seed, acc, forgetting=fg),
            )
    write_dict(
        tmp_path / "sweep" / "scratch-1-9" / "record.json",
        _record("scratch", 1, 9, float("nan"), status="failed"),
    )
    return tmp_path / "sweep"


def test_summary_means_seeds_and_failures(sweep):
    runs, _, bad = collect([sweep])
    assert len(runs) == 13 and bad == []
    s = summarize(runs).set_index(["regime", "per_class"])
    assert s.loc[("scratch", "1"), "test/acc_mean"] == pytest.approx(0.6)
    assert s.loc[("scratch", "1"), "n_seeds"] == 3  # the failed run is not a seed of the mean
    assert s.loc[("scratch", "1"), "n_failed"] == 1
    assert s.loc[("finetune", "5"), "test/acc_ci_low"] == pytest.approx(0.9)
    assert s.loc[("finetune", "1"), "source/forgetting_mean"] == pytest.approx(0.1)
    lo, hi = s.loc[("scratch", "1"), ["test/acc_ci_low", "test/acc_ci_high"]]
    ref = stats.ttest_1samp([0.5, 0.6, 0.7], 0).confidence_interval()  # Student t, not [min, max]
    assert (lo, hi) == pytest.approx((ref.low, ref.high))
    assert s.loc[("scratch", "1"), "test/acc_std"] == pytest.approx(0.1)
    assert s.loc[("scratch", "1"), "test/acc_n"] == 3
    assert "test/acc_boot_low" not in s  # no cell has the 10 seeds a BCa interval needs


def test_report_files_hold_the_numbers(sweep, tmp_path):
    index = build_report([sweep], tmp_path / "report")
    out = index.parent
    for name in (
        "runs.csv",
        "summary.csv",
        "report.pdf",
        "figures/data_efficiency.png",
        "figures/data_efficiency.svg",
        "figures/forgetting.png",
        "figures/frontier.png",  # finetune forgets: the learning-forgetting frontier
        "frontier.csv",
    ):
        assert (out / name).stat().st_size > 0, name
    summary = pd.read_csv(out / "summary.csv")
    assert {
        "n_seeds",
        "test/acc_mean",
        "test/acc_ci_low",
        "test/acc_ci_high",
        "source/forgetting_mean",
    } <= set(summary.columns)
    page = index.read_text()
    assert "0.600" in page and "0.900" in page
    assert "NonFiniteLossError" in page  # failed runs are listed
    # data efficiency, forgetting, frontier: self-contained, no network
    assert page.count("data:image/png;base64,") == 3
    assert "http://" not in page and "https://" not in page
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")


def test_html_escapes_names_from_records(tmp_path):
    write_dict(
        tmp_path / "s" / "a" / "record.json",
        _record("scratch", 1, 0, 0.5, name="<script>alert(1)</script>"),
    )
    page = build_report([tmp_path / "s"], tmp_path / "r").read_text()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_unreadable_records_are_listed_not_fatal(sweep, tmp_path):
    (sweep / "broken").mkdir()
    (sweep / "broken" / "record.json").write_text('{"schema_version": 1, "sta')
    runs, _, bad = collect([sweep])
    assert len(runs) == 13 and len(bad) == 1 and "broken" in bad[0][0]
    assert "broken" in build_report([sweep], tmp_path / "r").read_text()


def test_empty_folder_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert report_main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no readable record.json under" in err[0]
    assert not (tmp_path / "empty" / "report").exists()


def test_missing_folder_is_named_and_nothing_is_created(tmp_path, capsys):
    missing = tmp_path / "no_such_sweep"
    assert report_main([str(missing)]) == 2
    assert (
        capsys.readouterr().err.strip() == f"regimebench-report: error: {missing} is not a folder"
    )
    assert not missing.exists()


def _raw(path, data):
    """A file as an older, newer or hand-edited regimebench left it (not through RunRecord)."""
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))


def test_two_schema_versions_and_bad_records_report_what_is_readable(tmp_path, capsys):
    sweep = tmp_path / "s"
    old = _record("scratch", 1, 0, 0.5) | {"schema_version": 1}
    old.pop("definitions", None)
    _raw(sweep / "v1" / "record.json", old)
    new = _record("scratch", 1, 1, 0.7, forgetting=0.02)
    write_dict(sweep / "v2" / "record.json", new)
    _raw(sweep / "future" / "record.json", _record("scratch", 1, 2, 0.6) | {"schema_version": 99})
    edited = _record("scratch", 1, 3, 0.6)
    del edited["budget"]  # a hand edit that removed a key the report needs
    _raw(sweep / "edited" / "record.json", edited)
    (sweep / "truncated").mkdir()
    (sweep / "truncated" / "record.json").write_text('{"schema_version": 2, "status": "o')

    assert report_main([str(sweep)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3
    assert any("future" in line and "schema_version 99" in line for line in err)
    assert any("edited" in line and "KeyError" in line for line in err)
    assert any("truncated" in line and "JSONDecodeError" in line for line in err)
    runs = pd.read_csv(sweep / "report" / "runs.csv")
    assert sorted(runs["seed"]) == [0, 1]
    _, records, _ = collect([sweep])
    v1 = next(r for r in records if r.seed == 0)
    assert v1.schema_version == SCHEMA_VERSION and "test/acc" in v1.definitions
