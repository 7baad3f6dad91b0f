"""The ``hydra/launcher=parallel`` plugin; its logic lives in :mod:`benchmarks.launcher`."""

from benchmarks.launcher import ParallelLauncher as _Base


class ParallelLauncher(_Base):
    """Hydra's joblib launcher with warm workers and configs composed once."""
