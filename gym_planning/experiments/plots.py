"""Line plots with confidence bands over seeds (matplotlib, written as PNG).

A *series* is ``(x [P], y [S, P])``: ``P`` points, ``S`` seeds. The line is the mean over seeds and the band
its 95 % confidence interval (Student's t on the standard error; no band with one seed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

# Student's t quantile (two-sided 95 %) for 1..9 degrees of freedom; the normal 1.96 beyond.
_T95 = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26)

Series = tuple[np.ndarray, np.ndarray]


def mean_and_ci(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over axis 0 and the half-width of its 95 % confidence interval (0 with one sample).

    :param y: ``[S, P]`` values of ``S`` seeds at ``P`` points (NaN = missing).
    :return: ``(mean [P], half_width [P])``.
    """
    y = np.atleast_2d(np.asarray(y, dtype=float))
    n = np.sum(~np.isnan(y), axis=0)
    mean = np.nanmean(y, axis=0)
    if y.shape[0] < 2:
        return mean, np.zeros_like(mean)
    sem = np.nanstd(y, axis=0, ddof=1) / np.sqrt(np.maximum(n, 1))
    t = np.array([_T95[k - 1] if 1 <= k <= len(_T95) else 1.96 for k in n - 1])
    return mean, np.nan_to_num(t * sem)


def on_grid(curves: list[tuple[np.ndarray, np.ndarray]], grid: np.ndarray) -> np.ndarray:
    """Curves of several seeds (each ``(x, y)``, x increasing) interpolated onto a shared ``grid`` ``[P]``;
    NaN outside a curve's range. :return: ``[S, P]``."""
    out = np.full((len(curves), len(grid)), np.nan)
    for i, (x, y) in enumerate(curves):
        inside = (grid >= x[0]) & (grid <= x[-1])
        out[i, inside] = np.interp(grid[inside], x, y)
    return out


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install matplotlib (or gym-planning[dev])") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def line_plot(path: str | Path, series: dict[str, Series], *, xlabel: str, ylabel: str, title: str = "",
              logx: bool = False, hlines: dict[str, float] | None = None) -> Path:  # fmt: skip
    """Write a PNG with one line and 95 % band per series (``label -> (x [P], y [S, P])``)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, (x, y) in series.items():
        mean, half = mean_and_ci(y)
        (line,) = axes.plot(x, mean, marker="o", markersize=3, label=f"{label} (n={np.atleast_2d(y).shape[0]})")
        axes.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.2, linewidth=0)
    for label, value in (hlines or {}).items():
        axes.axhline(value, linestyle="--", color="grey", linewidth=1)
        axes.annotate(label, (0.01, value), xycoords=("axes fraction", "data"), fontsize=8, color="grey",
                      verticalalignment="bottom")  # fmt: skip
    if logx:
        axes.set_xscale("log", base=2)
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
