"""Entry points: one run (``regimebench``), sweeps, cache keys; records and cache are in common/.

OpenMP reads its wait policy once, when torch loads it, so it is set here, before any entry point
imports torch (a value in the environment wins). With the runtime's default, the second thread of
a ``threads=2`` fit spins and then sleeps between the many small kernels of a tiny model, and
waking it costs more than the kernel: ``PASSIVE`` (sleep at once) ran the default target fit
1.3-1.4x faster on the 2-core machine (README, "Speed"); results do not change, only scheduling.
``ACTIVE`` (spin always) was faster still alone but steals the cores from other processes.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
