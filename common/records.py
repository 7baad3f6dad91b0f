"""Run records: one ``record.json`` per run, read and written only through :class:`RunRecord`.

A record is written to a temporary file in the same folder and renamed over the target, so a
crash at any moment leaves the old record or the new one, never half of one. Reading a record
imports neither torch nor anything else heavy (a report or a sweep's "already finished" check
must not pay for it; ``tests/test_records.py`` checks in a fresh interpreter).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.metrics import definitions_for

# Version 2 added ``definitions`` (what each metric in ``metrics`` means). Older records are
# upgraded on read (:data:`_UPGRADES`); newer ones are refused with a message, never guessed at.
SCHEMA_VERSION = 2
RECORD_NAME = "record.json"


@dataclass
class RunRecord:
    """One run: what it was (config, seeds, budget), what it measured, what it cost, where.

    The fields without a default are what every record ever written holds; the others are
    missing from older records and then hold their empty default. ``extra`` keeps keys this
    version does not name, so reading and rewriting a record loses nothing; no reader uses it.
    """

    schema_version: int
    status: str  # "ok" or "failed"
    regime: str
    source: str
    target: str
    model: str
    seed: int
    budget: dict[str, Any]  # per_class (str), n_labelled, per_class_used
    classes: dict[str, Any]  # source, target (class names), target_train_counts
    config_hash: str
    config: dict[str, Any]  # the resolved config
    environment: dict[str, Any]  # versions, device, threads, CPU capability, git commit
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # names: common.metrics
    definitions: dict[str, str] = field(default_factory=dict)
    subset_seed: int | None = None  # None in records from before the seed split: ``seed``
    train_seed: int | None = None
    threads: int | None = None
    reads: list[str] | None = None  # the stage nodes the numbers depend on; None: older record
    domains: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    compute: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    confusion: list[list[int]] | None = None
    samples: dict[str, Any] | None = None
    job: dict[str, Any] = field(default_factory=dict)  # overrides, conf_fingerprint
    # protocol, trial, hparams, extra_labels, folds/per_class, defaulted, is_default; {}: untuned
    selection: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """The run finished and measured its metrics."""
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``record.json`` (``extra``'s keys at the top level)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return data.pop("extra") | data

    def to_json(self) -> str:
        """``record.json``'s text: sorted keys, NaN allowed (a diverged metric stays visible)."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, allow_nan=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """A record from its JSON object, upgraded to :data:`SCHEMA_VERSION`.

        Raises:
            ValueError: not a regimebench record, or one of a newer schema.
            KeyError: a field every record holds is missing (a hand-edited record).
        """
        if not isinstance(data, Mapping) or "schema_version" not in data or "status" not in data:
            raise ValueError("not a regimebench record (no schema_version/status)")
        version = data["schema_version"]
        if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {version!r} is not one this regimebench reads "
                f"(1 to {SCHEMA_VERSION}); a newer regimebench wrote it"
            )
        data = dict(data)
        while data["schema_version"] in _UPGRADES:
            data = _UPGRADES[data["schema_version"]](data)
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        missing = sorted(n for n in _REQUIRED if n not in data)
        if missing:
            raise KeyError(f"record lacks {', '.join(missing)}")
        known = {k: v for k, v in data.items() if k in names}
        return cls(**known, extra={k: v for k, v in data.items() if k not in names})

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        """Parse ``record.json``'s text (:meth:`from_dict`; ``ValueError`` for bad JSON too)."""
        return cls.from_dict(json.loads(text))


_REQUIRED = tuple(
    f.name
    for f in dataclasses.fields(RunRecord)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
)


def _upgrade_1_to_2(record: dict[str, Any]) -> dict[str, Any]:
    """Version 1 measured the same metrics with the same protocols, only without the words."""
    metrics = record.get("metrics", {})
    return record | {
        "schema_version": 2,
        "definitions": definitions_for(metrics),
    }


_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _upgrade_1_to_2}


def write_record(path: str | os.PathLike[str], record: RunRecord) -> None:
    """Atomically write ``record`` as JSON to ``path`` (temporary file, then rename)."""
    path = Path(path)
    text = record.to_json()  # before touching the folder: a record that cannot be written
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(".record.*.json"):  # left by a run killed mid-write
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".record.", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_record(path: str | os.PathLike[str]) -> RunRecord:
    """Parse one record; raises ``ValueError`` when it is not a regimebench record."""
    return RunRecord.from_json(Path(path).read_text())


def finished_record(path: str | os.PathLike[str]) -> RunRecord | None:
    """The record at ``path`` if it exists, parses and says ``ok``; otherwise None."""
    try:
        record = read_record(path)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if record.ok else None
