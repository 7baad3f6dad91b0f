"""model.text.bpe_vocab: a byte-level BPE trained here on the source corpus, cached by content."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import run_cli
from test_hub_lm import _docs
from test_text import TINY_LM, TINY_TEXT

from lightning_modules.bpe import bpe_tokenizer
from lightning_modules.language_models import bits_per_byte, build_text_backbone
from lightning_modules.tokens import encode


def test_the_bpe_is_trained_once_per_corpus_and_size_and_round_trips(tmp_path):
    tokenizer = bpe_tokenizer(_docs(), 300, str(tmp_path))
    (saved,) = (tmp_path / "tokenizers").iterdir()
    stamp = saved.stat().st_mtime_ns
    again = bpe_tokenizer(_docs(), 300, str(tmp_path))
    assert saved.stat().st_mtime_ns == stamp  # read, not retrained
    assert len(tokenizer) == len(again) == 300
    assert [tokenizer.pad_token_id, tokenizer.mask_token_id] == [0, 1]
    for text in ("def f(x):\n    return x", "naïve – ünïcode", "The for statement"):
        ids = tokenizer(text)["input_ids"]
        assert tokenizer.decode(ids) == text and ids == again(text)["input_ids"]
        assert len(ids) <= len(text.encode())  # never longer than bytes
    bpe_tokenizer(_docs()[:-1], 300, str(tmp_path))  # another corpus: another file
    bpe_tokenizer(_docs(), 280, str(tmp_path))  # another size: another file
    assert len(list((tmp_path / "tokenizers").iterdir())) == 3


@pytest.mark.parametrize("architecture", ["gpt2", "bert"])
def test_a_uniform_bpe_model_scores_log2_vocab_per_token(tmp_path, architecture):
    tokenizer = bpe_tokenizer(_docs(), 300, str(tmp_path))
    backbone = build_text_backbone(architecture, 16, 1, 2, 32, 0, **TINY_LM, tokenizer=tokenizer)
    assert backbone.lm.config.vocab_size == 300
    with torch.no_grad():  # a tied head of zero embeddings (and bias): all-zero logits
        backbone.lm.get_input_embeddings().weight.zero_()
        for name, p in backbone.lm.named_parameters():
            if name.endswith("predictions.bias"):
                p.zero_()
    texts = ["The for statement iterates over a list.", "def f(x):\n    return x"]
    ids = encode(texts, 32)
    assert backbone.tokens(ids).ids.shape[1] < 32  # shorter than the bytes
    if architecture == "gpt2":
        kept = [t.encode()[:32] for t in texts]  # ASCII: cut at 32 bytes, no character split
        rows = [tokenizer(t.decode())["input_ids"] for t in kept]
        predicted = sum(len(r) - 1 for r in rows)
        covered = sum(
            len(t) - len(tokenizer.decode(r[:1]).encode()) for t, r in zip(kept, rows, strict=True)
        )
        expected = predicted * math.log2(300) / covered
        assert bits_per_byte(backbone, ids, 0.0) == pytest.approx(expected, rel=1e-5)
    else:  # bits per masked byte: log2(V) per masked token over its bytes, above 0
        assert 0 < bits_per_byte(backbone, ids, 0.5) < math.log2(300)


def test_too_small_a_bpe_is_one_line_and_exit_2(tmp_path):
    args = [*TINY_TEXT, "regime=linear_probe", "budget.per_class=2", "model.text.bpe_vocab=100"]
    proc = run_cli(args, tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "regimebench: error: model.text.bpe_vocab=100 is invalid; allowed: null (bytes) or an "
        "int >= 258 (256 bytes, PAD and MASK, then merges)"
    ]


@pytest.mark.slow
def test_a_masked_lm_on_a_bpe_runs_dapt_through_the_entry_point(tmp_path):
    swap = {"model=gpt2_tiny": "model=bert_tiny", "pretrain=clm": "pretrain=mlm"}
    args = [swap.get(a, a) for a in TINY_TEXT]
    run_cli([*args, "regime=incremental_pretrain", "budget.per_class=2",
             "model.text.bpe_vocab=300"], tmp_path)  # fmt: skip
    record = json.loads(next((tmp_path / "outputs").rglob("record.json")).read_text())
    assert record["status"] == "ok" and record["config"]["model"]["text"]["bpe_vocab"] == 300
    for key in ("lm/source_bpb_before", "lm/target_bpb_before", "lm/target_bpb_continued"):
        assert 0 < record["metrics"][key] < 12
    assert len(list((tmp_path / "cache" / "tokenizers").glob("bpe-*.json"))) == 1
