"""Overlap between the source and the target domain: shared classes, shared images.

A source that contains the target's images makes "transfer" partly memorisation: pretraining
saw the very pictures the target is tested on, or their train-split twins. That happens when
both domains are the same dataset with overlapping classes under the same transform, or when
both read the same image folder. The report states every overlap and warns on shared images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.records import RunRecord

NODES = {"source": "source", "target": "data"}


def _node(record: RunRecord, role: str) -> dict[str, Any]:
    return record.config.get(NODES[role], {}) or {}


def _root(node: dict[str, Any]) -> str | None:
    root = node.get("root")
    return None if root is None else str(Path(str(root)).expanduser().resolve())


def _same_split(src: dict[str, Any], tgt: dict[str, Any]) -> bool:
    keys = ("split_seed", "test_fraction", "test_root")
    return all(src.get(k) == tgt.get(k) for k in keys)


def _same_images(record: RunRecord, src: dict, tgt: dict, shared: list[str]) -> str | None:
    """Why the source holds target images, or None."""
    s_node, t_node = _node(record, "source"), _node(record, "target")
    if src.get("dataset") == "imagefolder" and tgt.get("dataset") == "imagefolder":
        same_root = _root(s_node) is not None and _root(s_node) == _root(t_node)
        return f"both read the image folder {_root(s_node)}" if same_root else None
    if src.get("dataset") != tgt.get("dataset") or not shared:
        return None
    if str(src.get("transform") or "none") != str(tgt.get("transform") or "none"):
        return None
    split = (
        "with the same train/test split, so its train split holds the target's train images of "
        "those classes (not its test images)"
        if _same_split(s_node, t_node)
        else "with a different train/test split, so its train split may hold target TEST images"
    )
    return (
        f"both are {src.get('dataset')} under transform {src.get('transform') or 'none'} with "
        f"{len(shared)} shared class(es) ({', '.join(shared[:10])}), {split}"
    )


def overlap_notes(record: RunRecord, src: dict, tgt: dict) -> tuple[list[str], list[str]]:
    """(notes, warnings) on the overlap of source and target; a warning means shared images."""
    shared = [c for c in (tgt.get("classes") or []) if c in set(src.get("classes") or [])]
    why = _same_images(record, src, tgt, [str(c) for c in shared])
    if why is not None:
        warning = (
            f"The source contains target images: {why}. Pretraining saw them (labels unused "
            "unless the objective is supervised); a gain over scratch is partly from that."
        )
        return [f"Shared classes: {len(shared)} of {len(tgt.get('classes') or [])}."], [warning]
    notes = []
    if shared and src.get("dataset") == tgt.get("dataset"):
        notes.append(
            f"Same dataset ({src.get('dataset')}) and {len(shared)} shared class(es), under "
            f"different transforms (source {src.get('transform')}, target {tgt.get('transform')}): "
            "the same pictures, shifted."
        )
    elif shared:
        notes.append(
            f"{len(shared)} class name(s) shared ({', '.join(map(str, shared[:10]))}) across "
            f"different datasets ({src.get('dataset')}, {tgt.get('dataset')}): no shared images."
        )
    elif src.get("dataset") == tgt.get("dataset"):
        notes.append(f"Same dataset ({src.get('dataset')}), disjoint classes: no shared images.")
    else:
        notes.append("Different datasets, no shared class names: no shared images.")
    return notes, []
