"""Suite-wide settings.

One OpenMP thread per process: torch, OpenBLAS and joblib's workers otherwise oversubscribe the two
cores of the CI machine, and torch's spinning threads slow a training run down by an order of magnitude
whenever another process holds a core. The cache-signing key lives in a temporary folder, never in the
user's ~/.config. Tests that need the real Fashion-MNIST skip without it, and the run ends with one line
that says how many did and how to get the data.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

from mlpentest import datasets  # noqa: E402
from mlpentest.errors import DatasetError  # noqa: E402

FASHION_MISSING = "Fashion-MNIST not installed"
FASHION_INSTALL = "apt-get install dataset-fashion-mnist"


@pytest.fixture(scope="session", autouse=True)
def _private_cache_key(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["MLPENTEST_CACHE_KEY"] = str(tmp_path_factory.mktemp("config") / "cache.key")


@pytest.fixture(scope="session")
def fashion() -> datasets.Dataset:
    """Real Fashion-MNIST (70,000 images), parsed once for the whole run."""
    try:
        return datasets.load("fashion-mnist", download=False)
    except DatasetError as exc:  # pragma: no cover - CI installs dataset-fashion-mnist
        pytest.skip(f"{FASHION_MISSING} ({FASHION_INSTALL}): {exc}")


def _for_want_of_fashion(reason: str) -> bool:
    return "not installed" in reason and "fashion-mnist" in reason.lower()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One closing line when tests skipped for want of Fashion-MNIST: how many, why, and the fix."""
    skipped = terminalreporter.stats.get("skipped", [])
    missing = [r for r in skipped if _for_want_of_fashion(str(getattr(r, "longrepr", "")))]
    if missing:
        terminalreporter.write_line(
            f"{len(missing)} tests skipped because Fashion-MNIST is not installed; to run them: "
            f"sudo {FASHION_INSTALL} (or put its IDX files in $MLPENTEST_DATA/fashion-mnist)",
            yellow=True, bold=True,
        )
