"""The three kinds of classifier fit a regime makes, each as a :data:`benchmarks.selecting.Fit`.

"Fit on these labelled train indices, predict these rows": the linear probe on fixed features,
the gradient-trained classifier on a backbone, and a scikit-learn baseline on pixels. The run's
own fit and every ``cv`` fold's refit go through the same function, so cross-validation scores
exactly the model the regime reports, on a share of its budget.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from omegaconf import OmegaConf
from threadpoolctl import threadpool_limits

from benchmarks.inputs import RunContext
from benchmarks.probing import fit_labelled_probe
from benchmarks.selecting import Fit, Fitted
from benchmarks.tracking import Track
from benchmarks.training import train_classifier
from lightning_modules import baselines
from lightning_modules.penalties import AnchorPenalty
from lightning_modules.streaming import Images, materialize, take


def _phase(fold: int | None) -> str:
    return "train" if fold is None else "select"  # a CV fold's fit is selection's cost


def probe(ctx: RunContext, train_x: torch.Tensor, test_x: torch.Tensor) -> Fit:
    """The linear probe on labelled rows of ``train_x`` (features or pixels); test: ``test_x``."""

    def fit(labelled: torch.Tensor, fold: int | None) -> Fitted:
        with ctx.phase(_phase(fold)):
            fitted = fit_labelled_probe(ctx, train_x, labelled)

        def predict(rows: torch.Tensor | None) -> torch.Tensor:
            x = test_x if rows is None else train_x[rows.to(train_x.device)]
            return fitted.probe.logits(x)

        return Fitted(predict, fitted)

    return fit


def classifier(
    ctx: RunContext,
    backbone: torch.nn.Module,
    penalty: AnchorPenalty | None = None,
    keep_start: bool = False,
    track: Track | None = None,
) -> Fit:
    """Backbone + head trained on the labelled examples (``train`` node).

    The run's own fit trains ``backbone`` in place (forgetting reads it afterwards); a ``cv``
    fold's fit starts from a copy of it as it was before any fit. ``penalty`` applies to every
    fit (``training.train_classifier``), ``keep_start`` and ``track`` to the run's own fit only.
    """
    start = copy.deepcopy(backbone) if ctx.cfg.selection.protocol == "cv" else None

    def fit(labelled: torch.Tensor, fold: int | None) -> Fitted:
        if fold is None:
            trained = train_classifier(
                ctx, backbone, penalty=penalty, keep_start=keep_start, track=track
            )
        else:
            bb = copy.deepcopy(start)
            trained = train_classifier(ctx, bb, labelled, fold, penalty)

        def predict(rows: torch.Tensor | None) -> torch.Tensor:
            t = ctx.target
            images = t.x_test if rows is None else take(t.x_train, rows)
            return trained.module.predict_logits(images.to(ctx.device))

        return Fitted(predict, trained)

    return fit


def _flat(images: Images) -> np.ndarray:
    return materialize(images).flatten(1).double().numpy()


def baseline(ctx: RunContext, name: str) -> Fit:
    """A scikit-learn baseline (``svm``, ``knn``, ``label_spreading``) on the flattened pixels.

    Its own hyperparameters are chosen inside the labelled examples it is given
    (``baselines.select``); label spreading also sees every other train image without labels.
    """
    cfg = OmegaConf.to_container(ctx.cfg[name], resolve=True)
    x_train, y_train = _flat(ctx.target.x_train), ctx.target.y_train.numpy()
    extras = None
    if name == "label_spreading" and ctx.target.x_unlabeled is not None:
        extras = _flat(ctx.target.x_unlabeled)
    # scikit-learn's OpenMP/BLAS pools default to every core: on 2 busy cores that made label
    # spreading's CV 8x slower than one thread (5 fits + 20 k-NN fits: 5.4 s against 0.67 s).
    threads = ctx.cfg.threads

    def fit(labelled: torch.Tensor, fold: int | None) -> Fitted:
        idx = labelled.numpy()
        x, y = x_train[idx], y_train[idx]
        unlabelled = None
        if name == "label_spreading":
            parts = [np.delete(x_train, idx, axis=0), *([extras] if extras is not None else [])]
            unlabelled = np.concatenate(parts)
        with ctx.phase(_phase(fold)), threadpool_limits(limits=threads):
            chosen = baselines.select(name, cfg, x, y, unlabelled, seed=ctx.cfg.train_seed)
            model = baselines.fit(name, cfg, chosen.params, x, y, unlabelled)

        def predict(rows: torch.Tensor | None) -> torch.Tensor:
            with threadpool_limits(limits=threads):
                xs = _flat(ctx.target.x_test) if rows is None else x_train[rows.numpy()]
                return torch.from_numpy(baselines.scores(model, xs))

        return Fitted(predict, chosen)

    return fit
