"""A real multirun through the installed ``regimebench`` entry point, then its report."""

import json
import shutil
import subprocess

import pandas as pd
import pytest
from helpers import BIN, run_cli


def _run(args, tmp_path, check=True):
    return run_cli(args, tmp_path, check=check)


TINY_SWEEP = [
    "-m",
    "regime=scratch,finetune",
    "budget.per_class=1,2",
    "seed=0",
    "name=tiny",
    "pretrain.steps=5",
    "pretrain.batch_size=16",
    "train.steps=5",
    "train.batch_size=8",
]


@pytest.mark.slow
def test_tiny_multirun_writes_records_and_report(tmp_path):
    proc = _run(TINY_SWEEP, tmp_path)
    sweep = tmp_path / "multirun" / "tiny"
    records = sorted(sweep.glob("*/record.json"))
    assert len(records) == 4
    recs = [json.loads(p.read_text()) for p in records]
    assert {r["status"] for r in recs} == {"ok"}
    assert {(r["regime"], r["budget"]["per_class"]) for r in recs} == {
        ("scratch", "1"),
        ("scratch", "2"),
        ("finetune", "1"),
        ("finetune", "2"),
    }
    assert sum(1 for r in recs if r["info"].get("pretrain_cached") is False) == 1  # once
    report = sweep / "report"
    assert "report: multirun/tiny/report/index.html" in proc.stdout
    log = proc.stdout + proc.stderr
    assert "sweep: 1/4 runs finished (1 ok, 0 skipped, 0 failed), 3 remaining" in log
    assert "sweep: 4/4 runs finished (4 ok, 0 skipped, 0 failed), 0 remaining, about 0s left" in log
    runs = pd.read_csv(report / "runs.csv")
    summary = pd.read_csv(report / "summary.csv")
    assert len(runs) == 4 and len(summary) == 4
    assert (summary["n_seeds"] == 1).all()
    for name in (
        "index.html",
        "report.pdf",
        "figures/data_efficiency.png",
        "figures/forgetting.png",
    ):
        assert (report / name).stat().st_size > 0
    # a re-run resumes: nothing is retrained, the report still has every run
    again = _run(TINY_SWEEP, tmp_path)
    assert "skip 4 finished runs" in again.stdout + again.stderr
    assert "Launching 0 jobs" in again.stdout + again.stderr
    assert "report (up to date): multirun/tiny/report/index.html" in again.stdout
    assert len(pd.read_csv(report / "runs.csv")) == 4
    # a record from other config files is composed again; its config hash still matches
    rec = json.loads(records[0].read_text())
    rec["job"]["conf_fingerprint"] = "from-older-yaml"
    records[0].write_text(json.dumps(rec))
    third = _run(TINY_SWEEP, tmp_path)
    assert "Launching 1 jobs" in third.stdout
    assert "finished record with the same config hash" in third.stdout
    # the report command by hand, on the same folder
    shutil.rmtree(report)
    out = subprocess.run(
        [str(BIN / "regimebench-report"), str(sweep), "--out", str(tmp_path / "r2")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0 and (tmp_path / "r2" / "index.html").exists()


# Unknown options and keys are named before Hydra composes; values the schema admits but a run
# cannot use are named by validation. Either way: one line, exit 2, nothing written.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "match", "one_line"),
    [
        (["budget.per_class=0"], "budget.per_class=0 is invalid", True),
        (
            ["regime=nonsense"],
            "regime='nonsense' is not an option; allowed: continual_pretrain",
            True,
        ),
        (["-m", "regime=scratch,nonsense"], "regime='nonsense' is not an option", True),
        (["train.stepz=3"], "train.stepz is not a config key; allowed under train: steps", True),
        # `+` adds a key with struct mode off: without the check it ran and exited 0
        (["+no_such_key=1"], "no_such_key is not a config key; allowed under the root: name", True),
        (["-m", "regime=scratch", "+no_such_key=1,2"], "no_such_key is not a config key", True),
        (["++train.stepz=3"], "train.stepz is not a config key; allowed under train: steps", True),
        (["+regime=nonsense"], "regime='nonsense' is not an option", True),
        (["-m", "train.warmup_fraction=1.5"], "train.warmup_fraction=1.5 is invalid", True),
        (
            ["regime=finetune", "pretrain.objective=mae"],
            "pretrain.objective='mae' is invalid",
            True,
        ),
        (
            ["regime=incremental_pretrain", "data=digits_0to4"],
            "data='digits_0to4' is invalid; allowed: a target domain other than the source "
            "(digits_0to4)",
            True,
        ),
        # in a sweep every job is validated before the first one trains
        (["-m", "regime=scratch", "budget.per_class=1,0"], "budget.per_class=0 is invalid", True),
        (["-m", "regime=scratch,finetune", "probe.max_iter=0"], "probe.max_iter=0", True),
        (["-m", "regime=pixels", "probe.l2_grid=[1.0,-2.0]"], "probe.l2_grid=", True),
        (
            ["-m", "regime=pixels", "hydra/launcher=parallel", "hydra.launcher.n_jobs=0"],
            "hydra.launcher.n_jobs=0 is invalid; allowed: a positive int",
            True,
        ),
        # what only the data can say is checked for every job before the first one trains too
        (
            ["-m", "regime=scratch,finetune", "budget.per_class=1,500"],
            "budget.per_class=500 is larger than the smallest class (122 training examples); "
            "allowed: 1..122 or 'all' (job: regime=scratch budget.per_class=500)",
            True,
        ),
        (  # the same check when the parallel launcher's workers compose and check the jobs
            ["-m", "regime=scratch,finetune", "budget.per_class=1,500", "hydra/launcher=parallel"],
            "budget.per_class=500 is larger than the smallest class (122 training examples); "
            "allowed: 1..122 or 'all' (job: regime=scratch budget.per_class=500)",
            True,
        ),
        (
            [
                "-m",
                "regime=continual_pretrain",
                "budget.per_class=50",
                "stream.s1.test_fraction=0.9",
            ],
            "budget.per_class=50 is larger than the smallest class (17 training examples); "
            "allowed: 1..17 or 'all' (domain digits_rot90)",
            True,
        ),
        (
            ["-m", "regime=scratch", "data@source=imagefolder", "source.root=/nope"],
            "imagefolder: source.root=/nope is not a folder; set source.root",
            True,
        ),
        (["seed=-1"], "seed=-1 is invalid; allowed: an int >= 0", True),
        # the unrelated-corpus control: by origin, not a re-split of the target; loads first
        (
            [
                "regime=unrelated_pretrain",
                "+data@control=digits_5to9_rot90",
                "control.test_fraction=0.31",
            ],
            "control='digits_5to9_rot90' is invalid; allowed: a corpus other than data",
            True,
        ),
        (
            ["regime=unrelated_pretrain", "+data@control=imagefolder"],
            "control.dataset='imagefolder' is invalid; allowed: a dataset whose config leaves",
            True,
        ),
        (
            ["-m", "regime=unrelated_pretrain", "+data@control=mnist", "control.root=/nope"],
            "control.root=/nope",
            True,
        ),
        (
            ["data@source=imagefolder", "source.root=/nope"],
            "imagefolder: source.root=/nope is not a folder; set source.root",
            True,
        ),
    ],
)
def test_bad_input_is_one_clear_error_and_writes_nothing(args, match, one_line, tmp_path):
    proc = _run(args, tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    assert match in proc.stderr
    if one_line:
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "outputs").exists()  # no job folder, no empty parents
    assert not (tmp_path / "multirun").exists()
    assert not (tmp_path / "cache").exists()  # nothing trained


def test_job_folder_names_never_nest_or_overflow():
    from benchmarks.config import job_dirname

    assert job_dirname("regime=scratch,seed=0") == "regime=scratch,seed=0"
    assert job_dirname("data.root=/a/b,seed=0") == "data.root=_a_b,seed=0"
    long_a, long_b = "x=" + "a" * 300 + ",seed=0", "x=" + "a" * 300 + ",seed=1"
    assert len(job_dirname(long_a).encode()) < 255 and "/" not in job_dirname(long_a)
    assert job_dirname(long_a) != job_dirname(long_b)  # the hash keeps them apart
    assert job_dirname(long_a) == job_dirname(long_a)  # and stable across re-runs


def test_parallel_workers_get_the_backbone_builders_first():
    from benchmarks.schedule import builders_first

    regimes = ["pixels", "scratch", "linear_probe", "finetune", "incremental_pretrain"]
    jobs = [
        [f"regime={r}", f"budget.per_class={b}", f"seed={s}"]
        for r in regimes
        for b in (1, 2)
        for s in (0, 1)
    ]
    order = builders_first(jobs, default_regime="finetune")
    assert sorted(map(tuple, order)) == sorted(map(tuple, jobs))  # a permutation, nothing lost
    # one job per seed builds the pretrained backbone, then one per seed the continued one
    assert order[:4] == [
        ["regime=linear_probe", "budget.per_class=1", "seed=0"],
        ["regime=linear_probe", "budget.per_class=1", "seed=1"],
        ["regime=incremental_pretrain", "budget.per_class=1", "seed=0"],
        ["regime=incremental_pretrain", "budget.per_class=1", "seed=1"],
    ]
    rest = [j for j in jobs if j not in order[:4]]
    assert order[4:] == rest  # the others keep the sweep's order
    # without a regime override the master config's regime decides what a job builds
    assert builders_first([["seed=0"], ["seed=1"]], "pixels") == [["seed=0"], ["seed=1"]]
    jobs = [["budget.per_class=1", "seed=0"], ["budget.per_class=2", "seed=0"], ["seed=1"]]
    assert builders_first(jobs, "finetune") == [jobs[0], jobs[2], jobs[1]]


def test_subset_seeds_share_a_builder_and_each_continued_regime_has_its_own():
    from benchmarks.schedule import builders_first

    regimes = ("linear_probe", "incremental_pretrain", "longer_pretrain")
    jobs = [[f"regime={r}", f"subset_seed={s}", "train_seed=0"] for r in regimes for s in (0, 1)]
    order = builders_first(jobs, default_regime="finetune")
    assert order[:3] == [jobs[0], jobs[2], jobs[4]]  # one pretraining, two continued stages


def test_the_trials_of_a_seed_share_its_builders():
    """All tuning trials of a seed read one backbone: one of them builds it, first."""
    from benchmarks.schedule import builders_first

    jobs = [
        [f"regime={r}", "seed=0", f"tuning.trial={t}"]
        for r in ("finetune", "incremental_pretrain")
        for t in range(3)
    ]
    order = builders_first(jobs, default_regime="finetune")
    assert order[:2] == [jobs[0], jobs[3]]  # one pretraining, one continued stage
    assert order[2:] == [j for j in jobs if j not in (jobs[0], jobs[3])]
