"""Text backbones: Hugging Face ``transformers`` language models behind the suite's backbone API.

The regimes treat a backbone as "token ids in, one feature vector out" (``num_features`` wide),
exactly as they treat a timm image model, so scratch, fine-tuning, LP-FT and the linear probe run
unchanged on text. A :class:`TextBackbone` pools the last hidden states over the non-padding
positions for that, and keeps its language-model head (tied to the token embeddings, as GPT-2
and BERT tie them) for the pretraining objectives and for bits per byte: the head travels with
the backbone through every stage, so a fine-tuned backbone's source bits per byte measure how
much of its language model it lost.

Architectures are built from a config (``model.text``: a tiny GPT-2 causal LM or a tiny BERT
masked LM, sized to train in minutes on two CPU cores).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lightning_modules.tokens import BYTES, MASK, PAD, VOCAB

ARCHITECTURES = {"gpt2": "causal", "bert": "masked"}  # architecture -> its LM objective
# Passages per forward pass when scoring (features, logits, bits per byte): on one CPU thread the
# tiny GPT-2 took 0.37 s for 1,024 passages of 64 bytes in chunks of 16-128 and 1.0 s in one
# chunk of 1,024 (its activations then leave the cache).
EVAL_CHUNK = 64


class TextBackbone(nn.Module):
    """A language model whose ``forward`` is the mean of its last hidden states over the text.

    Attributes:
        lm: the ``transformers`` model with its LM head (``GPT2LMHeadModel``, ``BertForMaskedLM``).
        kind: ``causal`` or ``masked``: which objective and which bits per byte it has.
        num_features: the hidden width (what a classifier head reads).
        max_length: the positions it has.
        eval_chunk: passages per forward pass when scoring (``EVAL_CHUNK``), which the probe's
            feature extraction and the classifier's predictions read.
    """

    eval_chunk = EVAL_CHUNK

    def __init__(self, lm: nn.Module, kind: str) -> None:
        super().__init__()
        self.lm, self.kind = lm, kind
        self.num_features = int(lm.config.hidden_size)
        self.max_length = int(lm.config.max_position_embeddings)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, L) byte ids -> (N, D) features: last hidden states averaged over non-PAD bytes."""
        return _pooled(self._hidden(ids), ids != PAD)

    def _hidden(self, ids: torch.Tensor) -> torch.Tensor:
        """The last hidden states: what the pooled features and (causal) the LM head read."""
        keep = (ids != PAD).long()
        return self.lm.base_model(input_ids=ids, attention_mask=keep).last_hidden_state

    def byte_logits(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, L, 256) next-byte (causal) or masked-byte (masked) logits over the byte values.

        Special tokens are never a target, so the scores are restricted to the 256 bytes: a
        model that has learnt nothing then scores exactly 8 bits per byte.
        """
        keep = (ids != PAD).long()
        return self.lm(input_ids=ids, attention_mask=keep).logits[..., :BYTES]


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
) -> TextBackbone:
    """A randomly initialised tiny LM over the byte vocabulary whose weights depend on ``seed``.

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
    if architecture == "gpt2":
        config = GPT2Config(
            vocab_size=VOCAB, n_positions=max_length, n_embd=width, n_layer=layers, n_head=heads,
            bos_token_id=None, eos_token_id=None, pad_token_id=PAD, activation_function=activation,
            resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
        )  # fmt: skip
        return TextBackbone(GPT2LMHeadModel(config), "causal")
    config = BertConfig(
        vocab_size=VOCAB, hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=4 * width, max_position_embeddings=max_length, pad_token_id=PAD,
        type_vocab_size=1, hidden_act=activation, hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )  # fmt: skip
    return TextBackbone(BertForMaskedLM(config), "masked")


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
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        hidden = backbone._hidden(chunk)
        features.append(_pooled(hidden, chunk != PAD))
        logits = backbone.lm.lm_head(hidden)[:, :-1, :BYTES]
        target = chunk[:, 1:]
        chosen = target != PAD
        total += float(F.cross_entropy(logits[chosen], target[chosen], reduction="sum"))
        count += int(chosen.sum())
    backbone.train(was_training)
    return torch.cat(features).float(), total / (max(count, 1) * math.log(2))


def masked(
    ids: torch.Tensor, share: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs with ``share`` of each passage's bytes replaced by MASK, and the chosen positions.

    Exactly round(share x bytes) positions per passage (at least one) are masked, drawn without
    replacement, so the declared share is the share masked (BERT's 80/10/10 split is not used:
    every chosen position shows MASK).
    """
    keep = ids != PAD
    scores = torch.rand(ids.shape, generator=generator, device=ids.device)
    scores = scores.masked_fill(~keep, 2.0)  # padding is never chosen
    k = (keep.sum(1).float() * share).round().clamp_min(1).long()
    rank = scores.argsort(1).argsort(1)
    chosen = (rank < k.unsqueeze(1)) & keep
    return ids.masked_fill(chosen, MASK), chosen


def lm_nll(
    backbone: TextBackbone, ids: torch.Tensor, share: float, generator: torch.Generator
) -> tuple[torch.Tensor, int]:
    """Summed negative log-likelihood (nats) of the predicted bytes, and how many there were.

    Causal: every byte after a passage's first, given the bytes before it. Masked: the bytes at
    the masked positions (:func:`masked`), given the rest.
    """
    if backbone.kind == "causal":
        logits = backbone.byte_logits(ids)[:, :-1]
        target = ids[:, 1:]
        chosen = target != PAD
    else:
        inputs, chosen = masked(ids, share, generator)
        logits, target = backbone.byte_logits(inputs), ids
    nll = F.cross_entropy(logits[chosen], target[chosen], reduction="sum")
    return nll, int(chosen.sum())


def lm_loss(
    backbone: TextBackbone, ids: torch.Tensor, share: float, generator: torch.Generator
) -> torch.Tensor:
    """The pretraining loss: mean NLL per predicted byte (nats)."""
    nll, count = lm_nll(backbone, ids, share, generator)
    return nll / max(count, 1)


@torch.no_grad()
def bits_per_byte(
    backbone: TextBackbone, ids: torch.Tensor, share: float, seed: int = 0, batch: int = EVAL_CHUNK
) -> float:
    """Bits per byte of held-out passages: summed NLL / (predicted bytes x ln 2).

    The byte tokenizer makes every token one byte, so this is the LM's loss in bits and does not
    depend on a tokenizer. For a masked LM it is the bits per masked byte at a fixed mask
    (``seed``), so before and after are scored on the same positions.
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
