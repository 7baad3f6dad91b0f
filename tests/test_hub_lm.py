"""model=hf_lm: a Hugging Face checkpoint by name, on tiny checkpoints the tests save themselves.

A hub id and a ``save_pretrained`` directory go through the same ``from_pretrained`` calls, so a
local GPT-2 with a byte-level BPE and a local BERT with a WordPiece vocabulary, both trained here
with ``tokenizers`` on the standard library's own documentation, exercise the path a networked
user reaches with ``model.name=gpt2``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from helpers import run_cli

from lightning_modules.language_models import bits_per_byte, hub_parts, load_text_backbone
from lightning_modules.tokens import encode

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# the text study at toy size on a checkpoint: its own sizes, a few steps per stage
TINY_HUB = [
    "model=hf_lm",
    "data@source=python_docs",
    "data=python_code",
    "pretrain=hf",
    "train.augment=false",
    "data.text.passage_bytes=32",
    "source.text.passage_bytes=32",
    "data.text.unlabeled_passages=300",
    "continued_pretrain.steps=4",
    "continued_pretrain.batch_size=16",
    "train.steps=4",
    "train.batch_size=8",
    "threads=1",
]


def _docs() -> list[str]:
    from pydoc_data.topics import topics

    return [text for _, text in sorted(topics.items())]


def _gpt2(folder: Path, vocab: int = 320, positions: int = 64, extra: int = 0) -> str:
    """A 1-layer GPT-2 and a byte-level BPE of ``vocab`` tokens (``extra`` more than it embeds)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab + extra, special_tokens=["<|endoftext|>"], initial_alphabet=alphabet
    )
    bpe.train_from_iterator(_docs(), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")
    torch.manual_seed(0)
    end = tokenizer.eos_token_id
    config = GPT2Config(vocab_size=len(tokenizer) - extra, n_positions=positions, n_embd=16,
                        n_layer=1, n_head=2, bos_token_id=end, eos_token_id=end)  # fmt: skip
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def _bert(folder: Path) -> str:
    """A 1-layer BERT masked LM and a WordPiece vocabulary with [CLS] ... [SEP] around a text."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wordpiece.train_from_iterator(
        _docs(), trainers.WordPieceTrainer(vocab_size=400, special_tokens=SPECIAL)
    )
    cls, sep = wordpiece.token_to_id("[CLS]"), wordpiece.token_to_id("[SEP]")
    wordpiece.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    names = dict(zip(("pad", "unk", "cls", "sep", "mask"), SPECIAL, strict=True))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=wordpiece, **{f"{k}_token": v for k, v in names.items()}
    )
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                        type_vocab_size=1)  # fmt: skip
    BertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


PASSAGES = ["The for statement iterates over a sequence.", "def f(x):\n    return x + 1", "a"]
# multi-byte characters (byte-level BPE splits them into pieces), spaces, and a "€" whose last
# two bytes fall past the passage's end (cut at 8 bytes): it is dropped, not read as U+FFFD
ODD = ["a€b  naïve", "  lead and trail  ", "naïve €uro"]


def _cover(backbone, passages, length):
    tokens = backbone.tokens(encode(passages, length))
    kept = [text.encode()[:length].decode("utf-8", errors="ignore") for text in passages]
    return tokens, kept


def test_a_checkpoints_tokens_are_charged_every_byte_of_a_passage_once(tmp_path):
    gpt2 = load_text_backbone(_gpt2(tmp_path / "gpt2"), 0, weights=True)
    tokenizer = gpt2.tokenizer
    tokens, kept = _cover(gpt2, PASSAGES + ODD, 64)
    for n, text in enumerate(kept):
        first = tokenizer.decode([int(tokens.ids[n, 0])])  # given, not predicted
        if "\ufffd" not in first:  # a whole character or more: charged its own bytes
            assert int(tokens.charge[n, 0]) == len(first.encode())
        assert int(tokens.charge[n].sum()) == len(text.encode())
        assert int(tokens.charge[n, 1:].sum()) > 0 or n == 2  # "a" is one token
    tokens, kept = _cover(gpt2, ["naïve €uro"], 8)
    assert kept == ["naïve "] and int(tokens.charge.sum()) == len("naïve ".encode())
    bert = load_text_backbone(_bert(tmp_path / "bert"), 0, weights=True)
    tokens, kept = _cover(bert, PASSAGES + ODD, 64)
    for n, text in enumerate(kept):  # [CLS] and [SEP] are charged nothing and never masked
        assert int(tokens.charge[n].sum()) == len(text.encode())
        assert int(tokens.text[n].sum()) == int(tokens.keep[n].sum()) - 2
        assert int(tokens.charge[n][~tokens.text[n]].sum()) == 0


def test_a_uniform_checkpoint_scores_log2_vocab_bits_per_token(tmp_path):
    """Bits per byte = predicted tokens x log2(V) / the bytes after the first token."""
    backbone = load_text_backbone(_gpt2(tmp_path / "gpt2"), 0, weights=True)
    with torch.no_grad():  # a tied head of zero embeddings: all-zero logits
        backbone.lm.get_input_embeddings().weight.zero_()
    tokenizer = backbone.tokenizer
    ids = [tokenizer(text)["input_ids"] for text in PASSAGES[:2]]
    predicted = sum(len(row) - 1 for row in ids)
    after_first = sum(len(t.encode()) - len(tokenizer.decode(r[:1]).encode())
                      for t, r in zip(PASSAGES[:2], ids, strict=True))  # fmt: skip
    expected = predicted * math.log2(backbone.lm.config.vocab_size) / after_first
    assert bits_per_byte(backbone, encode(PASSAGES[:2], 64), 0.0) == pytest.approx(expected, 1e-5)
    assert expected < 8  # BPE tokens cover more than a byte each: fewer, costlier predictions


def test_a_home_relative_directory_loads(tmp_path, monkeypatch):
    from lightning_modules.language_models import located

    _gpt2(tmp_path / "gpt2")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert located("~/gpt2") == str((tmp_path / "gpt2").resolve())
    assert located("~/nope") is None and located("gpt2") == "gpt2"  # a hub id as it is
    assert load_text_backbone("~/gpt2", 0, weights=True).lm.config.vocab_size == 320


def test_a_tokenizer_that_is_not_the_checkpoints_is_refused_in_one_line(tmp_path):
    folder = _gpt2(tmp_path / "gpt2", extra=40)
    with pytest.raises(ValueError, match="tokens for 320 embeddings: not this model's tokenizer"):
        hub_parts(folder)
    args = [*TINY_HUB, f"model.name={folder}", "regime=linear_probe", "budget.per_class=2"]
    proc = run_cli(args, tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        f"regimebench: error: model.name={folder} has a tokenizer of 360 tokens for 320 "
        "embeddings: not this model's tokenizer"
    ]
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").rglob("*.json"))


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("model.name=/nope/gpt2", "model.name=/nope/gpt2 is not a directory (a hub id such as"),
        ("model.text.width=32", "model.text.width=32 is invalid; allowed: null"),
        ("data.text.passage_bytes=200", "data.text.passage_bytes=200 is invalid; allowed: 2..64"),
        ("pretrain=mlm", "pretrain.objective='mlm' is invalid; allowed: hf"),
    ],
)
def test_bad_checkpoint_settings_exit_2_before_anything_runs(tmp_path, override, says):
    folder = _gpt2(tmp_path / "gpt2")
    args = [*TINY_HUB, f"model.name={folder}", "regime=linear_probe", "budget.per_class=2"]
    if override.startswith("data.text.passage_bytes"):
        args.append("source.text.passage_bytes=200")
    proc = run_cli([*args, override], tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1 and says in proc.stderr


@pytest.mark.slow
def test_a_causal_checkpoint_runs_the_regimes_through_the_entry_point(tmp_path):
    folder = _gpt2(tmp_path / "gpt2")
    regimes = "scratch,linear_probe,lp_ft,incremental_pretrain"
    args = ["-m", *TINY_HUB, f"model.name={folder}", "name=hub", f"regime={regimes}",
            "budget.per_class=2"]  # fmt: skip
    run_cli(args, tmp_path, timeout=900)
    sweep = tmp_path / "multirun" / "hub"
    records = [json.loads(p.read_text()) for p in sweep.glob("*/record.json")]
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    by = {r["regime"]: r["metrics"] for r in records}
    dapt = by["incremental_pretrain"]
    for key in ("lm/source_bpb_before", "lm/source_bpb_after", "lm/target_bpb_continued"):
        assert 0 < dapt[key] < 20
    assert by["linear_probe"]["lm/source_bpb_before"] == dapt["lm/source_bpb_before"]
    assert (sweep / "report" / "index.html").stat().st_size > 0


@pytest.mark.slow
def test_a_masked_checkpoint_continues_its_own_objective(tmp_path):
    folder = _bert(tmp_path / "bert")
    args = [*TINY_HUB, f"model.name={folder}", "pretrain.mask_share=0.15",
            "regime=incremental_pretrain", "budget.per_class=2"]  # fmt: skip
    run_cli(args, tmp_path, timeout=900)
    record = json.loads(next((tmp_path / "outputs").rglob("record.json")).read_text())
    assert record["status"] == "ok"
    assert 0 < record["metrics"]["lm/target_bpb_continued"] < 20
    unset = [a for a in args if not a.startswith("pretrain.mask_share")]
    proc = run_cli(unset, tmp_path, check=False)
    assert proc.returncode == 2 and "pretrain.mask_share=None is invalid" in proc.stderr
