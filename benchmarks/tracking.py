"""When forgetting happens: source and target accuracy every ``train.track_every`` steps of a fit.

A run with ``train.track_every: N`` scores its target fit every N optimiser steps (and at steps 0
and the last): the target test accuracy of the module as it is, and the source accuracy of the
forgetting probe (``source/acc_after``'s: the same protocol and l2) on its backbone, and of the
supervised source head where the pretraining kept one. The rows go to ``<job>/train/track.csv``;
the report draws them against the step. Scoring runs in eval mode and touches neither the
weights, the optimiser nor any random stream the fit draws from, so the fit's own numbers are
the untracked run's; each row costs a source probe fit, so it is meant for a chosen run, not a
sweep.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L  # noqa: N812
from lightning.pytorch.callbacks import Callback

from benchmarks.inputs import RunContext
from benchmarks.probing import head_accuracy, probe_accuracy

if TYPE_CHECKING:
    from benchmarks.pretraining import Pretrained

TRACK_FILE = "track.csv"
Measure = Callable[[L.LightningModule], dict[str, float]]


class Track(Callback):
    """Every ``every`` optimiser steps, and at the first and the last, a row of ``measure``."""

    def __init__(self, every: int, measure: Measure) -> None:
        self.every, self.measure = every, measure
        self.rows: list[dict[str, float]] = []

    def _row(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        was_training = module.training
        self.rows.append({"step": trainer.global_step} | self.measure(module))
        module.train(was_training)  # predict_logits leaves eval mode

    def state_dict(self) -> dict[str, Any]:
        """The rows so far, kept in a ``trainer.checkpoint_every`` checkpoint."""
        return {"rows": list(self.rows)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """A resumed fit continues the rows its checkpoint holds."""
        self.rows = list(state_dict["rows"])

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The row of step 0: the fit's start (a resumed fit has it from its checkpoint)."""
        if not self.rows:
            self._row(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        """A row every ``every`` steps and at the last step."""
        step = trainer.global_step
        if step % self.every == 0 or step == trainer.max_steps:
            self._row(trainer, pl_module)


def tracker(ctx: RunContext, pre: Pretrained | None) -> Track | None:
    """The run's tracking callback, or None (``train.track_every: null``).

    ``pre``: the pretraining the fit starts from (its source probe's l2 and head); None for a
    backbone with no source stage (scratch), which is scored on the target alone.
    """
    every = ctx.cfg.train.track_every
    if every is None:
        return None
    x_test, y_test = ctx.target.x_test.to(ctx.device), ctx.target.y_test

    def measure(module: L.LightningModule) -> dict[str, float]:
        pred = module.predict_logits(x_test).argmax(1).cpu()
        row = {"target_acc": float((pred == y_test).float().mean())}
        if pre is not None:
            row["source_acc"] = probe_accuracy(ctx, module.backbone, ctx.source, pre.probe_l2)[0]
            if pre.source_head is not None:
                row["source_head_acc"] = head_accuracy(ctx, module.backbone, pre.source_head.head)
        return row

    return Track(int(every), measure)


def write(track: Track, folder: Path | None) -> str | None:
    """Write the rows into ``folder/track.csv``; returns the path the record names, or None."""
    if folder is None or not track.rows:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / TRACK_FILE).open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(track.rows[0]))
        writer.writeheader()
        writer.writerows(track.rows)
    return f"{folder.name}/{TRACK_FILE}"
