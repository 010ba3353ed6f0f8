"""Targets and noise (THEORY.md §1).

A clean target is ``A = V diag(λ) Vᵀ`` (symmetric, ``n × n``); the perturbed target is
``Ã = A + E`` with ``‖E‖₂ = δ``. Every random draw takes an explicit ``rng``
(``numpy.random.Generator`` or an integer seed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_finite, check_int, check_nonnegative, check_square

__all__ = [
    "SymmetricTarget",
    "padded_spectrum",
    "random_orthogonal",
    "symmetric_target",
    "best_rank_r",
    "largest_magnitude_order",
    "eigh_descending",
    "wigner_noise",
    "gaussian_noise",
]


@dataclass(frozen=True)
class SymmetricTarget:
    """A symmetric target ``A = V diag(λ) Vᵀ``.

    Attributes
    ----------
    matrix : ndarray, shape (n, n)
    eigenvalues : ndarray, shape (n,), sorted in decreasing order
    eigenvectors : ndarray, shape (n, n), orthogonal, column ``i`` belongs to ``eigenvalues[i]``
    """

    matrix: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def padded_spectrum(leading, n: int) -> np.ndarray:
    """The spectrum ``(leading..., 0, ..., 0)`` of length ``n``, shape ``(n,)``, float64."""
    lead = check_finite("leading", np.atleast_1d(leading))
    n = check_int("n", n, minimum=lead.size)
    return np.concatenate([lead, np.zeros(n - lead.size)])


def random_orthogonal(n: int, rng) -> np.ndarray:
    """A Haar-distributed orthogonal ``(n, n)`` matrix (QR of a Gaussian, signs fixed)."""
    n = check_int("n", n, minimum=1)
    q, r = np.linalg.qr(_rng(rng).standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def symmetric_target(spectrum, rng) -> SymmetricTarget:
    """The symmetric target with the given eigenvalues and a seeded random orthogonal basis.

    Parameters
    ----------
    spectrum : array_like, shape (n,)
        Eigenvalues, in any order; they are stored sorted decreasingly.
    rng : numpy.random.Generator or int
    """
    lam = check_finite("spectrum", spectrum)
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"spectrum must be a non-empty 1-D array, got shape {lam.shape}")
    lam = np.sort(lam)[::-1].copy()
    v = random_orthogonal(lam.size, rng)
    a = (v * lam) @ v.T
    return SymmetricTarget(matrix=(a + a.T) / 2, eigenvalues=lam, eigenvectors=v)


def eigh_descending(matrix) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of a symmetric matrix, eigenvalues in decreasing order.

    Returns ``(eigenvalues (n,), eigenvectors (n, n))``, column ``i`` for eigenvalue ``i``.
    """
    s = check_square("matrix", matrix)
    if not np.allclose(s, s.T, rtol=0, atol=1e-12 * max(1.0, np.abs(s).max())):
        raise ValueError("matrix must be symmetric")
    w, v = np.linalg.eigh((s + s.T) / 2)
    return w[::-1].copy(), v[:, ::-1].copy()


def largest_magnitude_order(eigenvalues) -> np.ndarray:
    """Indices that sort eigenvalues by decreasing magnitude, along the last axis.

    Magnitudes equal to 12 significant digits count as ties, broken towards the larger
    eigenvalue, so a computed ``1.0000000000000002`` and ``-0.9999999999999998`` tie.
    """
    lam = check_finite("eigenvalues", eigenvalues)
    scale = np.abs(lam).max(axis=-1, keepdims=True)
    magnitude = np.round(np.abs(lam) / np.where(scale > 0, scale, 1.0), 12)
    return np.lexsort((-lam, -magnitude), axis=-1)


def best_rank_r(matrix, r: int) -> np.ndarray:
    """Best rank-``r`` approximation (Eckart–Young, spectral and Frobenius norms), ``(n, n)``.

    Keeps the ``r`` largest singular values. A symmetric matrix is truncated in its
    eigenbasis (the ``r`` eigenvalues of largest magnitude in the order of
    :func:`largest_magnitude_order`, as :func:`dmf_utils.metrics.truncated_spectrum`), so the
    result is symmetric.
    """
    m = check_square("matrix", matrix)
    r = check_int("r", r, minimum=0, maximum=m.shape[0])
    if np.array_equal(m, m.T):
        lam, v = eigh_descending(m)
        order = largest_magnitude_order(lam)[:r]
        b = (v[:, order] * lam[order]) @ v[:, order].T
        return (b + b.T) / 2
    u, s, vt = np.linalg.svd(m)
    return (u[:, :r] * s[:r]) @ vt[:r]


def _scale_to_norm(e: np.ndarray, delta: float) -> np.ndarray:
    return e * (delta / np.linalg.norm(e, 2)) if delta > 0 else np.zeros_like(e)


def wigner_noise(n: int, delta: float, rng) -> np.ndarray:
    """Symmetric Gaussian (Wigner) noise ``E``, shape ``(n, n)``, scaled to ``‖E‖₂ = δ``.

    ``E ∝ (G + Gᵀ)/√2`` with standard Gaussian ``G``; ``‖E‖_F ≈ √n δ / 2`` for large ``n``.
    """
    n = check_int("n", n, minimum=1)
    delta = float(check_nonnegative("delta", delta))
    g = _rng(rng).standard_normal((n, n))
    return _scale_to_norm((g + g.T) / np.sqrt(2), delta)


def gaussian_noise(n: int, delta: float, rng) -> np.ndarray:
    """Non-symmetric Gaussian noise ``E``, shape ``(n, n)``, scaled to ``‖E‖₂ = δ``."""
    n = check_int("n", n, minimum=1)
    delta = float(check_nonnegative("delta", delta))
    return _scale_to_norm(_rng(rng).standard_normal((n, n)), delta)
