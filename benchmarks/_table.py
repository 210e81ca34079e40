"""The aligned plain-text table every benchmark prints (stdlib only, shared by the scripts here)."""

from __future__ import annotations

import math
from collections.abc import Sequence


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
