"""matplotlib for the benchmarks' plots, when it is installed (a plot is optional: the
figures are in the JSON)."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any | None:
    """matplotlib.pyplot on the file-only backend, or None (said once) without it."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return None
    return plt
