"""Helpers shared by the benchmarks: import path, timing statistics, table printing."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def stats_ms(samples: list[float]) -> dict[str, float]:
    """Median and p95 of samples given in seconds, in milliseconds."""
    s = sorted(samples)
    return {
        "median_ms": 1000 * statistics.median(s),
        "p95_ms": 1000 * s[min(len(s) - 1, int(0.95 * len(s)))],
        "n": len(s),
    }


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    """Rows of (what, figure, reference, ratio) as an aligned table."""
    head = ("benchmark", "figure", "reference", "ratio")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(4)]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
