"""train.track_every: target and source scored during a real fit, drawn by the report."""

import csv

import pytest

from benchmarks.config import ConfigError
from benchmarks.run import execute
from reports.build import build_report


def _rows(path):
    with path.open() as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def test_a_tracked_fit_scores_every_n_steps_and_changes_no_number(compose_cfg, tmp_path):
    common = ("regime=finetune", "budget.per_class=3", "train.steps=5")
    plain = execute(compose_cfg(*common), tmp_path / "plain")
    tracked = execute(compose_cfg(*common, "train.track_every=2"), tmp_path / "tracked")
    assert tracked.status == "ok", tracked.error
    assert tracked.config_hash != plain.config_hash  # a tracked run is a run of its own
    for key in ("test/acc", "test/ece", "source/acc_after"):  # but the fit is the same fit
        assert tracked.metrics[key] == plain.metrics[key]
    assert tracked.info["track_file"] == "train/track.csv"
    rows = _rows(tmp_path / "tracked" / "train" / "track.csv")
    assert [r["step"] for r in rows] == [0, 2, 4, 5]
    last, first = rows[-1], rows[0]
    assert last["target_acc"] == pytest.approx(tracked.metrics["test/acc"], abs=1e-12)
    assert last["source_acc"] == pytest.approx(tracked.metrics["source/acc_after"], abs=1e-12)
    # step 0 is the pretrained backbone: forgetting's "before", up to the last digits of the
    # features (the fit turned the weights channels-last): at most one source test image
    assert abs(first["source_acc"] - tracked.metrics["source/acc_before"]) <= 1 / 250

    index = build_report([tmp_path], tmp_path / "report")
    assert (tmp_path / "report" / "figures" / "forgetting_over_training.png").is_file()
    assert "When forgetting happens" in index.read_text()


def test_an_untracked_sweep_draws_no_tracking_figure(compose_cfg, tmp_path):
    execute(compose_cfg("regime=finetune", "train.steps=3"), tmp_path / "run")
    index = build_report([tmp_path], tmp_path / "report")
    assert not (tmp_path / "report" / "figures" / "forgetting_over_training.png").exists()
    assert "When forgetting happens" not in index.read_text()


def test_a_track_interval_below_one_is_refused(compose_cfg, tmp_path):
    with pytest.raises(ConfigError, match="train.track_every=0 is invalid"):
        execute(compose_cfg("regime=finetune", "train.track_every=0"), tmp_path)
