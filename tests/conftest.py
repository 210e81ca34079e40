"""Suite-wide settings.

One OpenMP thread per process: torch, OpenBLAS and joblib's workers otherwise oversubscribe the two
cores of the CI machine, and torch's spinning threads slow a training run down by an order of magnitude
whenever another process holds a core.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

from mlpentest import datasets  # noqa: E402
from mlpentest.errors import DatasetError  # noqa: E402


@pytest.fixture(scope="session")
def fashion() -> datasets.Dataset:
    """Real Fashion-MNIST (70,000 images), parsed once for the whole run."""
    try:
        return datasets.load("fashion-mnist", download=False)
    except DatasetError as exc:  # pragma: no cover - CI installs dataset-fashion-mnist
        pytest.skip(f"Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): {exc}")
