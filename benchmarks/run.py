"""``regimebench``: one run (one Hydra job) from config to ``record.json``.

    regimebench regime=finetune budget.per_class=5 seed=0      # one run
    regimebench regime=finetune subset_seed=1 train_seed=0     # another labelled subset
    regimebench -m experiment=digits                          # the default comparison sweep

The entry point composes, validates, seeds and dispatches ``REGIMES[cfg.regime.name]``; the ML
lives in the stage modules (``benchmarks/pretraining.py``, ``probing.py``, ``training.py``)
and ``lightning_modules/``. A run whose folder already holds an
``ok`` record for the same config hash is skipped, so re-running a sweep resumes it.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from benchmarks import outcome, tuning, user_code
from benchmarks.cleanup import remove_with_empty_parents
from benchmarks.compute import peak_memory_mb
from benchmarks.config import (
    CONF_DIR,
    ConfigError,
    conf_fingerprint,
    drop_text_nulls,
    numeric_trainer,
    register,
)
from benchmarks.inputs import RunContext, domain, training_device
from benchmarks.overrides import first_problem
from benchmarks.preflight import prepare
from benchmarks.provenance import environment
from benchmarks.regimes import READS, REGIMES, STAGE_NODES, Outcome
from benchmarks.samples import record_samples
from common.cache import stable_hash
from common.metrics import definitions_for
from common.records import (
    RECORD_NAME,
    SCHEMA_VERSION,
    RunRecord,
    finished_record,
    write_record,
)

log = logging.getLogger("regimebench")
register()

# Lightning announces the accelerator and warns about loaders at every fit; in a sweep of a
# hundred fits that drowns the progress lines.
for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
    logging.getLogger(_name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*iterable.*__len__.*")
warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\).*")


def config_hash(cfg: DictConfig) -> str:
    """Hash of everything that determines a run's numbers (not where files go, not the display)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    data.pop("paths", None)
    for node in STAGE_NODES:
        if node not in READS.get(cfg.regime.name, STAGE_NODES):
            data.pop(node, None)
    data.pop("question", None)
    data.pop("comparisons", None)  # what the report compares, not what a run computes
    data.pop("seed", None)  # shorthand: subset_seed and train_seed hold what it set
    tuning.hashed(data)  # untuned and fixed: the hash a record had before selection existed
    # null: the built-in (no tracking), and the hash it had before these keys existed
    for node, key in (("model", "factory"), ("train", "module"), ("train", "track_every")):
        if key in data.get(node, {}) and data[node][key] is None:
            data[node].pop(key)
    drop_text_nulls(data)
    data["trainer"] = numeric_trainer(data["trainer"])
    return stable_hash(data)


def _finished(path: Path, chash: str) -> bool:
    old = finished_record(path)
    return old is not None and old.config_hash == chash


def run_context(
    cfg: DictConfig, job_dir: Path | None = None, declared_probe: DictConfig | None = None
) -> RunContext:
    """Build domains and the labelled subset; every bad value becomes a ConfigError.

    The fits of a run log into ``job_dir`` (one subfolder per fit); None logs nothing.
    ``declared_probe``: the probe node before the run's trial (the source probe's settings).
    """
    source, target, labelled, holdout = prepare(cfg)
    device = training_device(cfg.trainer)
    return RunContext(
        cfg,
        device,
        source,
        target,
        labelled,
        job_dir=job_dir,
        holdout=holdout,
        declared_probe=declared_probe,
        reads=READS[cfg.regime.name],
    )


def domain_facts(cfg: DictConfig, ctx: RunContext) -> dict[str, Any]:
    """The record's ``domains``: what each domain is, its splits, native and used image shape.

    Stream and control domains are listed for a regime that reads them (their builds are cached).
    """
    facts: dict[str, Any] = {"source": ctx.source.facts(), "target": ctx.target.facts()}
    if "stream" in READS[cfg.regime.name]:
        facts["stream"] = [domain(cfg.stream[k], cfg).facts() for k in cfg.stream]
    if "control" in READS[cfg.regime.name]:
        facts["control"] = domain(cfg.control, cfg).facts()
    return facts


def _record(
    cfg: DictConfig,
    ctx: RunContext,
    chash: str,
    status: dict[str, Any],
    result: Outcome,
    selection: dict[str, Any],
) -> RunRecord:
    """The run's record: its status, the regime's outcome (empty for a failed run), the facts.

    ``selection``: the protocol and trial facts of :func:`benchmarks.tuning.resolve`.
    """
    extra = {"extra_labels": len(ctx.holdout)} if ctx.holdout is not None else {}
    counts = torch.bincount(ctx.target.y_train[ctx.labelled], minlength=ctx.target.num_classes)
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    return RunRecord(
        schema_version=SCHEMA_VERSION,
        **status,
        metrics=result.metrics,
        regime=cfg.regime.name,
        reads=list(READS[cfg.regime.name]),  # the stage nodes this run's numbers depend on
        source=cfg.source.name,
        target=cfg.data.name,
        model=cfg.model.name,
        seed=cfg.seed,
        subset_seed=cfg.subset_seed,
        train_seed=cfg.train_seed,
        threads=cfg.threads,
        budget={
            "per_class": str(cfg.budget.per_class),
            "n_labelled": len(ctx.labelled),
            "per_class_used": dict(zip(ctx.target.class_names, counts.tolist(), strict=True)),
        },
        classes={
            "source": list(ctx.source.class_names),
            "target": list(ctx.target.class_names),
            "target_train_counts": ctx.target.class_counts(),  # the ceiling of any budget
        },
        domains=domain_facts(cfg, ctx),
        seconds=ctx.seconds,
        compute=result.compute | peak_memory_mb(ctx.device),
        info=result.info | user_code.info(cfg, READS[cfg.regime.name]),
        confusion=result.confusion,  # top level: the report reads it per class
        samples=record_samples(ctx.source, ctx.target),
        definitions=definitions_for(result.metrics),
        selection=selection | extra | result.selection,
        config_hash=chash,
        job=_job_identity(),
        config=config,
        environment=environment(str(ctx.device)),
    )


def _job_identity() -> dict[str, Any]:
    """The Hydra overrides and config-file fingerprint this run was composed from, if any."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    return {"overrides": overrides, "conf_fingerprint": conf_fingerprint()}


def execute(cfg: DictConfig, out_dir: Path) -> RunRecord | None:
    """Run one config and write its record; None when an ok record already exists.

    Raises:
        ConfigError: before anything is trained or written, for a config that cannot run.
    """
    declared_probe = cfg.probe.copy()  # the source probe's, whatever a trial sets (inputs.py)
    cfg, selection = tuning.resolve(cfg, READS)  # a trial's values, before anything hashes them
    chash = config_hash(cfg)
    path = out_dir / RECORD_NAME
    if _finished(path, chash):
        log.info("skip %s: finished record with the same config hash", out_dir.name)
        return None
    torch.set_num_threads(cfg.threads)
    ctx = run_context(cfg, out_dir, declared_probe)
    user_code.check(cfg, READS[cfg.regime.name], int(ctx.target.x_train.shape[1]))
    start = time.perf_counter()
    try:
        result = REGIMES[cfg.regime.name](ctx)
        status: dict[str, Any] = {"status": "ok", "error": None}
    except Exception as err:  # a failed run is a record, never a silent gap  # noqa: BLE001
        log.exception("run failed")
        status = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
        result = Outcome({})  # no stage finished that the record could describe
    ctx.seconds["total"] = time.perf_counter() - start
    record = _record(cfg, ctx, chash, status, result, selection)
    write_record(path, record)
    return record


def _summary(record: RunRecord) -> str:
    seeds = f"subset_seed={record.subset_seed} train_seed={record.train_seed}"
    what = f"{record.regime} per_class={record.budget['per_class']} {seeds}"
    if not record.ok:
        return f"{what}: FAILED ({record.error})"
    acc = record.metrics["test/acc"]
    return f"{what}: test/acc={acc:.3f} in {record.seconds['total']:.1f}s"


# An absolute path: relative to a package module, Hydra would look for a Python module "conf".
@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> str:
    """Hydra entry point; exits 2 with one line on a config that cannot run.

    Returns the outcome (``ok``, ``failed`` or ``skipped``) for the sweep's progress line.
    """
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        record = execute(cfg, out_dir)
    except (ConfigError, MissingMandatoryValue) as err:
        if not (out_dir / RECORD_NAME).exists():  # leave nothing half-written behind
            remove_with_empty_parents(out_dir)
        if isinstance(err, MissingMandatoryValue):  # a ??? a config group leaves to the user
            err = f"{err.full_key} is not set; set it on the command line ({err.full_key}=...)"
        print(f"regimebench: error: {err}", file=sys.stderr)
        sys.exit(2)
    if record is None:
        return "skipped"
    log.info(_summary(record))
    if record.status == "failed" and HydraConfig.get().mode != RunMode.MULTIRUN:
        outcome.note_failure("run", out_dir / RECORD_NAME)  # a sweep's jobs: by its sweeper
    return record.status


def entry() -> None:
    """Console script: name an unknown option or key in one line, then hand over to Hydra.

    Exits 1 after everything ran (and a sweep's report was built) when a run failed, with one
    line per failed run on stderr, so a script or CI job can tell.
    """
    problem = first_problem(sys.argv[1:])
    if problem:
        print(f"regimebench: error: {problem}", file=sys.stderr)
        sys.exit(2)
    main()
    failed = outcome.failures()
    for line in failed:
        print(f"regimebench: failed: {line}", file=sys.stderr)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    entry()
