"""Measures of the product ``W(k)`` and of trajectories (THEORY.md §7).

Rank measures take singular values (any leading batch axes, values on the last axis), so
they apply to both engines' records: :func:`spectral_gd` eigenvalues via ``abs``,
:func:`full_gd` singular values directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_finite, check_int, check_nonnegative
from .targets import largest_magnitude_order

__all__ = [
    "effective_rank",
    "numerical_rank",
    "stable_rank",
    "spectral_error",
    "frobenius_error",
    "frobenius_error_eigenbasis",
    "truncated_spectrum",
    "spectral_truncation_error",
    "hitting_time",
    "LowRankInterval",
    "lowrank_interval",
]


def _singular_values(singular_values) -> np.ndarray:
    s = check_nonnegative("singular_values", singular_values)
    if s.ndim == 0:
        raise ValueError("singular_values must have at least one axis")
    return s


def effective_rank(singular_values) -> np.ndarray:
    """Roy–Vetterli effective rank ``exp(H(q))``, ``q_i = σ_i / Σ_j σ_j``; 0 for the zero matrix.

    Parameters
    ----------
    singular_values : array_like, shape (..., n), entries >= 0

    Returns
    -------
    ndarray, shape (...): values in ``[1, n]``, or 0 where all ``σ_i = 0``.
    """
    s = _singular_values(singular_values)
    top = s.max(axis=-1, keepdims=True)
    s = s / np.where(top > 0, top, 1.0)  # scale-free, and no overflow in the sum
    total = s.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(total > 0, s / np.where(total > 0, total, 1.0), 0.0)
        plogp = np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0)
    return np.where(total[..., 0] > 0, np.exp(-plogp.sum(axis=-1)), 0.0)


def numerical_rank(singular_values, tol: float) -> np.ndarray:
    """Number of singular values strictly above ``tol``; int array of shape (...)."""
    s = _singular_values(singular_values)
    tol = float(check_nonnegative("tol", tol))
    return (s > tol).sum(axis=-1)


def stable_rank(singular_values) -> np.ndarray:
    """``‖W‖_F² / ‖W‖₂² = Σ σ_i² / max σ_i²``, shape (...); 0 for the zero matrix."""
    s = _singular_values(singular_values)
    top = s.max(axis=-1, keepdims=True)
    ratio = s / np.where(top > 0, top, 1.0)  # squares of ratios: no underflow or overflow
    return np.where(top[..., 0] > 0, (ratio**2).sum(axis=-1), 0.0)


def spectral_error(w, reference) -> np.ndarray:
    """``‖W − M‖₂`` for matrices of shape (..., m, n) (broadcast); shape (...)."""
    d = check_finite("w", w) - check_finite("reference", reference)
    return np.linalg.norm(d, ord=2, axis=(-2, -1))


def frobenius_error(w, reference) -> np.ndarray:
    """``‖W − M‖_F`` for matrices of shape (..., m, n) (broadcast); shape (...)."""
    d = check_finite("w", w) - check_finite("reference", reference)
    return np.linalg.norm(d, ord="fro", axis=(-2, -1))


def frobenius_error_eigenbasis(eigenvalues, eigenvectors, reference) -> np.ndarray:
    """``‖V diag(p) Vᵀ − M‖_F`` for many ``p`` at ``O(n)`` each (the spectral engine's records).

    With ``B = Vᵀ M V`` (orthogonal ``V``): ``‖diag(p) − B‖_F² = ‖B‖_F² − Σ B_ii² + Σ (p_i − B_ii)²``.

    Parameters
    ----------
    eigenvalues : array_like, shape (..., n)
        ``p`` for each record (and configuration).
    eigenvectors : array_like, shape (n, n), orthogonal
    reference : array_like, shape (n, n)

    Returns
    -------
    ndarray, shape (...)
    """
    p = check_finite("eigenvalues", eigenvalues)
    v = check_finite("eigenvectors", eigenvectors)
    b = v.T @ check_finite("reference", reference) @ v
    diag = np.diag(b)
    off = max(float((b**2).sum() - (diag**2).sum()), 0.0)
    return np.sqrt(off + ((p - diag) ** 2).sum(axis=-1))


def truncated_spectrum(eigenvalues, r: int) -> np.ndarray:
    """Eigenvalues of the best rank-``r`` approximation: the ``r`` largest in magnitude kept
    (ties towards the larger eigenvalue, :func:`dmf_utils.targets.largest_magnitude_order`).

    ``eigenvalues`` has shape (..., n); the result has the same shape and order.
    """
    lam = check_finite("eigenvalues", eigenvalues)
    r = check_int("r", r, minimum=0, maximum=lam.shape[-1])
    order = largest_magnitude_order(lam)
    keep = np.zeros(lam.shape, dtype=bool)
    np.put_along_axis(keep, order[..., :r], True, axis=-1)
    return np.where(keep, lam, 0.0)


def spectral_truncation_error(eigenvalues, target_eigenvalues, r: int) -> np.ndarray:
    """``‖W(k) − Ã_r‖₂`` when ``W(k)`` and ``Ã`` share eigenvectors (the spectral engine).

    With ``W(k) = Ṽ diag(p) Ṽᵀ`` and ``Ã_r = Ṽ diag(trunc_r(λ̃)) Ṽᵀ`` the spectral norm of
    the difference is ``max_i |p_i − trunc_r(λ̃)_i|`` (THEORY.md §4, §6).

    Parameters
    ----------
    eigenvalues : array_like, shape (R, *batch, n)
        Recorded ``p_i(k)`` (``SpectralTrajectory.eigenvalues``).
    target_eigenvalues : array_like, shape (*batch, n)
        ``λ̃_i`` in the same order.
    r : int

    Returns
    -------
    ndarray, shape (R, *batch)
    """
    p = check_finite("eigenvalues", eigenvalues)
    ref = truncated_spectrum(target_eigenvalues, r)
    return np.abs(p - ref).max(axis=-1)


def _iterations(iterations, leading, name: str) -> np.ndarray:
    its = np.asarray(iterations)
    if its.ndim != 1 or its.size == 0 or its.dtype.kind not in "iu" or np.any(np.diff(its) <= 0):
        raise ValueError("iterations must be a non-empty, strictly increasing 1-D integer array")
    if leading.shape[:1] != its.shape:
        raise ValueError(f"{name} must have shape (R, ...) with R = len(iterations) = {its.size}")
    return its


def hitting_time(iterations, values, level) -> np.ndarray:
    """First recorded iteration at which ``values > level``; ``-1`` where it never happens.

    Parameters
    ----------
    iterations : array_like of int, shape (R,)
    values : array_like, shape (R, *batch)
        A recorded quantity, e.g. ``SpectralTrajectory.eigenvalues``.
    level : float or array_like broadcastable to ``batch``

    Returns
    -------
    ndarray of int, shape batch
    """
    v = check_finite("values", values)
    its = _iterations(iterations, v, "values")
    above = v > np.asarray(level, dtype=float)
    first = np.argmax(above, axis=0)
    return np.where(above.any(axis=0), its[first], -1)


@dataclass(frozen=True)
class LowRankInterval:
    """Empirical low-rank interval(s): the longest run of records with error ``<= eps``.

    Attributes
    ----------
    start, end : ndarray of int, shape batch
        First and last recorded iteration of the run; ``-1`` where there is none.
    found : ndarray of bool, shape batch
    open_end : ndarray of bool, shape batch
        The run reaches the last record: the interval may extend beyond the trajectory.
    """

    start: np.ndarray
    end: np.ndarray
    found: np.ndarray
    open_end: np.ndarray

    @property
    def length(self) -> np.ndarray:
        """``end − start`` in iterations (0 where there is no interval)."""
        return np.where(self.found, self.end - self.start, 0)


def lowrank_interval(iterations, errors, eps: float) -> LowRankInterval:
    """The empirical low-rank interval of a trajectory (THEORY.md §4).

    The set of ``k`` with ``‖W(k) − A_r‖₂ <= eps``, measured on the record grid: the longest
    contiguous run of records inside the tolerance. Its end points are exact when every
    step is recorded and accurate to the grid spacing otherwise.

    Parameters
    ----------
    iterations : array_like of int, shape (R,)
    errors : array_like, shape (R, *batch)
        ``‖W(k) − A_r‖₂`` per record, e.g. from :func:`spectral_truncation_error`.
    eps : float, > 0
    """
    err = check_finite("errors", errors)
    its = _iterations(iterations, err, "errors")
    eps = float(check_nonnegative("eps", eps))
    inside = err <= eps
    batch = err.shape[1:]
    best_len = np.full(batch, -1)
    best_start = np.full(batch, -1)
    best_end = np.full(batch, -1)
    run_start = np.full(batch, -1)
    for idx in range(its.size):
        run_start = np.where(inside[idx], np.where(run_start < 0, idx, run_start), -1)
        length = np.where(inside[idx], its[idx] - its[np.maximum(run_start, 0)], -1)
        better = length > best_len
        best_len = np.where(better, length, best_len)
        best_start = np.where(better, run_start, best_start)
        best_end = np.where(better, idx, best_end)
    found = best_len >= 0
    return LowRankInterval(
        start=np.where(found, its[np.maximum(best_start, 0)], -1),
        end=np.where(found, its[np.maximum(best_end, 0)], -1),
        found=found,
        open_end=found & (best_end == its.size - 1),
    )
