"""The default sweep's cost as ``regimebench-bench`` reports it: cold, re-run, and where it went.

Also the table both benchmark modes print (``print_table``), so ``--gpu`` (benchmarks/gpu_check.py)
and the CPU bench show their figures beside the same targets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from joblib import effective_n_jobs
from omegaconf import OmegaConf

from common.records import RECORD_NAME, read_record


def timed_sweep(args: list[str], workdir: Path, cache: Path) -> float:
    """Wall seconds of ``regimebench -m ARGS`` as a user runs it: the console script, own cache."""
    env = {**os.environ, "REGIMEBENCH_CACHE": str(cache)}
    cmd = [
        str(Path(sys.executable).parent / "regimebench"),
        "-m",
        *args,
        f"hydra.sweep.dir={workdir / 'sweep'}",
    ]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=workdir, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def executions(sweep: Path) -> dict[str, int]:
    """How often a stage was built (not a cache hit) against how many distinct keys needed one."""
    built: dict[str, int] = {"pretrain": 0, "continued_pretrain": 0, "features": 0}
    keys: dict[str, set[str]] = {k: set() for k in built}
    for path in sweep.glob(f"*/{RECORD_NAME}"):
        info = read_record(path).info
        for kind in built:
            if f"{kind}_hash" in info:
                keys[kind].add(info[f"{kind}_hash"])
                built[kind] += not info[f"{kind}_cached"]
    return {
        "pretrain_executions": built["pretrain"] + built["continued_pretrain"],
        "pretrain_configs": len(keys["pretrain"]) + len(keys["continued_pretrain"]),
        "feature_extractions": built["features"],
        "feature_configs": len(keys["features"]),
    }


def job_time(sweep: Path) -> dict[str, float]:
    """Where a cold sweep's wall time went: inside the jobs, or around them.

    ``job_seconds`` sums every record's own ``seconds.total`` (data, training, evaluation);
    divided by the launcher's worker count it is the wall time of a perfectly packed sweep with
    no start-up, composition or hand-over costs: what compute alone allows on this machine.
    """
    job = sum(read_record(p).seconds["total"] for p in sweep.glob(f"*/{RECORD_NAME}"))
    launcher = OmegaConf.load(sweep / "multirun.yaml").hydra.launcher
    workers = effective_n_jobs(launcher.n_jobs) if "n_jobs" in launcher else 1  # -1: all cores
    return {"default_sweep_job_seconds": job, "default_sweep_workers": workers}


def report_seconds(sweep: Path, out: Path, timeout: float | None = None) -> float:
    """Wall time of ``regimebench-report`` building the sweep's report afresh into ``out``.

    A separate process, as the sweep's closing callback is: it pays the report's imports
    (pandas, matplotlib; not torch) and reads every record, as the callback does.
    """
    cmd = [sys.executable, "-m", "reports", str(sweep), "--out", str(out)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)
    return time.perf_counter() - start


def sweep_speed(sweep_args: list[str]) -> dict[str, Any]:
    """The sweep cold (fresh cache and folder), then re-run; executions from its records.

    The issue's two overhead targets: ``default_sweep_overhead_ratio``, the cold wall time over
    the compute-bound time (job seconds over workers; at most 1.05), and ``report_share``, one
    report build over the cold sweep's wall time (at most 0.05). The cold sweep already built
    its report in its closing callback; the timed build is a second one into another folder.
    """
    with tempfile.TemporaryDirectory(prefix="regimebench-bench-") as tmp:
        work = Path(tmp)
        cold = timed_sweep(sweep_args, work, work / "cache")
        jobs = job_time(work / "sweep")
        report = report_seconds(work / "sweep", work / "report-timed")
        rerun = timed_sweep(sweep_args, work, work / "cache")
        counts = executions(work / "sweep")
    packed = jobs["default_sweep_job_seconds"] / jobs["default_sweep_workers"]
    return {
        "default_sweep_seconds": cold,
        **jobs,
        "default_sweep_compute_bound_seconds": packed,
        "default_sweep_overhead_seconds": cold - packed,
        "default_sweep_overhead_ratio": cold / packed,
        "report_build_seconds": report,
        "report_share": report / cold,
        "rerun_seconds": rerun,
        "rerun_time_ratio": rerun / cold,
        **counts,
    }


def compose_speed(sweep_args: list[str], hydra_jobs: int = 50) -> dict[str, Any]:
    """Milliseconds a job config costs: Hydra's compose per job against once per group choice.

    The jobs of the sweep ``sweep_args`` configure (its ``hydra.sweeper.params`` expanded, in
    order; a sweep value on the command line is not expanded here); Hydra's compose is timed on
    the first ``hydra_jobs`` of them, the group-cached one on all, in one process.
    """
    import itertools

    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    from benchmarks.composing import GroupCachedCompose
    from benchmarks.config import CONF_DIR, register

    register()  # the schema `base` the config names

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", sweep_args, RunMode.MULTIRUN)
        params = master.hydra.sweeper.get("params") or {}
        parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
        axes = [[f"{o.key_or_group}={v}" for v in o.sweep_string_iterator()] for o in parsed]
        jobs = [list(job) for job in itertools.product(*axes)]
        start = time.perf_counter()
        for job in jobs[:hydra_jobs]:
            loader.load_sweep_config(master, job)
        per_hydra = (time.perf_counter() - start) / min(hydra_jobs, len(jobs))
        fast = GroupCachedCompose(loader)
        start = time.perf_counter()
        for job in jobs:
            fast(master, job)
        per_fast = (time.perf_counter() - start) / len(jobs)
    GlobalHydra.instance().clear()
    return {
        "compose_jobs": len(jobs),
        "compose_group_choices": len(fast.bases),
        "compose_hydra_ms_per_job": per_hydra * 1e3,
        "compose_cached_ms_per_job": per_fast * 1e3,
        "compose_speedup": per_hydra / per_fast,
    }


# The targets, printed beside the measured values.
TARGETS = {
    "train_throughput_ratio": ">= 0.95",
    "default_sweep_overhead_ratio": "<= 1.05",
    "report_share": "<= 0.05",
    "rerun_time_ratio": "<= 0.05",
}


def print_table(results: dict[str, Any], targets: dict[str, str]) -> None:
    """One line per figure, its target beside it where the issue sets one."""
    for key, value in results.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        target = f"   (target {targets[key]})" if key in targets else ""
        print(f"{key:36s} {shown}{target}")
