"""Suite-wide settings.

One OpenMP thread per process: torch, OpenBLAS and joblib's workers otherwise oversubscribe the two
cores of the CI machine, and torch's spinning threads slow a training run down by an order of magnitude
whenever another process holds a core.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
