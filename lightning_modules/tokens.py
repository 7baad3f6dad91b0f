"""Byte-level tokenisation: one token per UTF-8 byte, plus a padding and a mask token.

Bytes need no vocabulary file, no download and no training, and make bits per byte the
model's own loss in bits (one token is one byte), so language-model numbers compare across
corpora and models without a tokenizer in between.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

BYTES = 256  # token ids 0..255 are the byte values
PAD = 256  # fills a passage shorter than its sequence; never a prediction target
MASK = 257  # a masked-LM input position whose byte is to be predicted
VOCAB = 258


def encode(texts: Sequence[str], length: int) -> torch.Tensor:
    """(N, ``length``) int64 byte ids, truncated to ``length`` bytes and padded with PAD."""
    out = torch.full((len(texts), length), PAD, dtype=torch.long)
    for i, text in enumerate(texts):
        data = text.encode("utf-8")[:length]
        if data:
            out[i, : len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
    return out


def decode(ids: torch.Tensor, errors: str = "replace") -> list[str]:
    """The texts of (N, L) byte ids without PAD and MASK.

    A cut character shows as U+FFFD (``errors="replace"``), or is dropped (``"ignore"``).
    """
    rows = ids.cpu().tolist()  # one copy, not a device sync per element
    return [bytes(t for t in row if t < BYTES).decode("utf-8", errors=errors) for row in rows]


def n_bytes(ids: torch.Tensor) -> torch.Tensor:
    """Bytes per row (positions that are not PAD)."""
    return (ids != PAD).sum(1)
