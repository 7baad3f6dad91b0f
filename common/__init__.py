"""What every layer may import: run records, the metric registry and the disk cache.

It imports nothing of this project (``tests/test_layering.py`` checks), so ``lightning_modules/``
(the lowest layer), ``reports/`` and ``benchmarks/`` can all depend on it without a cycle.
"""
