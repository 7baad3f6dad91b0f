"""The GPU check: its dry run on the CPU writes every figure, and the GPU-marked tests.

The ``gpu`` tests are skipped without CUDA; ``regimebench-bench --gpu`` runs them (``-m gpu``).
No timing is asserted.
"""

import json
import math

import pytest
import torch

from benchmarks.bench import main
from benchmarks.gpu_check import PartFailed, run_parts
from benchmarks.run import execute

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

FIGURES = {
    "gpu_tests_collected",
    "gpu_tests_passed",
    "gpu_tests_failed",
    "gpu_tests_skipped",
    "cifar_throughput_ratio",
    "cifar_suite_steps_per_s",
    "cifar_bare_steps_per_s",
    "cifar_suite_images_per_s",
    "cifar_pairs",
    "study_seconds",
    "study_startup_seconds",
    "study_tail_seconds",
    "study_jobs_planned",
    "study_jobs_done",
    "study_jobs_ok",
    "study_job_seconds",
    "study_workers",
    "study_compute_bound_seconds",
    "study_overhead_ratio",
    "study_report_seconds",
    "study_report_share",
    "tests_part_seconds",
    "throughput_part_seconds",
    "study_part_seconds",
}


@pytest.mark.slow
def test_the_dry_run_measures_every_part_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    assert main(["--gpu", "--dry-run", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["errors"] == {}
    missing = FIGURES - set(data)
    assert not missing, missing
    assert all(math.isfinite(data[k]) for k in FIGURES)
    assert data["dry_run"] is True and data["cifar_precision"] == "bf16-mixed"
    assert data["device_name"] and data["torch"] == torch.__version__
    # three jobs of the study, every one finished and ok, on the two workers asked for
    assert data["study_jobs_planned"] == data["study_jobs_done"] == data["study_jobs_ok"] == 3
    assert data["study_workers"] == 2
    assert 0 < data["study_startup_seconds"] < data["study_seconds"]
    assert data["cifar_throughput_ratio"] > 0 and data["cifar_pairs"] == 1
    if not torch.cuda.is_available():  # the GPU tests are collected and skipped, none fails
        assert data["gpu_tests_collected"] == data["gpu_tests_skipped"] >= 2
        assert data["gpu_tests_failed"] == 0
    printed = capsys.readouterr().out
    assert "cifar_throughput_ratio" in printed and "(target >= 0.95)" in printed


def test_a_failed_part_records_its_error_and_the_others_still_run():
    def broken():
        raise ValueError("no such thing")

    def partial():
        raise PartFailed("ran past its cap", {"study_jobs_done": 2})

    figures, errors = run_parts({"a": broken, "b": lambda: {"x": 1.0}, "c": partial})
    assert errors == {"a": "ValueError: no such thing", "c": "ran past its cap"}
    assert figures["x"] == 1.0 and figures["study_jobs_done"] == 2
    assert {"a_part_seconds", "b_part_seconds", "c_part_seconds"} <= set(figures)


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the message shown without CUDA")
def test_gpu_without_cuda_says_so_in_one_line(capsys):
    assert main(["--gpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs a CUDA device" in err and "--dry-run" in err


def test_dry_run_without_gpu_is_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--dry-run"])
    assert stop.value.code == 2
    assert "--dry-run only goes with --gpu" in capsys.readouterr().err


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("regime", ["scratch", "finetune"])
def test_a_tiny_run_on_the_gpu_trains_there_in_bf16(regime, compose_cfg, tmp_path):
    # finetune also pretrains, probes the source and measures forgetting on the GPU
    record = execute(compose_cfg(f"regime={regime}", "trainer=gpu", "budget.per_class=2"), tmp_path)
    assert record.status == "ok", record.error
    assert record.environment["device"].startswith("cuda")
    assert record.config["trainer"]["precision"] == "bf16-mixed"
    assert all(math.isfinite(record.metrics[k]) for k in ("test/acc", "test/f1_macro", "test/ece"))
    assert 0 <= record.metrics["test/acc"] <= 1
