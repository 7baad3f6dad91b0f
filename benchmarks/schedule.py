"""The order a sweep's jobs are launched in: what a parallel launcher needs to keep busy."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.regimes import READS

CACHED_STAGES = ("pretrain", "continued_pretrain")  # built once, shared through the cache


def regime_of(job: Sequence[str], default_regime: str) -> str:
    """The regime a job's overrides choose (the last ``regime=`` wins, as in Hydra)."""
    chosen = [o.split("=", 1)[1] for o in job if o.startswith("regime=")]
    return chosen[-1] if chosen else default_regime


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

    def backbone_key(job: Sequence[str], stage: str) -> tuple[str, ...]:
        shared = ("budget.per_class=", "regime=", "subset_seed=")  # one backbone for all of them
        key = tuple(sorted(o for o in job if not o.startswith(shared)))
        # incremental_pretrain and longer_pretrain continue on different domains
        return key + (regime_of(job, default_regime),) if stage == "continued_pretrain" else key

    first: list[int] = []
    for stage in CACHED_STAGES:
        seen: set[tuple[str, ...]] = set()
        for i, job in enumerate(jobs):
            needs = stage in READS.get(regime_of(job, default_regime), ())
            if needs and backbone_key(job, stage) not in seen:
                seen.add(backbone_key(job, stage))
                if i not in first:
                    first.append(i)
    chosen = set(first)
    return [jobs[i] for i in first] + [j for i, j in enumerate(jobs) if i not in chosen]
