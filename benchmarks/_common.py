"""What every benchmark here shares: the aligned text table, the header facts, the thread limit."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import sys
from collections.abc import Sequence
from typing import Any


def cell(value: float | int | None, fmt: str) -> str:
    """``value`` formatted with ``fmt``, or "-" when missing (None or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt)


def aligned(head: Sequence[str], rows: Sequence[Sequence[str]], *, left: set[int]) -> str:
    """Columns padded to their widest cell: those in ``left`` left-aligned, numbers right-aligned.

    A rule of dashes separates the header from the rows; trailing blanks are stripped.
    """
    lines = [tuple(head), *map(tuple, rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = []
    for k, line in enumerate(lines):
        pairs = enumerate(zip(line, widths, strict=True))
        cells = [c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in pairs]
        text.append("  ".join(cells).rstrip())
        if k == 0:
            text.append("-" * len(text[0]))
    return "\n".join(text)


def art_status(version: str | None, skipped: bool) -> str:
    """ART's version for the header, or why it is absent."""
    if version is not None:
        return version
    return "skipped (--skip-art)" if skipped else "not installed"


def versions(art: str) -> dict[str, str]:
    """Versions of what the benchmarks measure, for the header and the JSON."""
    import numpy
    import scipy
    import sklearn

    import mlpentest

    return {
        "python": platform.python_version(), "mlpentest": mlpentest.__version__, "numpy": numpy.__version__,
        "scipy": scipy.__version__, "scikit-learn": sklearn.__version__, "art": art,
    }


def machine(threads: int | None, load_start: float) -> dict[str, Any]:
    """Where the numbers were measured: cores, architecture, thread limit and load before and after."""
    return {
        "threads": threads or "library default", "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "load_average_start": load_start, "load_average_end": os.getloadavg()[0],
    }


def limit_threads(threads: int | None) -> Any:
    """Pin BLAS/OpenMP (and torch, if loaded) to ``threads``: on a busy machine multi-threaded BLAS can
    run 10x slower than one thread. Returns the context manager that holds the limit."""
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    if torch is not None and threads:
        torch.set_num_threads(threads)
    return threadpool_limits(limits=threads) if threads else contextlib.nullcontext()
