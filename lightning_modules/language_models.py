"""Text backbones: Hugging Face ``transformers`` language models behind the suite's backbone API.

The regimes treat a backbone as "token ids in, one feature vector out" (``num_features`` wide),
exactly as they treat a timm image model, so scratch, fine-tuning, LP-FT and the linear probe run
unchanged on text. A :class:`TextBackbone` pools the last hidden states over the non-padding
positions for that, and keeps its language-model head (tied to the token embeddings, as GPT-2
and BERT tie them) for the pretraining objectives and for bits per byte: the head travels with
the backbone through every stage, so a fine-tuned backbone's source bits per byte measure how
much of its language model it lost.

Architectures are built from a config (``model.text``: a tiny GPT-2 causal LM or a tiny BERT
masked LM over bytes, sized to train in minutes on two CPU cores), or are a Hugging Face
checkpoint by name or directory (``model=hf_lm model.name=...``: its architecture, its tokenizer
and, with ``pretrain=hf``, its weights). The suite's passages stay byte ids everywhere (budgets,
baselines and caches do not depend on a model); a checkpoint's backbone re-tokenises them with
its own tokenizer (:meth:`TextBackbone.tokens`), and every byte a token covers is counted, so
bits per byte stay comparable between a byte model and a BPE or WordPiece one.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lightning_modules.tokens import BYTES, MASK, PAD, VOCAB, decode

ARCHITECTURES = {"gpt2": "causal", "bert": "masked"}  # architecture -> its LM objective
HUB = "hub"  # model.text.architecture of a checkpoint (model=hf_lm): model.name's config says
# Passages per forward pass when scoring (features, logits, bits per byte): on one CPU thread the
# tiny GPT-2 took 0.37 s for 1,024 passages of 64 bytes in chunks of 16-128 and 1.0 s in one
# chunk of 1,024 (its activations then leave the cache).
EVAL_CHUNK = 64


@dataclass(frozen=True)
class Tokens:
    """A batch of passages as the model reads them, and the bytes each position stands for.

    Attributes:
        ids: (N, T) the model's token ids.
        keep: (N, T) positions that hold a token (its attention mask; what features pool).
        text: (N, T) positions of the passage's own tokens, not special ones a tokenizer adds
            ([CLS], [SEP], BOS, EOS): what a masked LM may mask and a causal LM is scored on.
        charge: (N, T) UTF-8 bytes each text token is charged: those from the end of the text
            token before it (the passage's start for the first) to its own end, the last one
            to the passage's end. Every byte is charged to exactly one token, spaces between
            tokens included, so bits per byte compare between tokenizers (a byte model: 1 each).
    """

    ids: torch.Tensor
    keep: torch.Tensor
    text: torch.Tensor
    charge: torch.Tensor


class TextBackbone(nn.Module):
    """A language model whose ``forward`` is the mean of its last hidden states over the text.

    Attributes:
        lm: the ``transformers`` model with its LM head (``GPT2LMHeadModel``, ``BertForMaskedLM``).
        kind: ``causal`` or ``masked``: which objective and which bits per byte it has.
        tokenizer: a checkpoint's fast tokenizer, or None where byte ids are the tokens.
        num_features: the hidden width (what a classifier head reads).
        max_length: the positions it has.
        eval_chunk: passages per forward pass when scoring (``EVAL_CHUNK``), which the probe's
            feature extraction and the classifier's predictions read.
    """

    eval_chunk = EVAL_CHUNK

    def __init__(self, lm: nn.Module, kind: str, tokenizer: Any = None) -> None:
        super().__init__()
        self.lm, self.kind, self.tokenizer = lm, kind, tokenizer
        self.num_features = int(lm.config.hidden_size)
        self.max_length = positions(lm.config)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, L) byte ids -> (N, D) features: last hidden states averaged over the tokens."""
        tokens = self.tokens(ids)
        return _pooled(self._hidden(tokens), tokens.keep)

    def tokens(self, ids: torch.Tensor) -> Tokens:
        """(N, L) byte ids as the model's tokens: as they are, or through its tokenizer."""
        if self.tokenizer is None:
            keep = ids != PAD
            return Tokens(ids, keep, keep, keep.long())
        # a character cut at a passage's edge is dropped, not read as U+FFFD: its bytes were
        # not all there, and its replacement's 3 bytes would be charged as if they were
        texts = decode(ids, errors="ignore")
        return _tokenized(self.tokenizer, texts, self.max_length, ids.device)

    def _hidden(self, tokens: Tokens) -> torch.Tensor:
        """The last hidden states: what the pooled features and (causal) the LM head read."""
        mask = tokens.keep.long()
        return self.lm.base_model(input_ids=tokens.ids, attention_mask=mask).last_hidden_state

    def token_logits(self, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """(N, T, V) next-token (causal) or masked-token (masked) logits.

        A byte model's scores are restricted to the 256 bytes (special tokens are never a
        target), so a model that has learnt nothing scores exactly 8 bits per byte.
        """
        logits = self.lm(input_ids=ids, attention_mask=keep.long()).logits
        return logits[..., :BYTES] if self.tokenizer is None else logits

    @property
    def mask_id(self) -> int:
        """The token a masked LM's input shows at a masked position."""
        return MASK if self.tokenizer is None else int(self.tokenizer.mask_token_id)


def _tokenized(tokenizer: Any, texts: list[str], limit: int, device: torch.device) -> Tokens:
    """Texts through a fast tokenizer, with the bytes of each token from its character offsets."""
    enc = tokenizer(
        texts, padding=True, return_tensors="pt", return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )  # fmt: skip
    ids, keep = enc["input_ids"], enc["attention_mask"].bool()
    if ids.shape[1] > limit:
        raise ValueError(f"a passage of {ids.shape[1]} tokens is longer than the {limit} positions")
    text = keep & ~enc["special_tokens_mask"].bool()
    # plain lists: indexing tensors element by element took 9x the model's own forward pass
    charge = []
    for passage, spans, own in zip(
        texts, enc["offset_mapping"].tolist(), text.tolist(), strict=True
    ):
        upto = [0]  # bytes of the passage through each character
        for char in passage:
            upto.append(upto[-1] + len(char.encode("utf-8")))
        row, end = [0] * len(own), 0
        mine = [t for t, is_text in enumerate(own) if is_text]
        for t in mine:  # pieces of one character after its first are charged nothing
            reach = upto[-1] if t == mine[-1] else max(end, upto[spans[t][1]])
            row[t], end = reach - end, reach
        charge.append(row)
    put = functools.partial(torch.Tensor.to, device=device)
    return Tokens(put(ids), put(keep), put(text), put(torch.tensor(charge)))


def positions(config: Any) -> int:
    """The positions a ``transformers`` config has (GPT-2 calls them ``n_positions``)."""
    return int(getattr(config, "max_position_embeddings", None) or config.n_positions)


def _pooled(hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    weights = keep.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def build_text_backbone(
    architecture: str,
    width: int,
    layers: int,
    heads: int,
    max_length: int,
    seed: int,
    *,
    activation: str,
    dropout: float,
    tokenizer: Any = None,
) -> TextBackbone:
    """A randomly initialised tiny LM whose weights depend on ``seed``.

    Its vocabulary is the bytes (with PAD and MASK), or ``tokenizer``'s (a BPE, ``bpe.py``).

    ``activation`` is a ``transformers`` ACT2FN name. GPT-2's own ``gelu_new`` is the tanh GELU
    written as five elementwise ops; ``gelu_pytorch_tanh`` is the same function in one fused
    kernel (they differ by at most 2.4e-7), and made a training step of the tiny GPT-2 1.25x
    faster on one CPU thread (72 against 57 ms, batch 32 x 64 bytes, AVX512). ``dropout`` is
    the embedding, attention and residual (hidden) dropout, all three at one rate.
    """
    from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # a config without BOS/EOS ids is intended here
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"model.text.architecture={architecture!r} is unknown; allowed: "
            f"{', '.join(ARCHITECTURES)}"
        )
    torch.manual_seed(seed)
    vocab, pad = (VOCAB, PAD) if tokenizer is None else (len(tokenizer), tokenizer.pad_token_id)
    if architecture == "gpt2":
        config = GPT2Config(
            vocab_size=vocab, n_positions=max_length, n_embd=width, n_layer=layers, n_head=heads,
            bos_token_id=None, eos_token_id=None, pad_token_id=pad, activation_function=activation,
            resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
        )  # fmt: skip
        return TextBackbone(GPT2LMHeadModel(config), "causal", tokenizer)
    config = BertConfig(
        vocab_size=vocab, hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=4 * width, max_position_embeddings=max_length, pad_token_id=pad,
        type_vocab_size=1, hidden_act=activation, hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )  # fmt: skip
    return TextBackbone(BertForMaskedLM(config), "masked", tokenizer)


def hub_kind(config: Any) -> str:
    """``causal`` or ``masked``: the LM head a checkpoint's config names (``architectures``)."""
    for head in config.architectures or ():
        if head.endswith("ForMaskedLM"):
            return "masked"
        if head.endswith(("LMHeadModel", "ForCausalLM")):
            return "causal"
    raise ValueError(
        f"names no causal or masked LM head (its config's architectures: {config.architectures}); "
        "a GPT-2-, Llama- or BERT-style checkpoint with its LM head is needed"
    )


def located(name: str) -> str | None:
    """What ``from_pretrained`` reads: a hub id as it is, a path expanded (None: not there)."""
    path = Path(name).expanduser()
    if not (path.is_absolute() or name.startswith((".", "~"))):
        return name
    return str(path.resolve()) if path.is_dir() else None


@functools.lru_cache(maxsize=8)
def hub_parts(name: str) -> tuple[Any, Any]:
    """A checkpoint's config and fast tokenizer, checked to belong together; loaded once.

    Raises ValueError with one line (the caller names the key) where either does not load (no
    such directory, no network for a hub name), the tokenizer is not a fast one (bits per byte
    need its character offsets), it has more tokens than the model has embeddings (a tokenizer
    from another checkpoint), or a masked LM's tokenizer has no mask token.
    """
    from huggingface_hub.utils import logging as hub_logging
    from transformers import AutoConfig, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hub_logging.set_verbosity_error()  # no network: one line below, not a warning per retry
    where = located(name)
    if where is None:  # a path that is not there: say so, not "bad repo id"
        raise ValueError("is not a directory (a hub id such as gpt2, or a save_pretrained one)")
    try:
        config = AutoConfig.from_pretrained(where)
        tokenizer = AutoTokenizer.from_pretrained(where)
    except (OSError, ValueError) as err:  # transformers' "not found" and "no network" errors
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"does not load as a transformers checkpoint: {first}") from None
    kind = hub_kind(config)
    if not tokenizer.is_fast:
        raise ValueError("has no fast tokenizer (bits per byte count bytes by its offsets)")
    if len(tokenizer) > config.vocab_size:
        raise ValueError(
            f"has a tokenizer of {len(tokenizer):,} tokens for {config.vocab_size:,} embeddings: "
            "not this model's tokenizer"
        )
    if kind == "masked" and tokenizer.mask_token_id is None:
        raise ValueError("is a masked LM whose tokenizer has no mask token")
    if tokenizer.pad_token_id is None:  # GPT-2 has none: padding is masked out anyway
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        if tokenizer.pad_token_id is None:
            raise ValueError("has a tokenizer with no pad, end-of-text or unknown token")
    tokenizer.padding_side = "right"
    return config, tokenizer


def text_backbone(
    name: str, text: Mapping[str, Any], seed: int, weights: bool = False, tokenizer: Any = None
) -> TextBackbone:
    """``model``'s language model: built from ``model.text``, or the checkpoint ``model.name``.

    ``weights`` (published weights, a checkpoint only) loads the checkpoint's own weights;
    ``tokenizer`` is a built model's BPE (``model.text.bpe_vocab``), None for bytes.
    """
    if text["architecture"] == HUB:
        return load_text_backbone(name, seed, weights)
    return build_text_backbone(
        text["architecture"], text["width"], text["layers"], text["heads"], text["max_length"],
        seed, activation=text["activation"], dropout=text["dropout"], tokenizer=tokenizer,
    )  # fmt: skip


def lm_kind(name: str, architecture: str) -> str:
    """``causal`` or ``masked``: a built architecture's, or the checkpoint ``name``'s head."""
    return hub_kind(hub_parts(name)[0]) if architecture == HUB else ARCHITECTURES[architecture]


def load_text_backbone(name: str, seed: int, weights: bool) -> TextBackbone:
    """A checkpoint's architecture with its tokenizer: its own ``weights``, or random ones.

    Random weights depend only on ``seed`` (scratch on a checkpoint's architecture); weights
    load in float32 whatever dtype they were saved in, as every other backbone trains.
    """
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a "Loading weights" bar in every run's log otherwise
    config, tokenizer = hub_parts(name)
    kind = hub_kind(config)
    auto = AutoModelForCausalLM if kind == "causal" else AutoModelForMaskedLM
    if weights:
        lm = auto.from_pretrained(located(name), dtype=torch.float32)
    else:
        torch.manual_seed(seed)
        lm = auto.from_config(config, dtype=torch.float32)
    return TextBackbone(lm, kind, tokenizer)


@torch.no_grad()
def features_and_bits(
    backbone: TextBackbone, ids: torch.Tensor, batch: int = EVAL_CHUNK
) -> tuple[torch.Tensor, float]:
    """A causal LM's pooled features and bits per byte of ``ids`` from one pass over each chunk.

    GPT-2's LM head reads the same last hidden states the features pool, so the source's test
    passages, which the forgetting probe and the source bits per byte both score, go through
    the model once: the same numbers as ``forward`` and :func:`bits_per_byte`, one forward
    fewer. (A masked LM scores masked inputs, so it has no shared pass.)
    """
    if backbone.kind != "causal":
        raise ValueError(f"features_and_bits needs a causal LM, not a {backbone.kind} one")
    was_training = backbone.training
    backbone.eval()
    features, total, count = [], 0.0, 0
    head = backbone.lm.get_output_embeddings()
    for start in range(0, len(ids), batch):
        tokens = backbone.tokens(ids[start : start + batch])
        hidden = backbone._hidden(tokens)
        features.append(_pooled(hidden, tokens.keep))
        logits = head(hidden)[:, :-1]
        if backbone.tokenizer is None:
            logits = logits[..., :BYTES]
        chosen = tokens.text[:, 1:]
        nll = F.cross_entropy(logits[chosen], tokens.ids[:, 1:][chosen], reduction="sum")
        total, count = total + float(nll), count + int(tokens.charge[:, 1:][chosen].sum())
    backbone.train(was_training)
    return torch.cat(features).float(), total / (max(count, 1) * math.log(2))


def masked(
    ids: torch.Tensor,
    share: float,
    generator: torch.Generator,
    maskable: torch.Tensor | None = None,
    mask_id: int = MASK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs with ``share`` of each passage's tokens replaced by ``mask_id``, and the chosen ones.

    Exactly round(share x tokens) of the ``maskable`` positions (the non-PAD bytes unless given)
    per passage, at least one, are masked, drawn without replacement, so the declared share is
    the share masked (BERT's 80/10/10 split is not used: every chosen position shows the mask).
    """
    keep = ids != PAD if maskable is None else maskable
    scores = torch.rand(ids.shape, generator=generator, device=ids.device)
    scores = scores.masked_fill(~keep, 2.0)  # padding is never chosen
    k = (keep.sum(1).float() * share).round().clamp_min(1).long()
    rank = scores.argsort(1).argsort(1)
    chosen = (rank < k.unsqueeze(1)) & keep
    return ids.masked_fill(chosen, mask_id), chosen


def lm_nll(
    backbone: TextBackbone, ids: torch.Tensor, share: float, generator: torch.Generator
) -> tuple[torch.Tensor, int]:
    """Summed negative log-likelihood (nats) of the predicted tokens, and the bytes they cover.

    Causal: every token after a passage's first, given the tokens before it. Masked: the tokens
    at the masked positions (:func:`masked`), given the rest. A byte model's tokens are bytes;
    a checkpoint's cover the bytes :class:`Tokens` counts, so the ratio is nats per byte.
    """
    tokens = backbone.tokens(ids)
    if backbone.kind == "causal":
        logits = backbone.token_logits(tokens.ids, tokens.keep)[:, :-1]
        target, chosen, covered = tokens.ids[:, 1:], tokens.text[:, 1:], tokens.charge[:, 1:]
    else:
        inputs, chosen = masked(tokens.ids, share, generator, tokens.text, backbone.mask_id)
        logits = backbone.token_logits(inputs, tokens.keep)
        target, covered = tokens.ids, tokens.charge
    nll = F.cross_entropy(logits[chosen], target[chosen], reduction="sum")
    return nll, int(covered[chosen].sum())


def lm_loss(
    backbone: TextBackbone, ids: torch.Tensor, share: float, generator: torch.Generator
) -> torch.Tensor:
    """The pretraining loss: NLL per byte the predicted tokens cover (nats)."""
    nll, count = lm_nll(backbone, ids, share, generator)
    return nll / max(count, 1)


@torch.no_grad()
def bits_per_byte(
    backbone: TextBackbone, ids: torch.Tensor, share: float, seed: int = 0, batch: int = EVAL_CHUNK
) -> float:
    """Bits per byte of held-out passages: summed NLL / (bytes the predicted tokens cover x ln 2).

    With bytes as tokens this is the LM's loss in bits; with a checkpoint's tokenizer the same
    bytes are counted, so the number does not depend on the tokenizer. For a masked LM it is the
    bits per masked byte at a fixed mask (``seed``), so before and after are scored on the same
    positions.
    """
    was_training = backbone.training
    backbone.eval()
    generator = torch.Generator(device=ids.device).manual_seed(seed)
    total, count = 0.0, 0
    for start in range(0, len(ids), batch):
        nll, n = lm_nll(backbone, ids[start : start + batch], share, generator)
        total, count = total + float(nll), count + n
    backbone.train(was_training)
    return total / (max(count, 1) * math.log(2))
