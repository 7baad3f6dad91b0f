"""FractalDB: formula-driven pretraining images, generated offline from iterated function systems.

Kataoka et al. 2020 (METRICS.md §4.1), at CPU scale:

- A category is an IFS of N affine maps (N in 2..7, every coefficient ~ U(-1, 1)), each map
  chosen with probability proportional to |det|.
- A candidate category is kept only if its *filling rate* (the fraction of canvas pixels its
  points cover) is at least ``threshold``: degenerate systems that collapse to a point or a line
  are rejected. Candidates are drawn from one seeded generator until ``categories`` are found.
- Instances of a category: one of the 25 parameter weightings (identity, or one coefficient of
  every map scaled by 0.2, 0.6, 1.4 or 1.8) times one of 4 flips, so up to 100 per category.
- Rendering is the chaos game from (0, 0), points min-max scaled into the canvas with a margin,
  one pixel per point (the paper's 3x3 random "patch" rendering is left out at this size).

Everything follows from the seed, so a dataset is reproducible and cached on disk by its config.
"""

from __future__ import annotations

import numpy as np

FACTORS = (0.2, 0.6, 1.4, 1.8)
MAX_MAPS = 7


def random_system(rng: np.random.Generator) -> np.ndarray:
    """One IFS: (N, 6) coefficients a, b, c, d, e, f of N affine maps."""
    n = int(rng.integers(2, MAX_MAPS + 1))
    return rng.uniform(-1.0, 1.0, size=(n, 6))


def _probabilities(system: np.ndarray) -> np.ndarray:
    det = np.abs(system[:, 0] * system[:, 3] - system[:, 1] * system[:, 2])
    total = det.sum()
    return det / total if total > 0 else np.full(len(system), 1 / len(system))


def chaos_game(systems: list[np.ndarray], points: int, seed: int) -> np.ndarray:
    """Points of every system at once: (len(systems), points, 2), NaN where a chain diverged."""
    rng = np.random.default_rng(seed)
    k = len(systems)
    coef = np.zeros((k, MAX_MAPS, 6))
    cum = np.ones((k, MAX_MAPS))
    for i, system in enumerate(systems):
        coef[i, : len(system)] = system
        cum[i, : len(system)] = np.cumsum(_probabilities(system))
    xy = np.zeros((k, 2))
    out = np.empty((k, points, 2))
    rows = np.arange(k)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(points):
            pick = (rng.random((k, 1)) > cum).sum(axis=1).clip(0, MAX_MAPS - 1)
            a, b, c, d, e, f = coef[rows, pick].T
            xy = np.stack([a * xy[:, 0] + b * xy[:, 1] + e, c * xy[:, 0] + d * xy[:, 1] + f], 1)
            out[:, t] = xy
    return out


def render(points: np.ndarray, size: int, pad: int = 1) -> np.ndarray:
    """Rasterise (points, 2) into a size x size image in {0, 1}; an empty canvas if degenerate."""
    # A weighted system can be expansive: its chain runs off to huge values or inf/NaN. Those
    # points carry no shape and would overflow the scaling, so they are dropped.
    pts = points[(np.abs(points) < 1e6).all(axis=1)]
    image = np.zeros((size, size), np.float32)
    if len(pts) == 0:
        return image
    lo, span = pts.min(0), np.ptp(pts, 0)
    span[span == 0] = 1.0
    scaled = (pts - lo) / span * (size - 1 - 2 * pad) + pad
    idx = np.clip(np.round(scaled).astype(int), 0, size - 1)
    image[idx[:, 1], idx[:, 0]] = 1.0
    return image


def filling_rate(image: np.ndarray) -> float:
    """The fraction of non-zero pixels: the filter's statistic."""
    return float((image > 0).mean())


def find_categories(
    categories: int, threshold: float, size: int, points: int, seed: int, max_tries: int = 100_000
) -> tuple[list[np.ndarray], int]:
    """Draw systems until ``categories`` pass the filling-rate filter; also returns the tries."""
    rng = np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    tries = 0
    while len(kept) < categories:
        batch = [random_system(rng) for _ in range(64)]
        tries += len(batch)
        pts = chaos_game(batch, points, seed + tries)
        for system, p in zip(batch, pts, strict=True):
            if len(kept) < categories and filling_rate(render(p, size)) >= threshold:
                kept.append(system)
        if tries >= max_tries:
            raise ValueError(
                f"only {len(kept)} of {categories} fractal categories reach filling rate "
                f"{threshold} in {tries} systems; lower data.fractal.threshold"
            )
    return kept, tries


def variants(system: np.ndarray, instances: int) -> list[tuple[np.ndarray, int]]:
    """The first ``instances`` (weighted system, flip) pairs: 25 weightings x 4 flips."""
    weighted = [system]
    for param in range(6):
        for factor in FACTORS:
            w = system.copy()
            w[:, param] *= factor
            weighted.append(w)
    return [(w, flip) for flip in range(4) for w in weighted][:instances]


def generate(
    categories: int, instances: int, size: int, points: int, threshold: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Images (categories * instances, size, size) in {0, 1} and their category labels."""
    systems, _ = find_categories(categories, threshold, size, points, seed)
    jobs = [(c, w, flip) for c, s in enumerate(systems) for w, flip in variants(s, instances)]
    pts = chaos_game([w for _, w, _ in jobs], points, seed + 1)
    images = np.stack([render(p, size) for p in pts])
    for i, (_, _, flip) in enumerate(jobs):
        if flip & 1:
            images[i] = images[i, ::-1]
        if flip & 2:
            images[i] = images[i, :, ::-1]
    return images, np.array([c for c, _, _ in jobs])
