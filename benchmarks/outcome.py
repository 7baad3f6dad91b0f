"""Failed runs, noted in the parent process so that the console script can exit non-zero.

A failed run writes a ``failed`` record and returns normally: a sweep must run every job and
build its report. Hydra then returns from ``hydra.main`` without an exit status, so a script or
CI job could not tell. The single run (:func:`benchmarks.run.main`) and the sweeper (from the
``JobReturn`` of every job, which every launcher hands back to the parent: basic, joblib,
submitit) note failures here; :func:`benchmarks.run.entry` reports them and exits 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus

from common.records import read_record

_FAILED: list[str] = []  # one line per failed run of this process's command


def note_failure(what: str, record_path: Path) -> None:
    """Remember a failed run: what it was and the error its record gives."""
    try:
        error = read_record(record_path).error
    except (OSError, ValueError, KeyError, TypeError):
        error = None
    _FAILED.append(f"{what}: {error or 'failed'} (record: {record_path})")


def note_sweep(returns: Iterable[Sequence[JobReturn]], record_name: str) -> None:
    """Note every job of a finished sweep whose run returned ``failed``."""
    for batch in returns:
        for job in batch:
            if job.status == JobStatus.COMPLETED and job._return_value == "failed":  # noqa: SLF001
                assert job.hydra_cfg is not None
                out_dir = Path(str(job.hydra_cfg.hydra.runtime.output_dir))
                what = "job " + " ".join(job.overrides or []) if job.overrides else "job"
                note_failure(what, out_dir / record_name)


def failures() -> list[str]:
    """The failures noted so far (a copy)."""
    return list(_FAILED)
