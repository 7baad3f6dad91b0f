"""The sweep's progress line: counts, and a time left that one-off builds do not inflate."""

import pytest
from helpers import as_records, synthetic_record

from benchmarks import progress


def _sweep_log(tmp_path, kinds):
    progress.start(tmp_path, total=len(kinds) + 1, skipped=1, kinds=kinds)
    return tmp_path


def test_time_left_leaves_out_builds_and_divides_by_the_jobs_running_at_once(tmp_path):
    sweep = _sweep_log(tmp_path, ["probe", "probe", "fit", "fit", "fit", "fit"])
    progress.job_started(sweep)
    progress.job_started(sweep)  # two workers
    # the first probe built a 30 s backbone: its own work is 1 s
    progress.job_ended(sweep, "ok", "probe", seconds=31.0, oneoff=30.0)
    state = progress.read(sweep)
    assert state.concurrency == 2
    assert state.line(0.0).endswith("5 remaining, at least 0s left")  # no fit has finished yet
    progress.job_started(sweep)
    progress.job_ended(sweep, "ok", "fit", seconds=10.0)
    state = progress.read(sweep)
    left, lower_bound = state.eta_seconds(now=0.0)
    # 1 probe at 1 s and 3 fits at 10 s, over 2 workers
    assert (left, lower_bound) == (pytest.approx((1 * 1.0 + 3 * 10.0) / 2), False)
    assert state.line(0.0) == (
        "sweep: 3/7 runs finished (2 ok, 1 skipped, 0 failed), 4 remaining, about 16s left"
    )


def test_a_failed_job_counts_as_ended_but_gives_no_timing(tmp_path):
    sweep = _sweep_log(tmp_path, ["fit", "fit", "fit"])
    progress.job_started(sweep)
    progress.job_ended(sweep, "ok", "fit", seconds=4.0)
    progress.job_started(sweep)
    progress.job_ended(sweep, "error", "fit")
    state = progress.read(sweep)
    assert state.counts["error"] == 1 and state.done == {"fit": [4.0]}
    assert state.eta_seconds(now=0.0) == (4.0, False)  # one fit left, one worker


def test_oneoff_seconds_is_the_build_time_no_cache_hit_saved():
    built = {"compute": {"pretrain_seconds_full": 30.0, "pretrain_seconds_saved": 0.0}}
    reused = {"compute": {"pretrain_seconds_full": 30.0, "pretrain_seconds_saved": 30.0}}
    both = {
        "compute": {
            "pretrain_seconds_full": 30.0,
            "pretrain_seconds_saved": 30.0,
            "continued_pretrain_seconds_full": 12.0,
            "continued_pretrain_seconds_saved": 0.0,
            "train_flops": 1e9,
        }
    }
    [built, reused, both, none] = as_records(
        [synthetic_record("finetune", 1, 0, 0.5, **c) for c in (built, reused, both, {})]
    )
    assert progress.oneoff_seconds(built) == 30.0
    assert progress.oneoff_seconds(reused) == 0.0
    assert progress.oneoff_seconds(both) == 12.0
    assert progress.oneoff_seconds(none) == 0.0


def test_before_any_timed_run_the_overall_rate_of_ended_jobs_is_used(tmp_path):
    sweep = _sweep_log(tmp_path, ["fit", "fit", "fit", "fit"])
    progress.job_started(sweep)
    progress.job_ended(sweep, "error", "fit")  # failed: it ended, but gives no timing
    state = progress.read(sweep)
    assert state.eta_seconds(now=state.started) == (0.0, False)
    left, lower_bound = state.eta_seconds(now=state.started + 10.0)
    assert left == pytest.approx(10.0 / 1 * 3) and not lower_bound  # 10 s per ended job, 3 left
    assert progress.read(tmp_path / "nowhere") is None
