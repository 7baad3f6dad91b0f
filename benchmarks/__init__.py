"""Entry points: one run (``regimebench``), sweeps, cache keys; records and cache are in common/."""
