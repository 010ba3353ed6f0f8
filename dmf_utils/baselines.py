"""Figure regression: each figure's smoke-parameter PNG against a committed baseline.

Figures are byte-reproducible on one machine, but fonts and rasterizers may differ slightly
elsewhere, so the comparison is matplotlib's RMS pixel difference with a tolerance. A
changed figure fails until its baseline is deliberately refreshed with
``dmf-repro baseline ID``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from matplotlib.testing.compare import compare_images
from matplotlib.testing.exceptions import ImageComparisonFailure

from .pipeline import BUILD_DIR, REPO_ROOT, Entry, run_entry

__all__ = ["BASELINE_DIR", "REGRESSION_DIR", "TOLERANCE", "baseline_path", "update_baseline", "compare_with_baseline"]

BASELINE_DIR = REPO_ROOT / "tests" / "baselines"
REGRESSION_DIR = BUILD_DIR / "figure-regression"
TOLERANCE = 2.0  # RMS difference, in grey levels of 0–255


def baseline_path(entry: Entry) -> Path:
    return BASELINE_DIR / f"{entry.id}.png"


def _png(entry: Entry) -> str:
    pngs = [name for name in entry.outputs if name.endswith(".png")]
    if len(pngs) != 1:
        raise ValueError(f"{entry.id}: declares {len(pngs)} PNG outputs; the regression test needs one")
    return pngs[0]


def update_baseline(entry: Entry, log=lambda message: None) -> Path:
    """Regenerate ``entry``'s figure from its smoke parameters and store it as the baseline."""
    with tempfile.TemporaryDirectory() as tmp:
        run_entry(entry, smoke=True, out_dir=Path(tmp), build_dir=Path(tmp), log=log)
        BASELINE_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / _png(entry), baseline_path(entry))
    return baseline_path(entry)


def compare_with_baseline(entry: Entry, png: Path, tolerance: float = TOLERANCE) -> str | None:
    """``None`` if ``png`` matches the baseline within ``tolerance``, else a message naming
    the kept copy of the figure and the diff image (under ``build/figure-regression/``)."""
    expected = baseline_path(entry)
    if not expected.is_file():
        return f"{entry.id}: no baseline at {expected}; create it with `dmf-repro baseline {entry.id}`"
    REGRESSION_DIR.mkdir(parents=True, exist_ok=True)
    actual = REGRESSION_DIR / f"{entry.id}.png"
    shutil.copyfile(png, actual)
    stale = REGRESSION_DIR / f"{entry.id}-failed-diff.png"
    stale.unlink(missing_ok=True)
    try:
        result = compare_images(str(expected), str(actual), tol=tolerance, in_decorator=True)
    except ImageComparisonFailure as err:  # sizes differ: no diff image is possible
        return f"{entry.id}: {err} against {expected}; new figure: {actual}"
    if result is None:
        return None
    return (f"{entry.id}: the figure differs from its baseline (RMS {result['rms']:.2f} > {tolerance}); "
            f"diff image: {result['diff']}; new figure: {actual}; if the change is intended, run "
            f"`dmf-repro baseline {entry.id}`")
