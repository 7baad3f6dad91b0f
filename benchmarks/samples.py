"""A few preprocessed train images per domain, for the report's "what the model saw" strips.

A report on a user's own photos should show that the model saw 16x16 gray thumbnails, if that
is what it saw. The images are the domain's train tensors after class selection, shift,
channel conversion and resize (before training augmentation), one per class first, as one
base64 PNG strip: a few hundred bytes per domain (images above 64 px are shrunk to 64 px for the
strip only), so a record stays small.
"""

from __future__ import annotations

import base64
import io

import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image

from lightning_modules.domains import Domain
from lightning_modules.streaming import materialize, take
from lightning_modules.tokens import decode

N_SAMPLES = 8
MAX_SIDE = 64  # larger images are shrunk for the strip (the record states the size used)


def pick(y: torch.Tensor, n: int = N_SAMPLES) -> torch.Tensor:
    """Indices of up to ``n`` train images: the first of each class, then the next ones."""
    firsts = sorted(int((y == c).nonzero()[0]) for c in torch.unique(y)[:n])
    taken = set(firsts)
    rest = [i for i in range(min(len(y), 2 * n)) if i not in taken][: max(0, n - len(firsts))]
    return torch.tensor(firsts + rest, dtype=torch.long)


def png_strip(images: torch.Tensor) -> str:
    """(N, C, H, W) floats in [0, 1] side by side, 1 px apart, as a base64 PNG."""
    x = images.detach().float().cpu()
    if max(x.shape[-2:]) > MAX_SIDE:
        scale = MAX_SIDE / max(x.shape[-2:])
        x = F.interpolate(x, scale_factor=scale, mode="bilinear", antialias=True)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    n, c, h, w = x.shape
    strip = torch.full((c, h, n * (w + 1) - 1), 255, dtype=torch.uint8)
    for k in range(n):
        strip[:, :, k * (w + 1) : k * (w + 1) + w] = x[k]
    array = strip[0] if c == 1 else strip[:3].permute(1, 2, 0)  # gray (L) or RGB
    buffer = io.BytesIO()
    Image.fromarray(array.contiguous().numpy()).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def domain_samples(dom: Domain, n: int = N_SAMPLES) -> dict:
    """The strip of one domain with what it shows: ``{"name", "png", "n", "shape"}``.

    A text domain's are its first passages as text (``"text"`` instead of ``"png"``).
    """
    idx = pick(dom.y_train, n)
    if dom.is_text:  # passages as the model reads them (cut to the passage length)
        ids = dom.x_train[idx]
        return {"name": dom.name, "text": decode(ids), "n": len(idx), "shape": [int(ids.shape[1])]}
    images = materialize(take(dom.x_train, idx))
    return {
        "name": dom.name,
        "png": png_strip(images),
        "n": len(idx),
        "shape": list(images.shape[1:]),
    }


def record_samples(source: Domain, target: Domain) -> dict:
    """``RunRecord.samples``: the source and target strips; empty if they cannot be drawn."""
    try:
        return {"source": domain_samples(source), "target": domain_samples(target)}
    except (RuntimeError, ValueError, OSError):  # a report nicety never fails a run
        return {}
