"""Text as a modality: byte tokens, bits per byte, masking, the corpora, and a real text sweep."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from helpers import run_cli

from lightning_modules.budgets import budget_indices
from lightning_modules.datasets import load
from lightning_modules.language_models import (
    bits_per_byte,
    build_text_backbone,
    features_and_bits,
    masked,
)
from lightning_modules.tokens import MASK, PAD, decode, encode, n_bytes

# A text study at toy size: a 1-layer, 16-wide LM on 32-byte passages, a few steps per stage.
CONTROL_32 = ["control.text.passage_bytes=32"]  # the control's passages as long as TINY_TEXT's
TINY_TEXT = [
    "model=gpt2_tiny",
    "data@source=python_docs",
    "data=python_code",
    "pretrain=clm",
    "train.augment=false",
    "model.text.width=16",
    "model.text.layers=1",
    "model.text.heads=2",
    "model.text.max_length=32",
    "data.text.passage_bytes=32",
    "source.text.passage_bytes=32",
    "data.text.unlabeled_passages=300",
    "pretrain.steps=6",
    "pretrain.batch_size=16",
    "continued_pretrain.steps=4",
    "continued_pretrain.batch_size=16",
    "train.steps=4",
    "train.batch_size=8",
    "threads=1",
]


def test_byte_tokens_round_trip_and_pad():
    texts = ["def f(x):\n    return x", "naïve – ünïcode", ""]
    ids = encode(texts, 40)
    assert ids.shape == (3, 40) and ids.dtype == torch.long
    assert decode(ids) == texts
    assert n_bytes(ids).tolist() == [len(t.encode()) for t in texts]
    assert int(ids[2].eq(PAD).sum()) == 40
    cut = encode(["abcdef"], 3)
    assert decode(cut) == ["abc"]


TINY_LM = {"activation": "gelu_pytorch_tanh", "dropout": 0.1}  # conf/model/gpt2_tiny.yaml's


@pytest.mark.parametrize("architecture", ["gpt2", "bert"])
def test_a_uniform_byte_model_scores_8_bits_per_byte(architecture):
    backbone = build_text_backbone(architecture, 16, 1, 2, 32, seed=0, **TINY_LM)
    with torch.no_grad():  # tied head: zero embeddings (and bias) give all-zero byte logits
        backbone.lm.get_input_embeddings().weight.zero_()
        for name, p in backbone.lm.named_parameters():
            if name.endswith("predictions.bias"):
                p.zero_()
    ids = encode(["some text", "def g(): pass", "x" * 40], 32)
    assert bits_per_byte(backbone, ids, share=0.3) == pytest.approx(8.0, abs=1e-5)


def test_the_fused_tanh_gelu_scores_as_gpt2s_own():
    """gpt2_tiny's activation is a speed choice only: gelu_new's numbers to float tolerance."""
    ids = encode(["def f(x):\n    return x", "import os", "class A: pass"], 32)
    scores = []
    for activation in ("gelu_new", "gelu_pytorch_tanh"):
        backbone = build_text_backbone("gpt2", 64, 2, 4, 32, 0, activation=activation, dropout=0.1)
        backbone.eval()
        with torch.no_grad():
            logits = backbone.token_logits(ids, ids != PAD)
            scores.append((logits, bits_per_byte(backbone, ids, 0.0)))
    (logits_new, bits_new), (logits_fused, bits_fused) = scores
    assert torch.allclose(logits_new, logits_fused, atol=1e-5)
    assert bits_fused == pytest.approx(bits_new, abs=1e-6)


def test_one_pass_gives_the_features_and_bits_of_two():
    """The forgetting probe's test features and the source bits share a pass, changing nothing."""
    backbone = build_text_backbone("gpt2", 16, 1, 2, 32, 0, **TINY_LM)
    backbone.train()  # scoring switches to eval mode and back
    ids = encode(["def f(x):", "a" * 40, "import os\nimport sys", ""] * 40, 32)
    features, bits = features_and_bits(backbone, ids, batch=48)  # chunks that end mid-set
    assert backbone.training
    backbone.eval()
    with torch.no_grad():
        assert torch.equal(features, torch.cat([backbone(c) for c in ids.split(48)]))
    assert bits == bits_per_byte(backbone, ids, 0.0, batch=48)
    with pytest.raises(ValueError, match="causal"):
        features_and_bits(build_text_backbone("bert", 16, 1, 2, 32, 0, **TINY_LM), ids)


def test_training_lowers_bits_per_byte_below_8():
    torch.manual_seed(0)
    backbone = build_text_backbone("gpt2", 16, 1, 2, 32, seed=0, **TINY_LM)
    ids = encode(["abababababababababababab"] * 16, 24)
    before = bits_per_byte(backbone, ids, 0.0)
    opt = torch.optim.AdamW(backbone.parameters(), 1e-2)
    from lightning_modules.language_models import lm_loss

    for _ in range(30):
        loss = lm_loss(backbone, ids, 0.0, torch.Generator().manual_seed(0))
        loss.backward()
        opt.step()
        opt.zero_grad()
    after = bits_per_byte(backbone, ids, 0.0)
    assert after < 1.0 < before  # a two-byte cycle is learnt: close to 0 bits per byte
    backbone.eval()  # bits per byte are the eval-mode loss per predicted byte, in bits
    with torch.no_grad():
        nats = float(lm_loss(backbone, ids, 0.0, torch.Generator().manual_seed(0)))
    assert math.isclose(after, nats / math.log(2), rel_tol=1e-5)


def test_a_masked_lm_batch_masks_the_declared_share():
    texts = ["a" * 32, "b" * 20, "c" * 7, "d"]
    ids = encode(texts, 32)
    inputs, chosen = masked(ids, 0.25, torch.Generator().manual_seed(0))
    expected = [max(1, round(0.25 * len(t))) for t in texts]
    assert chosen.sum(1).tolist() == expected
    assert not chosen[ids == PAD].any()  # padding is never masked
    assert inputs[chosen].eq(MASK).all() and inputs[~chosen].equal(ids[~chosen])


def _spec(dataset: str, **text) -> str:
    spec = {"dataset": dataset, "test_fraction": 0.3, "split_seed": 0, "text": text}
    return json.dumps(spec, sort_keys=True)


def test_the_corpora_are_labelled_deduplicated_and_disjoint(tmp_path):
    docs = load(_spec("python_docs", passage_bytes=64, min_examples=40), 0, str(tmp_path))
    assert len(docs.class_names) >= 10 and "specialnames" in docs.class_names
    code = load(
        _spec(
            "python_code", passage_bytes=64, min_examples=40, unlabeled_passages=500,
            packages=["asyncio", "email", "json", "xml"],
        ),
        0, str(tmp_path),
    )  # fmt: skip
    assert code.class_names == ("asyncio", "email", "xml")  # json: fewer than 40 functions
    bible = load(_spec("kjv", passage_bytes=64, min_examples=40), 0, str(tmp_path))
    assert bible.class_names[0] == "Genesis" and "Revelation" in bible.class_names
    every = "".join(decode(torch.cat([bible.x_train, bible.x_test])))  # verse numbers, brackets
    assert not any(c.isdigit() or c in "[]" for c in every)  # are stripped from every passage
    for raw in (docs, code, bible):
        train, test = set(decode(raw.x_train)), set(decode(raw.x_test))
        assert len(train) == len(raw.x_train) and not train & test  # each passage once
        assert raw.x_train.shape[1] == 64
    assert all(t.lstrip().startswith(("def ", "async def", "@")) for t in decode(code.x_train))
    corpus = set(decode(code.x_unlabeled))
    assert len(code.x_unlabeled) == 500 and not corpus & set(decode(code.x_train))


def test_budgets_on_text_are_nested(tmp_path):
    docs = load(_spec("python_docs", passage_bytes=64, min_examples=40), 0, str(tmp_path))
    one, five = (set(budget_indices(docs.y_train, k, 3).tolist()) for k in (1, 5))
    assert one < five and len(five) == 5 * len(docs.class_names)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["data.text.passage_bytes=64"], "data.text.passage_bytes=64 is invalid; allowed: 2..32"),
        (["data.dataset=nope"], "data.dataset='nope' is invalid"),
        (["regime=pixels"], "regime.name='pixels' is invalid; allowed: a regime built for text"),
        (["pretrain=simclr"], "pretrain.objective='simclr' is invalid; allowed: clm"),
        (["budget.per_class=2000"], "budget.per_class=2000"),
        (["data.text.packages=[asyncio,nothere]"], "data.text.packages="),
        (["data.text.min_examples=1"], "data.text.min_examples=1 is invalid; allowed: an int >= 2"),
        (["source.text.passage_bytes=16"], "allowed: data.text.passage_bytes (32)"),
        (["regime=unrelated_pretrain"], "control=None is invalid; allowed: a domain for"),
        (
            ["regime=task_pretrain", "data.text.unlabeled_passages=0"],
            "data.text.unlabeled_passages=0 is invalid; allowed: > 0, a text target with a domain",
        ),
        (
            [
                "regime=unrelated_pretrain",
                "+data@control=python_docs",
                "control.text.passage_bytes=32",
            ],
            "control='python_docs' is invalid; allowed: a corpus other than source",
        ),
        (
            ["regime=unrelated_pretrain", "+data@control=kjv"],
            "control.text.passage_bytes=64 is invalid; allowed: 2..32 (model.text.max_length",
        ),
        (
            ["regime=unrelated_pretrain", "+data@control=kjv", "control.text.passage_bytes=16"],
            "control.text.passage_bytes=16 is invalid; allowed: data.text.passage_bytes (32)",
        ),
        (  # the source's text, split another way, is still the source
            [
                "regime=unrelated_pretrain",
                "+data@control=python_docs",
                *CONTROL_32,
                "control.split_seed=1",
            ],
            "control='python_docs' is invalid; allowed: a corpus other than source",
        ),
        (  # other packages of the target's code are still the target's domain
            [
                "regime=unrelated_pretrain",
                "+data@control=python_code",
                *CONTROL_32,
                "control.text.packages=[json]",
            ],
            "control='python_code' is invalid; allowed: a corpus other than data",
        ),
        (
            [
                "regime=unrelated_pretrain",
                "+data@control=kjv",
                *CONTROL_32,
                "control.text.unlabeled_passages=500",
            ],
            "control.text.unlabeled_passages=500 is invalid; allowed: 0 here: python_code, or",
        ),
    ],
)
def test_bad_text_input_is_one_line_and_exit_2(tmp_path, args, says):
    proc = run_cli([*TINY_TEXT, *args], tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("regimebench: error:") and says in lines[0]
    assert not (tmp_path / "outputs").exists()  # nothing half-written


def test_a_tiny_text_multirun_writes_records_with_bits_per_byte_and_a_report(tmp_path):
    regimes = "tfidf,scratch,linear_probe,finetune,incremental_pretrain"
    args = ["-m", *TINY_TEXT, "name=tinytext", f"regime={regimes}", "budget.per_class=1,2"]
    run_cli(args, tmp_path, timeout=900)
    sweep = tmp_path / "multirun" / "tinytext"
    records = [json.loads(p.read_text()) for p in sweep.glob("*/record.json")]
    assert len(records) == 10 and all(r["status"] == "ok" for r in records)
    by = {(r["regime"], r["budget"]["per_class"]): r for r in records}
    dapt = by["incremental_pretrain", "2"]["metrics"]
    for key in ("lm/source_bpb_before", "lm/source_bpb_after", "lm/target_bpb_continued"):
        assert 0 < dapt[key] < 9
    assert dapt["lm/source_bpb_rise"] == pytest.approx(
        dapt["lm/source_bpb_after"] - dapt["lm/source_bpb_before"]
    )
    assert by["incremental_pretrain", "1"]["domains"]["target"]["modality"] == "text"
    assert "lm/source_bpb_before" not in by["tfidf", "1"]["metrics"]
    assert by["tfidf", "2"]["samples"]["target"]["text"][0].lstrip().startswith(("def", "async"))
    report = sweep / "report"
    summary = pd.read_csv(report / "summary.csv")
    assert set(summary["regime"]) >= {"tfidf", "finetune", "incremental_pretrain"}
    assert (report / "index.html").stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["data@source=python_docs"], "model='test_resnet' is invalid; allowed: a language model"),
        (["model=gpt2_tiny", "pretrain=clm"], "data.dataset='digits' is invalid; allowed: a text"),
        (["regime=domain_then_task_pretrain"], "data.text.unlabeled_passages=None is invalid"),
        (["pretrain=hf"], "pretrain.objective='hf' is invalid; allowed: timm for an image model"),
    ],
)
def test_text_and_images_do_not_mix(tmp_path, args, says):
    proc = run_cli(args, tmp_path, check=False)
    assert proc.returncode == 2 and says in proc.stderr


def test_a_masked_lm_runs_every_stage_through_the_entry_point(tmp_path):
    swap = {"model=gpt2_tiny": "model=bert_tiny", "pretrain=clm": "pretrain=mlm"}
    args = [swap.get(a, a) for a in TINY_TEXT]
    run_cli([*args, "regime=incremental_pretrain", "budget.per_class=2"], tmp_path)
    record = json.loads(next((tmp_path / "outputs").rglob("record.json")).read_text())
    assert record["status"] == "ok" and record["config"]["pretrain"]["mask_share"] == 0.15
    m = record["metrics"]
    assert m["lm/target_bpb_continued"] < m["lm/target_bpb_before"] < 9  # DAPT lowers them
    assert 0 < m["lm/source_bpb_before"] < 9


def test_the_unrelated_corpus_control_continues_on_its_own_corpus(tmp_path):
    """unrelated_pretrain: incremental_pretrain's stage on data@control, from the same backbone."""
    control = ["+data@control=kjv", "control.text.passage_bytes=32"]
    regimes = "regime=incremental_pretrain,unrelated_pretrain"
    run_cli(["-m", *TINY_TEXT, *control, "name=ctl", regimes, "budget.per_class=2"], tmp_path)
    records = {
        r["regime"]: r
        for r in (json.loads(p.read_text()) for p in (tmp_path / "multirun").rglob("record.json"))
    }
    dapt, unrelated = records["incremental_pretrain"], records["unrelated_pretrain"]
    assert dapt["status"] == unrelated["status"] == "ok"
    assert unrelated["domains"]["control"]["name"] == "kjv" and "control" not in dapt["domains"]
    assert dapt["info"]["pretrain_hash"] == unrelated["info"]["pretrain_hash"]
    assert dapt["info"]["continued_pretrain_hash"] != unrelated["info"]["continued_pretrain_hash"]
    for m in (dapt["metrics"], unrelated["metrics"]):
        assert 0 < m["lm/target_bpb_continued"] < 9 and 0 < m["lm/source_bpb_after"] < 9
    assert stage_key(tmp_path, unrelated)["target"]["spec"]["dataset"] == "kjv"
    assert stage_key(tmp_path, unrelated)["base"] == stage_key(tmp_path, dapt)["base"]


def stage_key(tmp_path, record):
    """The cache key of a record's (last) continued stage, as stored beside the entry."""
    entry = tmp_path / "cache" / "continued" / record["info"]["continued_pretrain_hash"]
    return json.loads((entry / "meta.json").read_text())["key"]


def test_the_control_keys_only_the_regime_that_reads_it(compose_cfg):
    """Changing the control changes unrelated_pretrain's hash and no other regime's."""
    from benchmarks.run import config_hash

    def chash(regime, *control):
        return config_hash(compose_cfg(*TINY_TEXT, f"regime={regime}", *control))

    kjv, shorter = (
        ["+data@control=kjv", *CONTROL_32],
        ["+data@control=kjv", "control.text.passage_bytes=16"],
    )
    for regime in ("incremental_pretrain", "longer_pretrain", "tfidf"):
        assert chash(regime) == chash(regime, *kjv) == chash(regime, *shorter)
    assert chash("unrelated_pretrain", *kjv) != chash("unrelated_pretrain", *shorter)


def test_tapt_continues_on_the_task_passages_alone_and_after_dapt(tmp_path):
    """task_pretrain drops the domain corpus; domain_then_task_pretrain chains it after DAPT."""
    regimes = "regime=incremental_pretrain,task_pretrain,domain_then_task_pretrain"
    run_cli(["-m", *TINY_TEXT, "name=tapt", regimes, "budget.per_class=2"], tmp_path)
    records = {
        r["regime"]: r
        for r in (json.loads(p.read_text()) for p in (tmp_path / "multirun").rglob("record.json"))
    }
    dapt, tapt, both = (
        records[r] for r in ("incremental_pretrain", "task_pretrain", "domain_then_task_pretrain")
    )
    assert dapt["status"] == tapt["status"] == both["status"] == "ok"

    dapt_key, tapt_key, both_key = (stage_key(tmp_path, r) for r in (dapt, tapt, both))
    assert dapt_key["target"]["loaded"]["n_unlabeled"] == 300  # TINY_TEXT's domain corpus
    assert tapt_key["target"]["loaded"]["n_unlabeled"] == 0  # the task's passages alone
    assert tapt_key["target"]["loaded"]["n_train"] == dapt_key["target"]["loaded"]["n_train"]
    assert tapt_key["base"] == dapt_key["base"]  # both continue the same pretrained backbone
    assert both_key["base"] == dapt_key and both_key["target"] == tapt_key["target"]
    samples = [r["compute"]["continued_pretrain_samples"] for r in (dapt, tapt, both)]
    assert samples[0] == samples[1] and samples[2] == 2 * samples[0]
    for m in (tapt["metrics"], both["metrics"]):
        assert 0 < m["lm/target_bpb_continued"] < 9 and 0 < m["lm/source_bpb_after"] < 9
    # target bits per byte are scored once per backbone: the pretrained one and the three ends
    bits = [json.loads(p.read_text()) for p in (tmp_path / "cache" / "bits").glob("*/meta.json")]
    scored = {b["key"]["backbone"]: b["bpb"] for b in bits}
    assert len(bits) == len(scored) == 4
    for r in (dapt, tapt, both):
        m = r["metrics"]
        assert scored[r["info"]["continued_pretrain_hash"]] == m["lm/target_bpb_continued"]
        assert scored[r["info"]["pretrain_hash"]] == m["lm/target_bpb_before"]


# A text stream: the source, two Gospels of the Bible, then the target's code (TINY_TEXT's).
STREAM = [
    "regime=continual_pretrain",
    "data@stream.s1=kjv",
    "data@stream.s2=python_code",
    "stream.s1.classes=[39,40]",
    "stream.s1.text.passage_bytes=32",
    "stream.s2.text.passage_bytes=32",
    "stream.s2.text.unlabeled_passages=300",
]


def test_a_text_stream_fills_the_accuracy_and_bits_matrices_and_reports_them(tmp_path):
    """continual_pretrain on text: R/i/j as for images, and lm/B/i/j (bits per byte) beside it."""
    run_cli([*TINY_TEXT, "regime=linear_probe", "budget.per_class=2"], tmp_path)
    [probe] = [json.loads(p.read_text()) for p in (tmp_path / "outputs").rglob("record.json")]
    args = ["-m", *TINY_TEXT, *STREAM, "name=stream", "budget.per_class=2"]
    run_cli([*args, "continued_pretrain.replay=0.0,0.25"], tmp_path)
    sweep = tmp_path / "multirun" / "stream"
    records = [json.loads(p.read_text()) for p in sweep.glob("*/record.json")]
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    for r in records:
        m = r["metrics"]
        assert r["info"]["stream_domains"] == ["python_docs", "kjv", "python_code"]
        assert all(0 < m[f"lm/B/{i}/{j}"] < 9 for i in range(3) for j in range(3))
        assert all(0 <= m[f"R/{i}/{j}"] <= 1 for i in range(3) for j in range(3))
        # row 0 is the pretrained model: the same bits as linear_probe's frozen backbone
        assert m["lm/B/0/0"] == probe["metrics"]["lm/source_bpb_before"]
    assert records[0]["metrics"]["lm/B/0/2"] == records[1]["metrics"]["lm/B/0/2"]
    assert records[0]["metrics"]["lm/B/2/0"] != records[1]["metrics"]["lm/B/2/0"]  # replay
    bits = pd.read_csv(sweep / "report" / "bits_matrix.csv")
    assert len(bits) == 2 * 9 and set(bits["domain"]) == {"python_docs", "kjv", "python_code"}
    assert "Bits per byte over the stream" in (sweep / "report" / "index.html").read_text()


def test_a_stream_domain_of_the_other_modality_is_refused(tmp_path):
    args = [
        *TINY_TEXT,
        *STREAM[:2],
        "stream.s1.text.passage_bytes=32",
        "data@stream.s2=digits_invert",
    ]
    proc = run_cli(args, tmp_path, check=False)
    assert proc.returncode == 2 and "stream.s2.dataset='digits' is invalid" in proc.stderr
