"""Batched, on-device augmentations for small in-memory images.

One ``affine_grid``/``grid_sample`` call warps a whole batch (rotation, scale, translation), so
augmentation costs one kernel per batch instead of a Python loop per image. No flips: they change
the meaning of digits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812


def _uniform(n: int, scale: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=gen, device=device) * 2 - 1) * scale


def random_affine(
    x: torch.Tensor,
    gen: torch.Generator,
    rotate: float = 0.25,  # radians (about 14 degrees)
    scale: float = 0.15,  # relative zoom, +-15%
    translate: float = 0.15,  # fraction of half the image side
) -> torch.Tensor:
    """Random rotation, zoom and shift, one draw per image, border pixels repeated."""
    n, dev = x.shape[0], x.device
    angle = _uniform(n, rotate, gen, dev)
    zoom = 1 + _uniform(n, scale, gen, dev)
    tx, ty = _uniform(n, translate, gen, dev), _uniform(n, translate, gen, dev)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1).to(
        x.dtype
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="border")


def ssl_view(x: torch.Tensor, gen: torch.Generator, strength: float = 2.0) -> torch.Tensor:
    """A SimCLR view: a stronger affine warp, contrast jitter and pixel noise."""
    out = random_affine(x, gen, 0.25 * strength, 0.15 * strength, 0.15 * strength)
    contrast = 1 + 0.4 * (torch.rand(x.shape[0], 1, 1, 1, generator=gen, device=x.device) - 0.5)
    noise = torch.randn(out.shape, generator=gen, device=x.device, dtype=x.dtype)
    return out * contrast + 0.1 * noise


class AugmentGenerator:
    """LightningModule mixin: one seeded augmentation generator that survives a checkpoint.

    The generator is created on the first batch's device (so a GPU fit draws on the GPU) from
    ``hparams.seed``. Its state goes into every checkpoint and comes back on resume, so a stage
    resumed at step k draws the same views from step k on as one that never stopped.
    """

    _gen: torch.Generator | None = None
    _gen_state: torch.Tensor | None = None  # loaded from a checkpoint, applied on first use

    def generator(self, device: torch.device) -> torch.Generator:
        """The augmentation generator, created on ``device`` at the first call."""
        if self._gen is None:
            self._gen = torch.Generator(device=device).manual_seed(self.hparams.seed)  # type: ignore[attr-defined]
            if self._gen_state is not None:
                self._gen.set_state(self._gen_state)
                self._gen_state = None
        return self._gen

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Store the generator's state with the weights."""
        if self._gen is not None:
            checkpoint["augment_generator"] = self._gen.get_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Resume the generator where the checkpoint left it (fresh if it had not drawn yet)."""
        self._gen, self._gen_state = None, checkpoint.get("augment_generator")
