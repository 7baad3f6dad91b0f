"""Entry points: one run (``regimebench``), the pretraining cache, run records."""
