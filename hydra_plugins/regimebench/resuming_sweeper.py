"""The sweeper plugin; its logic lives in :mod:`benchmarks.sweeper`."""

from benchmarks.sweeper import ResumingSweeper as _Base


class ResumingSweeper(_Base):
    """Hydra's basic sweeper minus finished jobs (see ``benchmarks/sweeper.py``)."""
