"""The config's place in Hydra: the schema in the ConfigStore, the job-folder resolver, the files.

The schema's dataclasses live in :mod:`benchmarks.schema` and the checks of a composed config in
:mod:`benchmarks.validation`; they are re-exported here, so ``from benchmarks.config import
ConfigError, validate`` keeps working for every caller.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from benchmarks import baseline_config, schema
from benchmarks.schema import RunConfig, numeric_trainer
from benchmarks.validation import ConfigError, validate

__all__ = [
    "CONF_DIR",
    "ConfigError",
    "RunConfig",
    "conf_fingerprint",
    "job_dirname",
    "numeric_trainer",
    "register",
    "validate",
]

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"  # the YAML the schema types

# The Python files composition reads besides conf/: the dataclasses the YAML is composed onto.
SCHEMA_FILES = tuple(Path(m.__file__).resolve() for m in (schema, baseline_config))


def drop_text_nulls(data: dict) -> dict:
    """Remove the text keys an image config leaves null, in place; returns ``data``.

    So a resolved image config keys a record (its hash) and a checkpoint as it did before the
    text modality added these keys.
    """
    for node, key in (
        ("model", "text"),
        ("data", "text"),
        ("source", "text"),
        ("pretrain", "mask_share"),
    ):
        if key in data.get(node, {}) and data[node][key] is None:
            data[node].pop(key)
    text = data.get("model", {}).get("text")
    if isinstance(text, dict) and "bpe_vocab" in text and text["bpe_vocab"] is None:  # bytes
        text.pop("bpe_vocab")
    if "control" in data and data["control"] is None:  # no unrelated-corpus control
        data.pop("control")
    for dom in (data.get("stream") or {}).values():
        if dom.get("text", 0) is None:
            dom.pop("text")
    return data


@functools.lru_cache(maxsize=1)
def conf_fingerprint() -> str:
    """SHA-256 of every config file and the schema: what composition reads besides overrides."""
    digest = hashlib.sha256()
    for path in sorted([*CONF_DIR.rglob("*.yaml"), *SCHEMA_FILES]):
        digest.update(str(path.relative_to(CONF_DIR.parent)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


MAX_DIRNAME = 200  # bytes; file systems allow 255 per path component


def job_dirname(overrides: str) -> str:
    """A sweep job's folder name: its overrides, or a prefix and a hash when they are too long.

    Overrides with paths in them (``data.root=/a/long/path``) would nest folders and easily pass
    the 255-byte limit of a file name: slashes become ``_`` and a long name keeps a prefix and a
    hash of the whole, so folders stay distinct and stable across re-runs.
    """
    overrides = overrides.replace("/", "_")  # a path value must not nest folders
    if len(overrides.encode()) <= MAX_DIRNAME:
        return overrides
    digest = hashlib.sha256(overrides.encode()).hexdigest()[:16]
    return f"{overrides.encode()[:150].decode(errors='ignore')}...{digest}"


def register() -> None:
    """Make the schema available to ``conf/config.yaml`` as ``base``, and its resolver."""
    ConfigStore.instance().store(name="base", node=RunConfig)
    OmegaConf.register_new_resolver("rb_dirname", job_dirname, replace=True)
