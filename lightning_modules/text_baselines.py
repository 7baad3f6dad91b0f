"""TF-IDF features of byte passages: the classical floor of a text study (scikit-learn)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from lightning_modules.tokens import decode


def text_features(
    train_ids: torch.Tensor, test_ids: torch.Tensor, ngram_max: int, max_features: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense float32 TF-IDF rows (L2-normalised) of character n-grams 1..``ngram_max``.

    Fitted on every train passage (no labels are read); a byte tokenizer's passages decode to
    the same characters, so the n-grams are of the text the models see.
    """
    vectorizer = TfidfVectorizer(
        analyzer="char", ngram_range=(1, ngram_max), max_features=max_features,
        lowercase=False, sublinear_tf=True, dtype=np.float32,
    )  # fmt: skip
    train = vectorizer.fit_transform(decode(train_ids))
    test = vectorizer.transform(decode(test_ids))
    return torch.from_numpy(train.toarray()), torch.from_numpy(test.toarray())
