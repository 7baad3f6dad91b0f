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
    # no fit has finished yet: the 4 fits count at the mean of the finished runs (1 s each)
    assert state.line(0.0).endswith("5 remaining, about 2s left")
    progress.job_started(sweep)
    progress.job_ended(sweep, "ok", "fit", seconds=10.0)
    state = progress.read(sweep)
    left, lower_bound = state.eta_seconds(now=0.0)
    # 1 probe at 1 s and 3 fits at 10 s, over 2 workers
    assert (left, lower_bound) == (pytest.approx((1 * 1.0 + 3 * 10.0) / 2), False)
    assert state.line(0.0) == (
        "sweep: 3/7 runs finished (2 ok, 1 skipped, 0 failed), 4 remaining, about 16s left"
    )


def test_a_regime_not_seen_yet_counts_at_its_likes_or_the_mean_of_finished_runs(tmp_path):
    """A default sweep whose cheap regimes finished first; "alike" is by declared stage nodes."""
    from benchmarks.regimes import READS

    regimes = ["pixels", "linear_probe", "finetune", "pixels", "linear_probe", "finetune"]
    regimes += ["lp_ft", "lp_ft", "scratch"]
    plan = [progress.Planned(r, job=f"j{i}", reads=READS[r]) for i, r in enumerate(regimes)]
    progress.start(tmp_path, total=len(plan), skipped=0, kinds=plan)
    for p, seconds in zip(plan[:2], (1.0, 3.0), strict=False):
        progress.job_started(tmp_path)
        progress.job_ended(tmp_path, "ok", p.kind, seconds, job=p.job)
    state = progress.read(tmp_path)
    assert state.declared["lp_ft"] == ("pretrain", "train")
    # nothing that trains has finished: the 4 fine-tunings and scratch count at the mean, 2 s
    assert state.eta_seconds(now=0.0) == (pytest.approx(1 + 3 + 5 * 2.0), False)  # was 4 s
    progress.job_started(tmp_path)
    progress.job_ended(tmp_path, "ok", "finetune", 20.0, job="j2")
    state = progress.read(tmp_path)
    # pixels 1 + probe 3 + finetune 20, lp_ft 2 x 20 (it reads what finetune reads), and
    # scratch (nothing finished reads only ``train``) at the mean of the 3 runs, 8 s
    assert state.recurring("lp_ft") == 20.0 and state.recurring("scratch") == pytest.approx(8.0)
    assert state.eta_seconds(now=0.0) == (pytest.approx(1 + 3 + 20 + 2 * 20 + 8), False)
    assert state.line(0.0).endswith("6 remaining, about 1m12s left")


def test_a_log_without_declared_stages_counts_unseen_regimes_at_the_mean(tmp_path):
    """A plan written before the stage nodes were in it: every finished run is alike."""
    (tmp_path / progress.LOG_NAME).write_text(
        "plan\t3\t0.000\ntodo\tpixels\t\tj0\ntodo\tfinetune\t\tj1\ntodo\tscratch\t\tj2\n"
        "start\nok\tpixels\t2.000\t0.000\tj0\t\nstart\nok\tfinetune\t10.000\t0.000\tj1\t\n"
    )
    state = progress.read(tmp_path)
    assert state.declared == {} and [p.reads for p in state.pending] == [None]
    assert state.eta_seconds(now=0.0) == (pytest.approx(6.0), False)


def test_a_failed_job_counts_as_ended_but_gives_no_timing(tmp_path):
    sweep = _sweep_log(tmp_path, ["fit", "fit", "fit"])
    progress.job_started(sweep)
    progress.job_ended(sweep, "ok", "fit", seconds=4.0)
    progress.job_started(sweep)
    progress.job_ended(sweep, "error", "fit")
    state = progress.read(sweep)
    assert state.counts["error"] == 1 and state.done == {"fit": [4.0]}
    assert state.eta_seconds(now=0.0) == (4.0, False)  # one fit left, one worker


def test_build_seconds_are_the_build_time_no_cache_hit_saved():
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
    assert progress.build_seconds(built) == {"pretrain": 30.0}
    assert progress.build_seconds(reused) == {"pretrain": 0.0}
    assert progress.build_seconds(both) == {"pretrain": 0.0, "continued_pretrain": 12.0}
    assert progress.build_seconds(none) == {}


def test_before_any_timed_run_the_overall_rate_of_ended_jobs_is_used(tmp_path):
    sweep = _sweep_log(tmp_path, ["fit", "fit", "fit", "fit"])
    progress.job_started(sweep)
    progress.job_ended(sweep, "error", "fit")  # failed: it ended, but gives no timing
    state = progress.read(sweep)
    assert state.eta_seconds(now=state.started) == (0.0, False)
    left, lower_bound = state.eta_seconds(now=state.started + 10.0)
    assert left == pytest.approx(10.0 / 1 * 3) and not lower_bound  # 10 s per ended job, 3 left
    assert progress.read(tmp_path / "nowhere") is None


def _forgetting_plan():
    """The forgetting study's 18 jobs, as the sweeper plans them."""
    from benchmarks.schedule import planned_builds

    jobs = [
        [f"seed={s}", f"continued_pretrain.replay={r}", f"continued_pretrain.schedule={c}"]
        for s in (0, 1, 2)
        for r in (0.0, 0.05, 0.25)
        for c in ("rewarm", "constant")
    ]
    builds = planned_builds(jobs, "continual_pretrain")
    names = ["-".join(job) for job in jobs]
    return [
        progress.Planned("continual_pretrain", b, n) for b, n in zip(builds, names, strict=True)
    ]


def test_every_forgetting_job_builds_its_own_stream_and_each_seed_one_pretraining():
    plan = _forgetting_plan()
    assert [p.builds for p in plan].count(("pretrain", "continued_pretrain")) == 3
    assert [p.builds for p in plan].count(("continued_pretrain",)) == 15


def test_time_left_counts_the_builds_still_to_come(tmp_path):
    """The forgetting study's case: 11 of 18 runs done, 7 left that each build their stream."""
    plan = _forgetting_plan()
    progress.start(tmp_path, total=18, skipped=0, kinds=plan)
    for p in plan[:11]:  # 12 s of probes, 78 s of continued SimCLR, 30 s more for a pretraining
        built = {"continued_pretrain": 78.0}
        built |= {"pretrain": 30.0} if "pretrain" in p.builds else {}
        progress.job_started(tmp_path)
        seconds = 12.0 + sum(built.values())
        progress.job_ended(tmp_path, "ok", p.kind, seconds, job=p.job, built=built)
    state = progress.read(tmp_path)
    left, lower_bound = state.eta_seconds(now=0.0)
    # 7 runs of 12 + 78 s, and seed 2's pretraining (its first job is the 13th)
    assert [p.job for p in state.pending] == [p.job for p in plan[11:]]
    assert (left, lower_bound) == (pytest.approx(7 * 90.0 + 30.0), False)
    assert state.line(0.0).endswith("7 remaining, about 11m00s left")  # was "about 1m24s"


def test_a_planned_builder_that_found_its_stage_cached_adds_nothing(tmp_path):
    """A resumed sweep: the builders hit what the killed one stored; ends match by job folder."""
    plan = [progress.Planned("finetune", ("pretrain",), f"b{i}") for i in range(2)]
    plan += [progress.Planned("finetune", (), f"r{i}") for i in range(4)]
    progress.start(tmp_path, total=6, skipped=0, kinds=plan)
    progress.job_started(tmp_path)
    progress.job_started(tmp_path)
    progress.job_ended(tmp_path, "ok", "finetune", 5.0, job="r0")  # ended before the builder
    state = progress.read(tmp_path)
    assert state.eta_seconds(now=0.0) == (pytest.approx(5 * 5.0 / 2), True)  # no build seen
    progress.job_ended(tmp_path, "ok", "finetune", 5.0, job="b0", built={"pretrain": 0.0})
    state = progress.read(tmp_path)
    assert [p.job for p in state.pending] == ["b1", "r1", "r2", "r3"]
    assert state.eta_seconds(now=0.0) == (pytest.approx(4 * 5.0 / 2), False)
    progress.job_started(tmp_path)
    progress.job_ended(tmp_path, "ok", "finetune", 65.0, job="b1", built={"pretrain": 60.0})
    state = progress.read(tmp_path)
    assert state.builds == {"pretrain": [0.0, 60.0]}
    assert state.eta_seconds(now=0.0) == (pytest.approx(3 * 5.0 / 2), False)  # none to build


def test_a_sweep_over_controls_shares_one_pretraining_per_seed():
    """The control corpus is read after pretraining: each control is one more continued stage."""
    from benchmarks.schedule import planned_builds

    jobs = [
        [f"seed={s}", "regime=unrelated_pretrain", f"+data@control={c}"]
        for s in (0, 1)
        for c in ("digits_invert", "digits_permute")
    ]
    builds = planned_builds(jobs, "scratch")
    assert [b.count("pretrain") for b in builds] == [1, 0, 1, 0]
    assert all("continued_pretrain" in b for b in builds)
