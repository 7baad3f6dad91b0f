"""data=hf_text: your own labelled text through ``datasets.load_dataset``, on files written here.

A hub name and a local builder (csv, json, parquet) go through the same call, so the local
files exercise the loader a networked user reaches with ``data.text.hub.path=ag_news``.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from helpers import run_cli

from lightning_modules.datasets import DataError, load
from lightning_modules.tokens import decode

WORDS = {
    "sport": ["match", "goal", "team", "coach", "league", "score", "season", "player"],
    "science": ["cell", "atom", "energy", "theory", "data", "model", "sample", "lab"],
    "music": ["song", "album", "band", "chord", "guitar", "rhythm", "tempo", "tour"],
}


def _rows(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [
        (" ".join(rng.choice(vocab) for _ in range(16)), label)
        for label, vocab in WORDS.items()
        for _ in range(n)
    ]


def _csv(path: Path, rows: list[tuple[str, str]]) -> str:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return str(path)


def _spec(hub: dict, passage_bytes: int = 32, test_split: str | None = "test") -> str:
    hub = {"name": None, "revision": None, "text_column": "text", "label_column": "label",
           "train_split": "train", "test_split": test_split, **hub}  # fmt: skip
    text = {"passage_bytes": passage_bytes, "min_examples": 5, "hub": hub}
    spec = {"dataset": "hf_text", "test_fraction": 0.25, "split_seed": 0, "text": text}
    return json.dumps(spec, sort_keys=True)


def test_csv_files_load_as_labelled_passages_with_their_own_test_split(tmp_path):
    train_rows = _rows(30, 0)
    test_rows = [*_rows(10, 1), train_rows[0]]  # one test example repeats a train one
    files = {"train": _csv(tmp_path / "train.csv", train_rows),
             "test": _csv(tmp_path / "test.csv", test_rows)}  # fmt: skip
    raw = load(_spec({"path": "csv", "data_files": files}), 0, str(tmp_path / "cache"))
    assert raw.class_names == ("music", "science", "sport")  # sorted string labels
    assert raw.x_train.shape == (90, 32) and len(raw.x_test) == 30  # the repeat left test
    train, test = decode(raw.x_train), decode(raw.x_test)
    assert not set(train) & set(test)
    first = {t[:32]: label for t, label in train_rows}
    for text, y in zip(train, raw.y_train.tolist(), strict=True):
        assert first[text] == raw.class_names[y]  # the example's first 32 bytes, its label


def test_an_edited_file_is_a_new_corpus_and_no_test_split_means_a_seeded_split(tmp_path):
    path = tmp_path / "all.csv"
    _csv(path, _rows(20, 0))
    spec = _spec({"path": "csv", "data_files": str(path)}, test_split=None)
    before = load(spec, 0, str(tmp_path / "cache"))
    assert len(before.x_train) + len(before.x_test) == 60 and len(before.x_test) == 15
    _csv(path, _rows(20, 0)[:-6])  # the same path, fewer rows: the cache must not serve the old
    load.cache_clear()
    after = load(spec, 0, str(tmp_path / "cache"))
    assert len(after.x_train) + len(after.x_test) == 54


def test_an_unlabeled_split_is_the_domains_corpus_cut_into_passages(tmp_path):
    files = {"train": _csv(tmp_path / "train.csv", _rows(20, 0)),
             "unsupervised": _csv(tmp_path / "u.csv", _rows(20, 2))}  # fmt: skip
    spec = json.loads(_spec({"path": "csv", "data_files": files, "unlabeled_split": "unsupervised"},
                            test_split=None))  # fmt: skip
    spec["text"]["unlabeled_passages"] = 50
    raw = load(json.dumps(spec, sort_keys=True), 0, str(tmp_path / "cache"))
    assert raw.x_unlabeled.shape == (50, 32)
    corpus = " ".join(t for t, _ in _rows(20, 2))
    assert all(p in corpus for p in decode(raw.x_unlabeled))  # pieces of its texts, not labels


def test_a_class_label_column_keeps_its_names(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = _rows(12, 0)
    names = sorted(WORDS, reverse=True)  # the ClassLabel's order, not alphabetical
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)}
    )
    table = {"text": [t for t, _ in rows], "label": [names.index(y) for _, y in rows]}
    datasets.Dataset.from_dict(table, features=features).to_parquet(str(tmp_path / "d.parquet"))
    spec = _spec({"path": "parquet", "data_files": str(tmp_path / "d.parquet")}, test_split=None)
    raw = load(spec, 0, str(tmp_path / "cache"))
    assert raw.class_names == tuple(names)
    labels = {t[:32]: y for t, y in rows}
    for text, y in zip(decode(raw.x_train), raw.y_train.tolist(), strict=True):
        assert raw.class_names[y] == labels[text]


def test_a_test_split_without_labels_is_refused(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=sorted(WORDS))}
    )
    rows = _rows(10, 0)
    files = {}
    for split, seed_rows, labels in (("train", rows, None), ("test", _rows(5, 1), -1)):
        table = {"text": [t for t, _ in seed_rows],
                 "label": [sorted(WORDS).index(y) if labels is None else labels
                           for _, y in seed_rows]}  # fmt: skip
        files[split] = str(tmp_path / f"{split}.parquet")
        datasets.Dataset.from_dict(table, features=features).to_parquet(files[split])
    with pytest.raises(DataError, match="test_split='test' has no labelled passage"):
        load(_spec({"path": "parquet", "data_files": files}), 0, str(tmp_path / "cache"))


def test_a_missing_column_is_one_error_naming_the_columns(tmp_path):
    files = _csv(tmp_path / "train.csv", _rows(10, 0))
    spec = _spec({"path": "csv", "data_files": files, "text_column": "body"}, test_split=None)
    with pytest.raises(DataError, match=r"text_column='body' is not a column .* text, label"):
        load(spec, 0, str(tmp_path / "cache"))


BASE = ["experiment=text", "data=hf_text", "data.text.hub.path=csv", "threads=1"]


@pytest.mark.slow
def test_a_run_on_your_own_csv_through_the_entry_point(tmp_path):
    files = {"train": _csv(tmp_path / "train.csv", _rows(40, 0)),
             "test": _csv(tmp_path / "test.csv", _rows(10, 1))}  # fmt: skip
    data_files = f"data.text.hub.data_files={{train:{files['train']},test:{files['test']}}}"
    run_cli([*BASE, data_files, "regime=tfidf", "budget.per_class=5",
             "hydra.run.dir=out"], tmp_path)  # fmt: skip
    record = json.loads((tmp_path / "out" / "record.json").read_text())
    assert record["status"] == "ok" and record["domains"]["target"]["dataset"] == "hf_text"
    assert record["domains"]["target"]["classes"] == ["music", "science", "sport"]
    assert record["domains"]["target"]["n_test"] == 30
    assert record["metrics"]["test/acc"] > 1 / 3  # three separable vocabularies


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "data.text.hub.path='unset' is invalid"),
        (["data.text.hub.data_files=/nope/train.csv"], "['/nope/train.csv'] is invalid"),
        (["data.text.hub.data_files=TRAIN", "data.text.hub.test_split=validation"],
         "test_split='validation' is not a split of 'csv'; allowed: train"),
    ],
)  # fmt: skip
def test_bad_hub_input_is_one_line_and_exit_2(tmp_path, args, says):
    train = _csv(tmp_path / "train.csv", _rows(10, 0))
    args = [a.replace("TRAIN", train) for a in args]
    base = BASE if args else [a for a in BASE if not a.startswith("data.text.hub.path")]
    proc = run_cli([*base, *args, "regime=tfidf"], tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], lines
    assert not (tmp_path / "outputs").exists()
