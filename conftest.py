"""Test-session set-up shared by unit tests and nbval (kernels inherit this environment)."""

import atexit
import os
import shutil
import tempfile

os.environ["PYTHONHASHSEED"] = "0"  # stable set/dict reprs in notebook outputs
os.environ["OPENBLAS_NUM_THREADS"] = "1"  # same last digits as the stored outputs
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
os.environ.pop("MPLBACKEND", None)  # Agg would suppress the inline figures nbval compares

# Figures written while testing (nbval re-runs the notebooks) never land in figures/.
_FIGURES = tempfile.mkdtemp(prefix="dmf-test-figures-")
os.environ["DMF_FIGURES_DIR"] = _FIGURES
atexit.register(shutil.rmtree, _FIGURES, ignore_errors=True)


def pytest_configure(config):
    """nbval opens the sanitizer relative to the cwd: anchor it at the repository root."""
    path = getattr(config.option, "nbval_sanitize_with", None)
    if path and not os.path.isabs(path):
        config.option.nbval_sanitize_with = str(config.rootpath / path)
