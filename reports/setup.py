"""The setup header of a report: what was compared, on which data, with which model and seeds.

A reader of a report cannot see the configs; without this header a study on a user's own photos
reads the same as one on digits. Everything comes from the records: ``record.domains``
(source, target and stream domains with classes, split sizes and image sizes), the resolved
config, and ``record.samples`` (a strip of preprocessed train images per domain). Older
records lack the first and last; the header then says what it cannot know instead of guessing.
One header per group (``reports.arms``): runs of different groups had different setups.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from common.records import RunRecord
from reports.arms import arm_labels
from reports.collect import budget_order
from reports.overlap import overlap_notes

UNKNOWN = "not recorded"
NODES = {"source": "source", "target": "data"}  # record role -> config node


def _size(size: Any, channels: Any) -> str:
    if size is None:
        return UNKNOWN
    h, w = size if isinstance(size, list | tuple) else (size, size)
    return f"{h}\u00d7{w}, " + (
        f"{channels} channel(s)" if channels is not None else "channels not recorded"
    )


def domain_facts(record: RunRecord, role: str) -> dict[str, Any]:
    """Facts about one domain: ``record.domains[role]``, else what older records hold."""
    found = (record.domains or {}).get(role)
    if found is not None:
        return dict(found)
    cfg = record.config
    node = cfg.get(NODES.get(role, role), {})
    model = cfg.get("model", {})
    counts = record.classes.get(f"{role}_train_counts")
    shape = (record.samples or {}).get(role, {}).get("shape")  # [C, H, W] as trained on
    names = {"source": record.source, "target": record.target}
    return {
        "name": names.get(role, node.get("name")),
        "dataset": node.get("dataset"),
        "classes": record.classes.get(role, []),
        "n_train": sum(counts.values()) if counts else None,
        "n_test": None,
        "evaluated_on": node.get("evaluate_on"),
        "n_unlabeled": None,
        "transform": node.get("transform"),
        "native_size": None,
        "native_channels": None,
        "used_size": shape[1:] if shape else model.get("image_size"),
        "used_channels": shape[0] if shape else model.get("in_chans"),
    }


def _classes(names: list[str]) -> str:
    shown = ", ".join(map(str, names[:12]))
    return f"{len(names)}: {shown}" + (f", \u2026 (+{len(names) - 12})" if len(names) > 12 else "")


def _count(value: Any) -> str:
    return UNKNOWN if value is None else f"{value:,}"


def domain_row(role: str, facts: dict[str, Any]) -> dict[str, str]:
    """One row of the domains table, as text."""
    return {
        "role": role,
        "name": str(facts.get("name")),
        "dataset": str(facts.get("dataset") or UNKNOWN),
        "transform": str(facts.get("transform") or "none"),
        "classes": _classes(list(facts.get("classes") or [])),
        "n_train": _count(facts.get("n_train")),
        "n_test": _count(facts.get("n_test")),
        "evaluated on": str(facts.get("evaluated_on") or "test"),
        "n_unlabeled": _count(facts.get("n_unlabeled")),
        "native": _size(facts.get("native_size"), facts.get("native_channels")),
        "used": _size(facts.get("used_size"), facts.get("used_channels")),
    } | (_passages(facts) if facts.get("modality") == "text" else {})


def _passages(facts: dict[str, Any]) -> dict[str, str]:
    """A text domain's sizes: passages of bytes, cut from the corpus as loaded."""
    used = f"{facts.get('passage_bytes')}-byte passages"
    return {"native": "text", "used": used}


def _domains(record: RunRecord) -> list[tuple[str, dict[str, Any]]]:
    roles = [("source", domain_facts(record, "source")), ("target", domain_facts(record, "target"))]
    stream = (record.domains or {}).get("stream", [])
    control = [("control", d) for d in [(record.domains or {}).get("control")] if d]
    return roles + [(f"stream {i + 1}", d) for i, d in enumerate(stream)] + control


def _budgets(records: list[RunRecord]) -> str:
    labelled = {}
    for r in records:
        labelled.setdefault(str(r.budget["per_class"]), r.budget["n_labelled"])
    order = pd.Series(list(labelled))
    order = order.iloc[budget_order(order).argsort()]
    return ", ".join(f"{b} per class ({labelled[b]:,} labelled)" for b in order)


def _seeds(records: list[RunRecord]) -> str:
    seeds = sorted({r.seed for r in records})
    text = f"{len(seeds)} seed(s): {', '.join(map(str, seeds))}"
    for key, what in (("subset_seed", "labelled subset"), ("train_seed", "training")):
        values = sorted({r.seed if getattr(r, key) is None else getattr(r, key) for r in records})
        if values != seeds:
            text += f"; {what} seeds ({key}): {', '.join(map(str, values))}"
    return text


def _read(record: RunRecord, node: str) -> bool:
    if record.reads is not None:
        return node in record.reads
    return f"{node}_hash" in record.info  # the run built or loaded that stage


def _recipe(parts: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" if k else str(v) for k, v in parts.items() if v is not None)


# Where a regime's continued SimCLR stage runs, when not on the target (benchmarks/regimes.py).
CONTINUED_ON = {
    "longer_pretrain": "the source's",
    "continual_pretrain": "each stream domain's",
    "unrelated_pretrain": "the control {control}'s",
    "task_pretrain": "the task's own (no domain corpus)",
    "domain_then_task_pretrain": "the target's, then the task's own",
}


def _recipes(records: list[RunRecord]) -> list[str]:
    """Each distinct pretraining recipe of the group, with the regimes that used it."""
    found: dict[str, set[str]] = {}
    for r in records:
        cfg, source = r.config, domain_facts(r, "source").get("name")
        if _read(r, "pretrain"):
            p = cfg.get("pretrain", {})
            labels = "with labels" if p.get("objective") == "supervised" else "labels unused"
            what = {"steps": p.get("steps"), "batch": p.get("batch_size"), "lr": p.get("lr")}
            text = f"{p.get('objective')}: {_recipe(what)}, on the source {source} (train split, "
            found.setdefault(text + f"{labels})", set()).add(r.regime)
        if _read(r, "continued_pretrain"):
            c = cfg.get("continued_pretrain", {})
            what = {"steps": c.get("steps"), "batch": c.get("batch_size"), "lr": c.get("lr")}
            what |= {"replay": c.get("replay"), "schedule": c.get("schedule")}
            control = ((r.domains or {}).get("control") or {}).get("name")  # in the record
            on = CONTINUED_ON.get(r.regime, "the target's").format(control=control)
            objective = cfg.get("pretrain", {}).get("objective")
            objective = objective if objective in ("clm", "mlm") else "SimCLR"
            items = "passages" if objective != "SimCLR" else "images"
            text = f"continued {objective}: {_recipe(what)}, on {on} unlabelled train {items}"
            found.setdefault(text, set()).add(r.regime)
    return [f"{text} — used by {', '.join(sorted(regs))}" for text, regs in found.items()]


def _model(record: RunRecord) -> str:
    m = record.config.get("model", {})
    target = domain_facts(record, "target")
    if target.get("modality") == "text":
        text = m.get("text") or {}
        what = f"{text.get('architecture')}, width {text.get('width')}, {text.get('layers')} layers"
        return f"{record.model} ({what}; input {target.get('passage_bytes')}-byte passages)"
    size = _size(target.get("used_size") or m.get("image_size"), target.get("used_channels"))
    checkpoint = f", weights {m['checkpoint']}" if m.get("checkpoint") else ""
    return f"{record.model} (input {size}{checkpoint})"


def _samples(record: RunRecord) -> list[dict[str, str]]:
    strips = record.samples or {}
    return [
        {"role": role, "name": s.get("name", role), "uri": f"data:image/png;base64,{s['png']}"}
        for role, s in strips.items()
        if isinstance(s, dict) and s.get("png")
    ]


def header(records: list[RunRecord], group: str = "") -> dict[str, Any]:
    """The setup of one group of runs, as text for the template."""
    first = next((r for r in records if r.domains is not None), records[0])
    shown = next((r for r in records if r.samples), first)
    notes, warnings = overlap_notes(
        first, domain_facts(first, "source"), domain_facts(first, "target")
    )
    return {
        "group": group,
        "question": " / ".join(sorted({str(r.config.get("question", "")) for r in records})),
        "regimes": ", ".join(sorted({r.regime for r in records})),
        "n_runs": len(records),
        "domains": [domain_row(role, facts) for role, facts in _domains(first)],
        "budgets": _budgets(records),
        "model": _model(first),
        "pretraining": _recipes(records)
        or ["none (no regime here starts from a pretrained backbone)"],
        "seeds": _seeds(records),
        "overlap": notes,
        "warnings": warnings,
        "samples": _samples(shown),
    }


def headers(records: list[RunRecord]) -> list[dict[str, Any]]:
    """One :func:`header` per group of ``records`` (one header when nothing but regimes vary)."""
    groups = arm_labels(records)["group"].tolist()
    order = list(dict.fromkeys(groups))
    return [
        header([r for r, g in zip(records, groups, strict=True) if g == grp], grp) for grp in order
    ]
