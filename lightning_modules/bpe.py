"""A byte-level BPE trained with ``tokenizers`` on the source corpus, cached by content hash.

The built language models read bytes by default (``tokens.py``): no vocabulary to train and
bits per byte as the model's own loss. ``model.text.bpe_vocab`` trades that for GPT-2's kind of
tokenizer, trained here on the source's train passages so nothing is downloaded, which makes
sequences shorter and shows how much of a regime comparison depends on the tokenizer. The
target is tokenised with the source's merges, as a published checkpoint's tokenizer would be.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PAD_TOKEN, MASK_TOKEN = "[PAD]", "[MASK]"  # ids 0 and 1: never merged, never a text token


def bpe_tokenizer(texts: Sequence[str], vocab_size: int, cache_dir: str) -> Any:
    """A fast tokenizer of ``vocab_size`` tokens (the 256 bytes, PAD, MASK and merges).

    Trained once per corpus and size: the file is keyed by a hash of the texts, the size and
    the ``tokenizers`` version, and written to a temporary name first, so a crash mid-write
    leaves no half-written tokenizer for the next run to load.
    """
    import tokenizers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    content = json.dumps([vocab_size, tokenizers.__version__, *texts]).encode()
    path = Path(cache_dir) / "tokenizers" / f"bpe-{hashlib.sha256(content).hexdigest()[:20]}.json"
    if not path.exists():
        bpe = Tokenizer(models.BPE())
        bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        bpe.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[PAD_TOKEN, MASK_TOKEN],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        bpe.train_from_iterator(texts, trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.part")
        bpe.save(str(partial))
        partial.replace(path)
    return PreTrainedTokenizerFast(
        tokenizer_file=str(path), pad_token=PAD_TOKEN, mask_token=MASK_TOKEN
    )
