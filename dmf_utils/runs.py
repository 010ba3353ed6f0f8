"""One run of an experiment per configuration: the functions that notebooks map over a grid
with :func:`dmf_utils.sweep.sweep` (signature ``fn(config, seed) -> dict of results``)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .dynamics import full_gd, log_grid, monotone_step_limit
from .metrics import effective_rank
from .targets import gaussian_noise, padded_spectrum, symmetric_target, wigner_noise

__all__ = ["NOISE_MODELS", "noisy_full_run"]

NOISE_MODELS = {"symmetric": wigner_noise, "non-symmetric": gaussian_noise}


def noisy_full_run(config: Mapping, seed: np.random.SeedSequence) -> dict:
    """Full-matrix gradient descent (THEORY.md §1) on one noisy draw of a clean target.

    Parameters
    ----------
    config : mapping with
        ``n`` (matrix size), ``leading`` (nonzero eigenvalues of the clean target ``A``),
        ``target_seed`` (``A = symmetric_target(padded_spectrum(leading, n),
        default_rng(target_seed))``, the same for every configuration sharing these three),
        ``noise`` (one of :data:`NOISE_MODELS`: ``"symmetric"`` Wigner or
        ``"non-symmetric"`` Gaussian), ``delta`` (``‖E‖₂``), ``init`` (``"identity"`` or
        ``"gaussian"``), ``depth``, ``alpha``, ``step_fraction`` (``η`` as a fraction of the
        monotone step limit ``1 / (N ‖A + E‖₂^{2−2/N})``, THEORY.md §2), ``steps`` and
        ``records`` (about that many log-spaced record points, :func:`log_grid`). Other
        keys (a replicate index, say) only tell configurations, hence their streams, apart.
    seed : the run's stream; it draws the noise, then the random initialization.

    Returns
    -------
    dict with ``iterations`` (int64, shape (R,)), ``erank`` (effective rank of ``W(k)``,
    shape (R,)) and ``error`` (``‖W(k) − A‖_F`` to the clean target, shape (R,)).
    """
    noise = config["noise"]
    if noise not in NOISE_MODELS:
        raise ValueError(f"noise={noise!r} must be one of {sorted(NOISE_MODELS)}")
    n = config["n"]
    target = symmetric_target(padded_spectrum(config["leading"], n),
                              np.random.default_rng(config["target_seed"]))
    rng = np.random.default_rng(seed)
    fitted = target.matrix + NOISE_MODELS[noise](n, config["delta"], rng)
    eta = config["step_fraction"] * float(monotone_step_limit(np.linalg.norm(fitted, 2), config["depth"]))
    grid = log_grid(config["steps"], config["records"])
    run = full_gd(fitted, depth=config["depth"], alpha=config["alpha"], eta=eta, steps=config["steps"],
                  record=grid, init=config["init"], rng=rng, references={"A": target.matrix})
    return {"iterations": run.iterations, "erank": effective_rank(run.singular_values),
            "error": run.frobenius_errors["A"]}
