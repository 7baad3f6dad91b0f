"""The order a sweep's jobs are launched in, and which of them build the shared stages."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.regimes import READS

CACHED_STAGES = ("pretrain", "continued_pretrain")  # built once, shared through the cache

# Overrides that leave a stage's cache key unchanged (benchmarks/keys.py): one backbone serves
# every budget, regime and labelled subset, and a pretrained backbone every setting of the
# stages after it. Without the later stages here, the forgetting study (18 jobs, 3 seeds) had 18
# "builders" of 3 pretrained backbones.
# A tuning trial too: the grids of digits_tuned tune the target fit, so all trials of a seed share
# its backbones. A grid over a stage's own keys (continued_pretrain.lr) makes each of its trials
# build a stage this list does not foresee: that costs a wait on the cache lock, never a result.
_SHARED = ("budget.per_class=", "regime=", "subset_seed=", "tuning.trial=")
_AFTER = {
    "pretrain": (
        "continued_pretrain.",
        "train.",
        "stream.",
        "control.",
        "data@control=",
        "+data@control=",
    ),
    "continued_pretrain": ("train.",),
}


def regime_of(job: Sequence[str], default_regime: str) -> str:
    """The regime a job's overrides choose (the last ``regime=`` wins, as in Hydra)."""
    chosen = [o.split("=", 1)[1] for o in job if o.startswith("regime=")]
    return chosen[-1] if chosen else default_regime


def _backbone_key(job: Sequence[str], stage: str, default_regime: str) -> tuple[str, ...]:
    key = tuple(sorted(o for o in job if not o.startswith(_SHARED + _AFTER[stage])))
    # incremental_pretrain and longer_pretrain continue on different domains
    return key + (regime_of(job, default_regime),) if stage == "continued_pretrain" else key


def planned_builds(jobs: Sequence[Sequence[str]], default_regime: str) -> list[tuple[str, ...]]:
    """Per job, the cached stages it is the first in ``jobs`` to need (so it builds them).

    A stage already in the cache from an earlier sweep is a hit all the same; the progress
    estimate learns that from the builders' timings (``benchmarks/progress.py``).
    """
    builds: list[list[str]] = [[] for _ in jobs]
    for stage in CACHED_STAGES:
        seen: set[tuple[str, ...]] = set()
        for i, job in enumerate(jobs):
            key = _backbone_key(job, stage, default_regime)
            if stage in READS.get(regime_of(job, default_regime), ()) and key not in seen:
                seen.add(key)
                builds[i].append(stage)
    return [tuple(b) for b in builds]


def builders_first(jobs: list[Sequence[str]], default_regime: str) -> list[Sequence[str]]:
    """The sweep's jobs, with the first job to need each cached backbone moved to the front.

    Jobs that differ only in regime and budget share their pretrained (and continued-pretrained)
    backbones. Under a parallel launcher a job whose backbone another worker is still building
    waits on its lock: in the default sweep (2 workers, seed-major order) that idled a worker
    for 29 s of 305. So the first job per pretraining, then per continued-pretraining
    configuration goes first, in that order (a continued stage starts from a pretrained
    backbone), and the rest follow in the sweep's own order. One process runs the same jobs in
    the same total time.
    """
    builds = planned_builds(jobs, default_regime)
    first = [i for stage in CACHED_STAGES for i, b in enumerate(builds) if stage in b]
    first = list(dict.fromkeys(first))  # a job that builds both stages goes with the first
    chosen = set(first)
    return [jobs[i] for i in first] + [j for i, j in enumerate(jobs) if i not in chosen]
