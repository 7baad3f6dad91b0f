"""Arms and groups: which runs may share a cell, and which may be compared (PLAN interface 2).

A report may read sweeps that differ in more than regime, budget and seed (another target,
another model, more pretraining steps). Averaging such runs into one cell pools different
experiments, so every run gets three labels computed from its resolved config:

- ``group``: the non-stage config keys that differ between the records read (``data=mnist``,
  ``model=resnet18``); runs are compared only within one group.
- ``variant``: the stage-node keys (``train.*``, ``pretrain.*``, ...) that differ *within one
  regime* (``train.steps=50``); a regime's own defaults (scratch's learning rate differs from
  finetune's) are part of the regime, not a variant.
- ``arm``: ``regime``, then `` · variant`` and `` · group`` where not empty: the key of every
  cell, row and line of the report.

A stage node counts only for the regimes that read it: ``record.reads`` where the record
carries it; otherwise a node a regime does not read is indistinguishable from one it does, and
its keys are a variant only when they differ within the regime.

A tuned sweep (``record.selection["hparams"]``) runs each regime at several grid points, the
trials: the keys a regime tunes are neither its variant nor a group, so its trials are one arm
and ``reports.selection`` chooses among them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import pandas as pd

from common.records import RunRecord

IGNORED = frozenset(
    {
        "seed",
        "subset_seed",
        "train_seed",
        "budget.per_class",
        "regime.name",
        "name",
        "question",
        "trainer.enable_progress_bar",
        "tuning.trial",  # a grid position (reports.selection), not a variant
    }
)
IGNORED_NODES = ("paths", "comparisons")
# A sweep's grids are one declaration (a run may hold only its own regime's); what a trial used is
# its selection.hparams. tuning.trials still tells a tuned sweep from a fixed one.
IGNORED_PREFIXES = ("tuning.grids.",)
STAGE_NODES = ("train", "pretrain", "continued_pretrain", "stream", "control", "tfidf")
# Keys the text modality added, null in every image run: left out there, so image records written
# before and after they existed are one arm.
NULL_AS_UNSET = ("model.text", "data.text", "source.text", "pretrain.mask_share", "control")
UNSET = "???"  # OmegaConf's mandatory-missing marker: a stage node the regime never set
MISSING = "(not set)"


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def flatten(config: dict, prefix: str = "") -> dict[str, str]:
    """Dotted key -> value as text (lists and null as JSON), e.g. ``{"model.name": "resnet18"}``."""
    out: dict[str, str] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out |= flatten(value, f"{dotted}.")
        else:
            out[dotted] = "{}" if isinstance(value, dict) else _text(value)
    return out


def node(key: str) -> str:
    """The top-level config node of a dotted key."""
    return key.split(".", 1)[0]


def stage_nodes(records: list[RunRecord]) -> frozenset[str]:
    """The stage nodes of these records: the known ones and every node a record says it reads.

    A regime's own node (``svm``, ``knn``, ...) is set only in its runs; were it not a stage
    node, its keys would differ between runs that have it and runs that lack it, and become a
    group that splits every other regime from it.
    """
    found = {n for r in records for n in (reads(r) or ())}
    return frozenset(STAGE_NODES) | found


def is_stage(key: str, stages: frozenset[str] = frozenset(STAGE_NODES)) -> bool:
    """A key of a stage node or of the regime itself: it belongs to the regime's definition."""
    return node(key) in stages or node(key) == "regime"


def reads(record: RunRecord) -> set[str] | None:
    """The stage nodes this run's regime reads, when the record says so."""
    return None if record.reads is None else set(record.reads)


def used_config(
    record: RunRecord,
    read: set[str] | None = None,
    stages: frozenset[str] = frozenset(STAGE_NODES),
) -> dict[str, str]:
    """The flattened config less seeds, display keys and stage nodes the regime does not read.

    ``read``: the nodes the regime reads, when the record does not say (from a newer record of
    the same regime), so old and new records of one regime are labelled alike. ``stages``: the
    stage nodes (:func:`stage_nodes`).
    """
    read = reads(record) if reads(record) is not None else read
    kept = {}
    for key, value in flatten(record.config).items():
        if key in IGNORED or node(key) in IGNORED_NODES or key.startswith(IGNORED_PREFIXES):
            continue
        if node(key) in stages and (value == UNSET or (read is not None and node(key) not in read)):
            continue
        if key in NULL_AS_UNSET and value == "null":
            continue
        kept[key] = value
    return kept


def _varying(flats: list[dict[str, str]], keys: Iterable[str]) -> list[str]:
    return sorted(k for k in set(keys) if len({f.get(k, MISSING) for f in flats}) > 1)


def _determined(flats: list[dict[str, str]], key: str, by: str) -> bool:
    """True when ``key``'s value is a function of ``by``'s value across ``flats``."""
    seen: dict[str, str] = {}
    for f in flats:
        if seen.setdefault(f.get(by, MISSING), f.get(key, MISSING)) != f.get(key, MISSING):
            return False
    return True


def _compact(flats: list[dict[str, str]], keys: list[str]) -> list[str]:
    """Drop keys a varying ``<node>.name`` already tells apart (``data=x`` implies its classes)."""
    names = {node(k) for k in keys if k == f"{node(k)}.name"}
    return [
        k
        for k in keys
        if node(k) not in names
        or k.endswith(".name")
        or not _determined(flats, k, f"{node(k)}.name")
    ]


def _label(flat: dict[str, str], keys: list[str]) -> str:
    parts = []
    for key in keys:
        shown = node(key) if key == f"{node(key)}.name" else key
        parts.append(f"{shown}={flat.get(key, MISSING)}")
    return ", ".join(parts)


def arm_labels(records: list[RunRecord]) -> pd.DataFrame:
    """Per record (same order): ``group``, ``variant`` and ``arm`` as in the module docstring."""
    regimes = [str(r.regime) for r in records]
    known = {str(r.regime): reads(r) for r in records if reads(r) is not None}
    stages = stage_nodes(records)
    flats = [
        used_config(r, known.get(regime), stages)
        for r, regime in zip(records, regimes, strict=True)
    ]
    keys = {k for f in flats for k in f}
    tuned: dict[str, set[str]] = {}
    for r, regime in zip(records, regimes, strict=True):
        mine = tuned.setdefault(regime, set())  # a trial's keys never make a variant or group
        mine.update(r.selection.get("hparams", {}), r.selection.get("config_keys", []))
    anywhere = set().union(*tuned.values())
    group = [k for k in keys if not is_stage(k, stages) and k not in anywhere]
    group_keys = _compact(flats, _varying(flats, group))
    variant_keys: dict[str, list[str]] = {}
    for regime in set(regimes):
        mine = [f for f, r in zip(flats, regimes, strict=True) if r == regime]
        stage = [k for k in {k for f in mine for k in f} if is_stage(k, stages)]
        stage = [k for k in stage if k not in tuned[regime]]
        variant_keys[regime] = _varying(mine, stage)
    rows = []
    for flat, regime in zip(flats, regimes, strict=True):
        group, variant = _label(flat, group_keys), _label(flat, variant_keys[regime])
        arm = " · ".join(part for part in (regime, variant, group) if part)
        rows.append({"group": group, "variant": variant, "arm": arm})
    return pd.DataFrame(rows, columns=["group", "variant", "arm"])


def pairing_columns(runs: pd.DataFrame) -> list[str]:
    """The columns that identify a sample of a cell: (subset_seed, train_seed), else seed."""
    if {"subset_seed", "train_seed"} <= set(runs.columns):
        return ["subset_seed", "train_seed"]
    return ["seed"]
