"""Command-line overrides checked against ``conf/`` and the schema before Hydra composes.

Hydra reports an unknown option (``regime=nonsense``) or key (``train.stepz=3``) in several lines
with a pointer to ``HYDRA_FULL_ERROR``. Those two mistakes are the commonest typos in a sweep, so
the entry point names them first, in one line: the key, the bad value and what is allowed.
A key added with ``+`` or ``++`` is checked the same way: Hydra adds it with struct mode off, so
``+no_such_key=1`` would compose, run and exit 0 with the typo silently ignored. Everything else
(values, interpolations, ``~`` deletions, ``hydra/...``) is left to Hydra's composition and
:func:`benchmarks.validation.validate`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.errors import HydraException

from benchmarks.config import CONF_DIR, RunConfig


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _values(override: Override) -> Iterable[str]:
    if override.is_sweep_override():
        return list(override.sweep_string_iterator())
    return [override.get_value_element_as_str()]


def _unknown_key(path: list[str]) -> str | None:
    """The first component of ``path`` that the schema does not have, with the allowed ones."""
    cls: typing.Any = RunConfig
    for depth, part in enumerate(path):
        if typing.get_origin(cls) is dict:  # a mapping such as stream.<any name>
            cls = typing.get_args(cls)[1]
            continue
        if typing.get_origin(cls) in (typing.Union, types.UnionType):  # X | None
            cls = next(a for a in typing.get_args(cls) if a is not type(None))
        if not dataclasses.is_dataclass(cls):
            return None  # a leaf value or a free-form node: Hydra checks it
        names = [f.name for f in dataclasses.fields(cls)]
        if part not in names:
            where, parent = ".".join(path[: depth + 1]), ".".join(path[:depth]) or "the root"
            return f"{where} is not a config key; allowed under {parent}: {', '.join(names)}"
        cls = typing.get_type_hints(cls).get(part)
    return None


def first_problem(args: list[str]) -> str | None:
    """One line for the first unknown option or key among ``args``; None when all are known."""
    candidates = [a for a in args if "=" in a and not a.startswith("-")]
    try:
        overrides = OverridesParser.create().parse_overrides(candidates)
    except HydraException:
        return None  # a syntax error: Hydra's own message is the right one
    groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()}
    for override in overrides:
        key = override.key_or_group
        if override.type is OverrideType.DEL or key.startswith("hydra"):
            continue
        if key in groups:
            allowed = _options(key)
            for value in _values(override):
                if value not in allowed and not (key == "experiment" and value == "null"):
                    shown = override.get_key_element()
                    return f"{shown}={value!r} is not an option; allowed: {', '.join(allowed)}"
            continue
        problem = _unknown_key(key.split("."))
        if problem:
            return problem
    return None
