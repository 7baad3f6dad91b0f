"""``regimebench-bench --gpu [--dry-run] [--out FILE.json]``: the GPU check, one call < 8 minutes.

A GPU is lent for minutes at a time, with no network, so everything it should tell is measured
in one call, each part under its own time cap (:data:`CAPS`); a part that fails or runs out of
time records its error and the others still run:

1. ``tests``: the test suite's ``gpu``-marked tests (``pytest -m gpu``), in a subprocess.
2. ``throughput``: a CIFAR-sized bf16 fit through the suite's real fit path against the
   bench's bare loop, interleaved in this process (``benchmarks/gpu_throughput.py``).
   Target: suite/bare >= 0.95.
3. ``study``: the default study (``experiment=digits``) cold, in a temporary cache, on the GPU
   with several workers sharing it; start-up (launch to the first job) timed apart, the
   overhead ratio and the report's share as ``regimebench-bench`` prints them. Target on one
   H100/H200: <= 60 s including start-up.

``--dry-run`` runs the same code on the CPU at tiny scale (three jobs of the study, a few steps
of a small model), so CI proves the script works where no GPU is. Exit status 1 when a part
failed; the JSON (rewritten after each part) is written either way.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.gpu_throughput import cifar_throughput

ROOT = Path(__file__).resolve().parents[1]
# Seconds per part (the report: its rebuild after the study). With this process's start and
# CUDA's (~15 s) the sum stays under 8 minutes; benchmarks/gpu_check.sh kills it at 470 s, and
# the JSON, rewritten after every part, keeps what finished.
CAPS = {"tests": 60.0, "throughput": 100.0, "study": 240.0, "report": 45.0}
TARGETS = {
    "cifar_throughput_ratio": ">= 0.95",
    "study_seconds": "<= 60 (H100/H200)",
    "study_overhead_ratio": "<= 1.05",
    "study_report_share": "<= 0.05",
}
TINY_STEPS = ("pretrain.steps=5", "pretrain.batch_size=16", "train.steps=5", "train.batch_size=8")


@dataclass(frozen=True)
class Scale:
    """What differs between the GPU check and its dry run on the CPU."""

    trainer: str  # conf/trainer option of every fit
    study: tuple[str, ...]  # overrides of `regimebench -m experiment=digits`
    model: tuple[str, ...]  # the throughput fit's model
    images_per_class: int  # synthetic 32x32 RGB images per class, 10 classes (70% train)
    steps: int  # optimiser steps per throughput fit
    batch_size: int  # conf/experiment/cifar10.yaml's target batch
    pairs: int  # timed (suite, bare) pairs after one warm-up pair, while the cap allows


# 16 cores: 12 one-thread workers share the GPU (a tiny model's jobs are bound by the Python
# that launches its kernels), leaving cores for the sweep's own process. Not yet measured.
GPU = Scale("gpu", ("hydra.launcher.n_jobs=12", "threads=1"), ("model=resnet18",), 64, 200, 128, 5)
DRY = Scale(
    "cpu",
    (
        "hydra.launcher.n_jobs=2",
        "threads=1",
        "seed=0",
        "regime=scratch,pixels,linear_probe",
        "budget.per_class=1",
        *TINY_STEPS,
    ),
    ("model=test_resnet", "model.image_size=32"),
    4,
    3,
    8,
    1,
)


class PartFailed(RuntimeError):
    """A part that failed after measuring something: the figures it has, and why it stopped."""

    def __init__(self, message: str, figures: dict[str, Any]) -> None:
        super().__init__(message)
        self.figures = figures


def _env() -> dict[str, str]:
    """The child processes import this tree's packages, wherever the command runs."""
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    given = [str(Path(p).resolve()) for p in paths if p]
    path = os.pathsep.join([str(ROOT), *given])  # absolute: children run in other folders
    return {**os.environ, "PYTHONPATH": path}


def _run(
    cmd: list[str], cap: float, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str] | None:
    """Run ``cmd`` in its own process group; None when it outlived ``cap`` (the group killed).

    The group, because a sweep's joblib workers would outlive their killed parent.
    """
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        cwd=cwd, env=_env() | (env or {}),
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=cap)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def gpu_test_files() -> list[str]:
    """The test files that mark tests ``gpu``: collecting only these saves importing the rest."""
    tests = sorted((ROOT / "tests").glob("test_*.py"))
    return [str(p) for p in tests if "mark.gpu" in p.read_text()]


def gpu_tests() -> dict[str, Any]:
    """``pytest -m gpu`` over the test files that mark any; counts from its JUnit XML."""
    with tempfile.TemporaryDirectory(prefix="regimebench-gpu-tests-") as tmp:
        xml = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-m", "gpu", "-p", "no:cacheprovider"]
        cmd += [f"--junitxml={xml}", *gpu_test_files()]
        proc = _run(cmd, CAPS["tests"], cwd=ROOT)
        if proc is None:
            raise PartFailed(f"pytest -m gpu ran past {CAPS['tests']:.0f} s", {})
        if not xml.exists():
            raise PartFailed(f"pytest exited {proc.returncode}: {proc.stderr[-300:]}", {})
        suite = ET.parse(xml).getroot().find("testsuite")
        assert suite is not None
        counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    failed = counts["failures"] + counts["errors"]
    figures = {
        "gpu_tests_collected": counts["tests"],
        "gpu_tests_passed": counts["tests"] - failed - counts["skipped"],
        "gpu_tests_failed": failed,
        "gpu_tests_skipped": counts["skipped"],
    }
    if proc.returncode != 0 or counts["tests"] == 0:
        raise PartFailed(f"pytest -m gpu exited {proc.returncode}: {proc.stdout[-400:]}", figures)
    return figures


def _study_figures(sweep: Path, launched: float, wall: float) -> dict[str, Any]:
    """Where the study's wall time went, from its folder (whatever part of it finished).

    A job's ``.hydra/config.yaml`` is written as the job starts, so the earliest one ends the
    start-up (imports, composing and validating every job, starting the workers); the last
    record's write begins the tail (the report, the workers' shutdown).
    """
    from benchmarks import progress
    from benchmarks.sweep_bench import job_time
    from common.records import RECORD_NAME, read_record

    records = sorted(sweep.glob(f"*/{RECORD_NAME}"))
    plan = progress.read(sweep)
    figures: dict[str, Any] = {
        "study_seconds": wall,
        "study_jobs_planned": plan.total if plan is not None else 0,
        "study_jobs_done": len(records),
        "study_jobs_ok": sum(read_record(p).ok for p in records),
    }
    starts = [p.stat().st_mtime for p in sweep.glob("*/.hydra/config.yaml")]
    if starts:
        figures["study_startup_seconds"] = min(starts) - launched
    if records:
        jobs = job_time(sweep)
        packed = jobs["default_sweep_job_seconds"] / jobs["default_sweep_workers"]
        last = max(p.stat().st_mtime for p in records)
        figures |= {
            "study_job_seconds": jobs["default_sweep_job_seconds"],
            "study_workers": jobs["default_sweep_workers"],
            "study_compute_bound_seconds": packed,
            "study_overhead_ratio": wall / packed,
            "study_tail_seconds": launched + wall - last,
        }
    return figures


def study(scale: Scale) -> dict[str, Any]:
    """``regimebench -m experiment=digits`` cold in a temporary cache, then its report alone."""
    from benchmarks.sweep_bench import report_seconds

    with tempfile.TemporaryDirectory(prefix="regimebench-gpu-study-") as tmp:
        work, sweep = Path(tmp), Path(tmp) / "sweep"
        cmd = [sys.executable, "-m", "benchmarks.run", "-m", "experiment=digits"]
        cmd += [f"trainer={scale.trainer}", *scale.study, f"hydra.sweep.dir={sweep}"]
        launched = time.time()
        proc = _run(cmd, CAPS["study"], work, {"REGIMEBENCH_CACHE": str(work / "cache")})
        figures = _study_figures(sweep, launched, time.time() - launched)
        done = f"{figures['study_jobs_done']} of {figures['study_jobs_planned']} jobs finished"
        if proc is None:
            raise PartFailed(f"the study ran past {CAPS['study']:.0f} s ({done})", figures)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-3:]
            raise PartFailed(f"the study exited {proc.returncode} ({done}): {tail}", figures)
        try:
            report = report_seconds(sweep, work / "report-timed", timeout=CAPS["report"])
        except subprocess.SubprocessError as err:  # timed out or failed: keep the study's figures
            raise PartFailed(f"the report build failed: {type(err).__name__}", figures) from None
    share = report / figures["study_seconds"]
    return figures | {"study_report_seconds": report, "study_report_share": share}


def run_parts(
    parts: dict[str, Callable[[], dict[str, Any]]],
    after: Callable[[str, dict[str, Any], dict[str, str]], None] = lambda *_: None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Every part in turn: their figures, and per failed part its error (the rest still run).

    ``after`` sees the part's name and the figures and errors so far once each part has ended.
    """
    figures: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, part in parts.items():
        start = time.perf_counter()
        try:
            figures |= part()
        except PartFailed as err:
            figures |= err.figures
            errors[name] = str(err)
        except Exception as err:  # noqa: BLE001  (a broken part is a result, not the end)
            errors[name] = f"{type(err).__name__}: {err}"
        figures[f"{name}_part_seconds"] = time.perf_counter() - start
        after(name, figures, errors)
    return figures, errors


def write_json(out: Path, results: dict[str, Any]) -> None:
    """Replace ``out`` whole (a kill mid-write leaves the previous version, never half)."""
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, out)


def device_facts() -> dict[str, Any]:
    """The device and the versions the figures were measured with."""
    import lightning

    cuda = torch.cuda.is_available()
    cpu = platform.processor() or platform.machine()
    gib = torch.cuda.get_device_properties(0).total_memory / 2**30 if cuda else 0.0
    return {
        "device_name": torch.cuda.get_device_name(0) if cuda else f"cpu ({cpu})",
        "device_memory_gib": gib,
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none",
        "cudnn": str(torch.backends.cudnn.version()) if cuda else "none",
        "lightning": lightning.__version__,
        "cpu_count": os.cpu_count() or 0,
    }


def main(out: Path | None, dry_run: bool) -> int:
    """The three parts, a table, the JSON; 2 without a GPU (unless dry), 1 if a part failed."""
    from benchmarks.sweep_bench import print_table

    if not dry_run and not torch.cuda.is_available():
        print(
            "regimebench-bench: error: --gpu needs a CUDA device (torch.cuda.is_available() is "
            "False); --gpu --dry-run runs the same parts on the CPU",
            file=sys.stderr,
        )
        return 2
    scale = DRY if dry_run else GPU
    results: dict[str, Any] = {"dry_run": dry_run, **device_facts()}

    def save(part: str, figures: dict[str, Any], errors: dict[str, str]) -> None:
        seconds = figures[f"{part}_part_seconds"]
        print(f"{part}: {'FAILED' if part in errors else 'done'} in {seconds:.0f} s", flush=True)
        if out is not None:
            write_json(out, results | figures | {"errors": errors})

    figures, errors = run_parts(
        {
            "tests": gpu_tests,
            "throughput": lambda: cifar_throughput(scale, CAPS["throughput"]),
            "study": lambda: study(scale),
        },
        after=save,
    )
    print_table(results | figures, TARGETS)
    for part, error in errors.items():
        print(f"FAILED {part}: {error}")
    return 1 if errors else 0
