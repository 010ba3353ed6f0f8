"""One theme for every figure, fixed colours, and checked, deterministic, atomic saving.

Figures are written by :func:`save_figure` into :func:`figures_dir`: the repository's
``figures/`` unless the environment variable ``DMF_FIGURES_DIR`` names another directory
(the pipeline and the tests use that to stage or redirect outputs).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib as mpl
import numpy as np
import seaborn as sns

from ._atomic import atomic_write_all

__all__ = [
    "FIGURES_ENV",
    "figures_dir",
    "apply_theme",
    "depth_color",
    "noise_color",
    "check_figure",
    "EmptyFigureError",
    "save_figure",
    "shade_intervals",
]

FIGURES_ENV = "DMF_FIGURES_DIR"
_REPO_ROOT = Path(__file__).resolve().parent.parent

# Same colour for the same depth everywhere (seaborn's colour-blind palette).
_DEPTH_PALETTE = sns.color_palette("colorblind", 10)
_DEPTHS = (2, 3, 4, 5, 6, 7, 8)
_NOISE_CMAP = "plasma"
_NOISE_MAX = 1.0

_SAVE_METADATA = {
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
}


class EmptyFigureError(ValueError):
    """A figure has an empty panel or non-finite data; it is not written."""


def figures_dir() -> Path:
    """Where :func:`save_figure` writes: ``$DMF_FIGURES_DIR`` or ``<repository>/figures``."""
    env = os.environ.get(FIGURES_ENV)
    if env:
        return Path(env)
    if not (_REPO_ROOT / "pyproject.toml").is_file():
        raise RuntimeError(
            f"dmf_utils is not installed from a repository checkout; set {FIGURES_ENV} "
            "to the directory figures should go to"
        )
    return _REPO_ROOT / "figures"


def apply_theme() -> None:
    """Seaborn ``paper`` context, white grid, colour-blind palette, TrueType fonts in PDF."""
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=1.1)
    mpl.rcParams.update(
        {
            "pdf.fonttype": 42,
            "ps.fonttype": 42,
            "svg.hashsalt": "dmf-utils",
            "figure.dpi": 110,
            "savefig.dpi": 200,
            "savefig.bbox": "tight",
            "legend.frameon": True,
            "legend.framealpha": 0.9,
        }
    )


def depth_color(depth: int):
    """The colour of depth ``N`` (2–8) in every figure, an RGB tuple."""
    if depth not in _DEPTHS:
        raise ValueError(f"depth={depth} has no assigned colour: must be in {list(_DEPTHS)}")
    return _DEPTH_PALETTE[_DEPTHS.index(depth)]


def noise_color(delta: float):
    """The colour of noise level ``δ`` in every figure (plasma, ``δ`` in ``[0, 1]``)."""
    if not 0 <= delta <= _NOISE_MAX:
        raise ValueError(f"delta={delta} has no assigned colour: must be in [0, {_NOISE_MAX}]")
    return mpl.colormaps[_NOISE_CMAP](0.85 * delta / _NOISE_MAX)


def _artist_data(ax):
    for line in ax.get_lines():
        yield np.asarray(line.get_xydata(), dtype=float)
    for coll in ax.collections:
        offsets = np.asarray(coll.get_offsets(), dtype=float)
        if offsets.size:
            yield offsets
        for path in coll.get_paths():
            yield np.asarray(path.vertices, dtype=float)
    for image in ax.get_images():
        yield np.ma.filled(np.ma.asarray(image.get_array(), dtype=float), 0.0)


def check_figure(fig) -> None:
    """Raise :class:`EmptyFigureError` if a visible panel draws nothing or draws NaN/inf.

    Lines, collections and images are inspected; a panel counts as empty when none of
    them holds a data point, or when its lines have no positive value on a log axis.
    """
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible() or ax.get_label() == "<colorbar>":
            continue
        chunks = [c for c in _artist_data(ax) if c.size]
        name = ax.get_title() or f"panel {i}"
        if not chunks:
            raise EmptyFigureError(f"{name!r} of the figure draws no data")
        for c in chunks:
            if not np.isfinite(c).all():
                raise EmptyFigureError(f"{name!r} of the figure holds NaN or inf data")
        lines = [np.asarray(line.get_xydata(), dtype=float) for line in ax.get_lines()]
        for axis, scale in enumerate((ax.get_xscale(), ax.get_yscale())):
            if scale == "log" and lines and not any((xy[:, axis] > 0).any() for xy in lines if xy.size):
                raise EmptyFigureError(f"{name!r} has a log axis but no positive data on it")


def save_figure(fig, figure_id: str) -> list[Path]:
    """Check ``fig`` and write ``<figure_id>.pdf`` and ``.png`` into :func:`figures_dir`.

    Byte-reproducible (no timestamps or version stamps, TrueType fonts) and atomic: both
    files are rendered to temporary names and renamed only when both succeeded. Returns
    the two paths.
    """
    check_figure(fig)
    out = figures_dir()
    writers = {
        out / f"{figure_id}.{fmt}": (lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt, metadata=_SAVE_METADATA[fmt]))
        for fmt in ("pdf", "png")
    }
    return atomic_write_all(writers)


def shade_intervals(ax, starts, ends, colors, labels=None, *, band=(0.90, 0.99)) -> None:
    """Shade intervals of the x-axis as stacked strips at the top of ``ax``.

    Strip ``i`` spans ``[starts[i], ends[i]]`` in data coordinates and a slice of the
    vertical ``band`` (axes fraction), so several intervals stay readable. Entries with
    ``start < 0`` (no interval) are skipped.

    Parameters
    ----------
    ax : matplotlib Axes
    starts, ends : sequences of numbers, same length
    colors : sequence of colours, same length
    labels : sequence of str, optional (legend entries)
    """
    count = len(starts)
    if not len(ends) == len(colors) == count:
        raise ValueError("starts, ends and colors must have the same length")
    low, high = band
    height = (high - low) / max(count, 1)
    for i in range(count):
        if starts[i] < 0:
            continue
        y0 = high - (i + 1) * height
        ax.axvspan(
            starts[i], ends[i], ymin=y0, ymax=y0 + 0.85 * height, color=colors[i], alpha=0.55,
            linewidth=0, label=None if labels is None else labels[i],
        )
