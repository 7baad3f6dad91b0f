"""Hyperparameter trials and selection protocols: checked, applied, and described for the record.

A trial is an ordinary run: ``tuning.trial=i`` picks the i-th point of the regime's grid
(``tuning.grids.<regime>``: dotted config keys to lists, sorted keys, row-major product) and
:func:`resolve` writes it into the config before anything hashes it, so a grid over
``continued_pretrain.lr`` changes the cached stage's key and one over ``train.lr`` does not.
Every grid has ``tuning.trials`` points (the equal tuning budget), and the regime's own declared
values must be one of them: that trial is the ``fixed`` protocol's choice, and the one a ``cv``
run falls back to where a class has a single labelled example.

A grid over a baseline's or the probe's internal CV grid (``svm.c_grid``, ``probe.l2_grid``)
takes plain values: the trial fixes the value (a one-element grid, nothing left to choose) and
the 1-shot default beside it (``svm.default_c``, ``probe.default_l2``), whose declared value is
the regime's default for that key.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from benchmarks.validation import ConfigError, validate
from lightning_modules.baselines import PARAMS

PROTOCOLS = ("fixed", "holdout", "cv", "oracle")
# Keys a trial may not set: what a run is (its regime, budget, seeds, protocol), not how.
# Nor the domains and the architecture: trials over them would become one arm and the report
# would pick the "best" data set or model as if it were a hyperparameter (model.drop_rate is one).
NOT_TUNABLE = (
    "regime",
    "budget",
    "seed",
    "subset_seed",
    "train_seed",
    "selection",
    "tuning",
    "data",
    "source",
    "stream",
    "control",
    "model.name",
    "model.factory",
    "model.checkpoint",
    "model.image_size",
    "model.in_chans",
    "model.text",
)


def _not_tunable(key: str) -> bool:
    return any(key == k or key.startswith(f"{k}.") for k in NOT_TUNABLE)


# A CV grid key -> its 1-shot default key: probe.l2_grid -> probe.default_l2, svm.c_grid -> ...
DEFAULT_OF = {"probe.l2_grid": "probe.default_l2"} | {
    f"{name.split('/')[0]}.{grid}": f"{name.split('/')[0]}.{default}"
    for name, params in PARAMS.items()
    for grid, default in params.values()
}


def points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every point of ``grid``: the Cartesian product over its sorted keys, row-major."""
    keys = sorted(grid)
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))
    ]


def declared(cfg: DictConfig, keys: list[str]) -> dict[str, Any]:
    """The regime's own values of the grid's keys (a CV grid key: its 1-shot default)."""
    return {k: OmegaConf.select(cfg, DEFAULT_OF.get(k, k)) for k in keys}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    return a == b


def _is_point(values: dict[str, Any], point: dict[str, Any]) -> bool:
    return all(_same(values[k], point[k]) for k in point)


def _grid(cfg: DictConfig, regime: str) -> dict[str, list[Any]]:
    raw = cfg.tuning.grids[regime]
    node = OmegaConf.to_container(raw, resolve=True) if OmegaConf.is_dict(raw) else raw
    if not isinstance(node, dict) or not node:
        raise ConfigError(
            f"tuning.grids.{regime}={node!r} is invalid; allowed: a mapping of config keys to lists"
        )
    return node


def _is_key(cfg: DictConfig, key: str) -> bool:
    """Whether the dotted ``key`` is in the config (set or not: another regime's node is unset)."""
    node: Any = cfg
    for part in key.split("."):
        # keys(), not `in node`: DictConfig's `in` is False for a key whose value is unset
        if not isinstance(node, DictConfig) or part not in node.keys():  # noqa: SIM118
            return False
        node = node._get_node(part)  # noqa: SLF001 (the node, not its possibly missing value)
    return not isinstance(node, DictConfig)


def _check_grid(cfg: DictConfig, regime: str) -> list[dict[str, Any]]:
    """The grid's points, after checking its keys, values and size.

    The declared default is checked for this run's regime only: another regime's node is not
    composed here (its values are unset), and its own jobs check it.
    """
    grid = _grid(cfg, regime)
    for key, values in grid.items():
        where = f"tuning.grids.{regime}.{key}"
        if _not_tunable(key):
            raise ConfigError(f"{where} is not tunable; allowed: a hyperparameter key, not {key}")
        if not _is_key(cfg, key):
            raise ConfigError(f"{where}: {key} is not a config key; allowed: e.g. train.lr")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}={values!r} is invalid; allowed: a non-empty list")
    found = points(grid)
    trials = cfg.tuning.trials
    if trials is not None and len(found) != trials:
        raise ConfigError(
            f"tuning.grids.{regime} has {len(found)} points; allowed: tuning.trials={trials} "
            "(every regime's grid is the same tuning budget)"
        )
    if regime != cfg.regime.name:
        return found
    default = declared(cfg, sorted(grid))
    if not any(_is_point(default, p) for p in found):
        raise ConfigError(
            f"tuning.grids.{regime} does not contain the regime's declared values {default}; "
            "allowed: grids with the defaults as one of their points"
        )
    return found


def _check_selection(cfg: DictConfig) -> None:
    s, allowed = cfg.selection, ", ".join(PROTOCOLS)
    if s.protocol not in PROTOCOLS:
        raise ConfigError(f"selection.protocol={s.protocol!r} is invalid; allowed: {allowed}")
    if s.protocol == "holdout" and (s.per_class is None or s.per_class < 1):
        raise ConfigError(f"selection.per_class={s.per_class!r} is invalid; allowed: an int >= 1")
    if s.protocol == "cv" and (s.folds is None or s.folds < 2):
        raise ConfigError(f"selection.folds={s.folds!r} is invalid; allowed: an int >= 2")
    if s.protocol != "fixed" and cfg.regime.name == "continual_pretrain":
        raise ConfigError(
            f"selection.protocol={s.protocol!r} is invalid; allowed: fixed for continual_pretrain"
        )


def check(cfg: DictConfig, reads: dict[str, tuple[str, ...]]) -> list[dict[str, Any]] | None:
    """Check the protocol and every grid; this run's grid points, or None when not tuned."""
    _check_selection(cfg)
    t = cfg.tuning
    if t.trials is not None and t.trials < 1:
        raise ConfigError(f"tuning.trials={t.trials!r} is invalid; allowed: an int >= 1")
    for regime in t.grids:
        if regime not in reads:
            allowed = ", ".join(sorted(reads))
            raise ConfigError(f"tuning.grids.{regime} names no regime; allowed: {allowed}")
    grids = {regime: _check_grid(cfg, regime) for regime in t.grids}
    if t.trial is None:
        return None
    name = cfg.regime.name
    if name not in grids:
        raise ConfigError(
            f"tuning.trial={t.trial} is invalid for regime {name}: tuning.grids.{name} is not set"
        )
    if t.trials is None:
        raise ConfigError("tuning.trials is not set; allowed: the size of every grid")
    if not 0 <= t.trial < t.trials:
        raise ConfigError(f"tuning.trial={t.trial} is invalid; allowed: 0..{t.trials - 1}")
    return grids[name]


def set_keys(point: dict[str, Any]) -> list[str]:
    """Every config key a trial sets: its grid keys and, for a CV grid key, its 1-shot default.

    The record lists them (``selection.config_keys``) so the report keeps all of them out of
    variants and groups: ``svm.default_c`` moves with ``svm.c_grid`` and is not a variant.
    """
    return sorted(set(point) | {DEFAULT_OF[k] for k in point if k in DEFAULT_OF})


def apply(cfg: DictConfig, point: dict[str, Any]) -> DictConfig:
    """A copy of ``cfg`` with the trial's values set (a CV grid key: one value, and its default)."""
    out = cfg.copy()
    for key, value in point.items():
        try:
            if key in DEFAULT_OF:  # a list value never gets here: _check_grid refuses it
                OmegaConf.update(out, key, [value], merge=False)
                OmegaConf.update(out, DEFAULT_OF[key], value, merge=False)
            else:
                OmegaConf.update(out, key, value, merge=False)
        except OmegaConfBaseException as err:
            msg = str(err).splitlines()[0]
            raise ConfigError(f"tuning.grids.{cfg.regime.name}.{key}={value!r}: {msg}") from None
    return out


def resolve(
    cfg: DictConfig, reads: dict[str, tuple[str, ...]]
) -> tuple[DictConfig, dict[str, Any]]:
    """Validate ``cfg``, apply its trial and validate again.

    Returns the config to run and its ``selection`` facts for the record (``extra_labels``,
    ``folds``, ``defaulted`` are the run's to fill: they depend on the data).

    Raises:
        ConfigError: one line, before anything is trained or written.
    """
    validate(cfg, reads)
    grid = check(cfg, reads)
    s, t = cfg.selection, cfg.tuning
    facts: dict[str, Any] = {
        "protocol": s.protocol,
        "trial": t.trial,
        "trials": t.trials if grid is not None else None,
        "hparams": {},
        "extra_labels": 0,
        "per_class": s.per_class if s.protocol == "holdout" else None,
        "folds": None,
        "defaulted": False,
        "is_default": True,
    }
    if grid is None:
        return cfg, facts
    point = grid[t.trial]
    facts["hparams"] = point
    facts["config_keys"] = set_keys(point)
    # What the trial replaced: a re-run of the record's (applied) config restores these first,
    # so the declared probe, which the source probe uses (run.py), is the original's.
    facts["declared"] = {
        k: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v
        for k in facts["config_keys"]
        for v in [OmegaConf.select(cfg, k)]
    }
    facts["is_default"] = _is_point(declared(cfg, sorted(point)), point)
    applied = apply(cfg, point)
    validate(applied, reads)
    return applied, facts


def declared_config(config: dict[str, Any], selection: dict[str, Any]) -> DictConfig:
    """A record's config as it was before its trial was applied (what :func:`resolve` takes)."""
    cfg = OmegaConf.create(config)
    for key, value in selection.get("declared", {}).items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def hashed(data: dict[str, Any]) -> dict[str, Any]:
    """The ``selection``/``tuning`` part of a config hash, set in ``data`` in place.

    Nothing for an untuned fixed run (so its hash is the one it had before selection existed),
    else the protocol and trial; the grids are in the config through the values a trial applied.
    """
    selection, tuning = data.pop("selection", {}), data.pop("tuning", {})
    if selection.get("protocol", "fixed") != "fixed":
        data["selection"] = selection
    if tuning.get("trial") is not None:
        data["tuning"] = {"trial": tuning["trial"]}
    return data
