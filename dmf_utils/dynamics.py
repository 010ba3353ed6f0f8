"""Gradient-descent engines for deep matrix factorization (THEORY.md §1–2).

Two engines, one recording convention:

* :func:`spectral_gd` — the exact scalar reduction of THEORY.md §2 (identity
  initialization, symmetric target): ``x_i ← x_i − η x_i^{N−1}(x_i^N − λ_i)``, vectorized
  over eigenvalues and over a batch of configurations ``(α, η, N, spectrum)``. Records the
  product's eigenvalues ``p_i(k) = x_i(k)^N``.
* :func:`full_gd` — gradient descent on the factors ``W_1, …, W_N`` themselves, any target
  and initialization, ``3N − 3`` matrix products per step. Records singular values of the
  product ``W(k) = W_N ⋯ W_1`` and its errors against reference matrices.

Both record on an iteration grid (:func:`every_grid`, :func:`log_grid`, or any sorted
array of iterations) and raise :class:`DivergenceError` instead of returning NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from threadpoolctl import threadpool_limits

from ._checks import check_depth, check_finite, check_int, check_positive, check_square

__all__ = [
    "DivergenceError",
    "stability_limit",
    "monotone_step_limit",
    "spectrum_step_limit",
    "every_grid",
    "log_grid",
    "SpectralTrajectory",
    "spectral_gd",
    "FullTrajectory",
    "full_gd",
    "spectral_hitting_times",
]

_CHECK_EVERY = 32  # steps between finiteness checks; NaN/inf persist once they appear
_BLOCK = 32768  # coordinates advanced together through all steps: the working set stays in cache


def _blocks(depth_b, n):
    """Row indices of the batch, grouped by depth and cut into blocks of about ``_BLOCK``
    coordinates. Coordinates evolve independently, so each block runs all its steps before
    the next starts (temporal blocking: 2–3× faster than sweeping the whole batch per step)."""
    rows_per_block = max(1, _BLOCK // n)
    for d in np.unique(depth_b):
        rows = np.flatnonzero(depth_b == d)
        for start in range(0, rows.size, rows_per_block):
            yield rows[start:start + rows_per_block]


class DivergenceError(ValueError):
    """The step size is at or beyond the stability limit, or the iterates left the finite
    range: gradient descent oscillates or diverges instead of converging (THEORY.md §2)."""


def _curvature(lambda_1, depth):
    lam = np.maximum(check_finite("lambda_1", lambda_1), 0.0)
    n = check_depth(depth).astype(float)
    return n * lam ** (2.0 - 2.0 / n)


def stability_limit(lambda_1, depth):
    """Step size beyond which the top coordinate oscillates or diverges: ``2 / (N λ_1^{2−2/N})``.

    See THEORY.md §2. Vectorized (broadcasts ``lambda_1`` and ``depth``); ``inf`` when
    ``lambda_1 <= 0``.
    """
    with np.errstate(divide="ignore"):
        return 2.0 / _curvature(lambda_1, depth)


def monotone_step_limit(lambda_1, depth):
    """THEORY.md §2 step-size condition: ``η < 1 / (N λ_1^{2−2/N})`` gives monotone convergence.

    Use ``λ_1 + δ`` for a perturbed target. Vectorized; ``inf`` when ``lambda_1 <= 0``.
    """
    with np.errstate(divide="ignore"):
        return 1.0 / _curvature(lambda_1, depth)


def every_grid(steps: int, every: int = 1) -> np.ndarray:
    """Iterations ``0, m, 2m, …`` plus ``steps`` itself; int64 array, shape ``(R,)``."""
    steps = check_int("steps", steps, minimum=0)
    every = check_int("every", every, minimum=1)
    return np.unique(np.append(np.arange(0, steps + 1, every), steps))


def log_grid(steps: int, num: int) -> np.ndarray:
    """About ``num`` log-spaced iterations in ``[1, steps]`` plus 0; int64 array, shape ``(R,)``.

    Duplicates from rounding at small iterations are merged, so ``R <= num + 1``.
    """
    steps = check_int("steps", steps, minimum=0)
    num = check_int("num", num, minimum=2)
    if steps == 0:
        return np.zeros(1, dtype=np.int64)
    grid = np.rint(np.geomspace(1, steps, num)).astype(np.int64)
    return np.unique(np.concatenate([[0], grid, [steps]]))


def _check_record(record, steps: int) -> np.ndarray:
    if record is None:
        return every_grid(steps)
    rec = np.asarray(record)
    if rec.ndim != 1 or rec.size == 0 or not np.issubdtype(rec.dtype, np.integer):
        raise ValueError("record must be a non-empty 1-D integer array of iterations")
    if rec[0] < 0 or rec[-1] > steps or np.any(np.diff(rec) <= 0):
        raise ValueError(f"record must be strictly increasing within [0, steps={steps}]")
    return rec.astype(np.int64)


def _limits_text(eta, lambda_1, depth):
    return (
        f"eta={eta:.4g}, stability limit 2/(N lambda_1^(2-2/N)) = "
        f"{float(stability_limit(lambda_1, depth)):.4g} for lambda_1={lambda_1:.4g}, N={depth} "
        f"(THEORY.md §2); monotone convergence needs eta < "
        f"{float(monotone_step_limit(lambda_1, depth)):.4g}"
    )


def spectrum_step_limit(eigenvalues, depth) -> np.ndarray:
    """Largest stable step for a symmetric target with these eigenvalues (THEORY.md §2).

    ``2 / (N λ_1^{2−2/N})`` for the largest positive eigenvalue ``λ_1``; for ``N = 2`` a
    negative eigenvalue ``λ_n`` adds ``2 / |λ_n|`` (near zero its coordinate follows
    ``x ← x (1 + η λ_n)``), while for ``N >= 3`` negative eigenvalues add no limit.

    ``eigenvalues`` has shape (..., n), ``depth`` broadcasts with (...); returns shape (...).
    """
    lam = check_finite("eigenvalues", eigenvalues)
    depth = check_depth(depth)
    positive = stability_limit(np.maximum(lam.max(axis=-1), 0.0), depth)
    most_negative = np.minimum(lam.min(axis=-1), 0.0)
    with np.errstate(divide="ignore"):
        negative = np.where((depth == 2) & (most_negative < 0), 2.0 / np.abs(most_negative), np.inf)
    return np.minimum(positive, negative)


def _check_spectrum_step(eta: float, eigenvalues: np.ndarray, depth: int, what: str) -> None:
    """Raise DivergenceError if ``eta`` is at or beyond :func:`spectrum_step_limit`."""
    if eta < spectrum_step_limit(eigenvalues, depth):
        return
    lambda_1 = max(float(eigenvalues.max()), 0.0)
    if eta >= stability_limit(lambda_1, depth):
        detail = _limits_text(eta, lambda_1, depth)
    else:
        lam_n = float(eigenvalues.min())
        detail = (f"eta={eta:.4g}, stability limit 2/|lambda_n| = {2 / abs(lam_n):.4g} of the negative "
                  f"eigenvalue lambda_n={lam_n:.4g} at N=2 (THEORY.md §2)")
    raise DivergenceError(
        f"{what}: eta is at or beyond the stability limit, so gradient descent oscillates "
        f"or diverges instead of converging: " + detail
    )


def _spectral_inputs(spectrum, alpha, eta, depth):
    """Validated ``(spectrum, alpha, eta, depth)`` arrays of the spectral engines."""
    lam = check_finite("spectrum", spectrum)
    if lam.ndim == 0 or lam.shape[-1] == 0:
        raise ValueError(f"spectrum must have a last axis of eigenvalues, got shape {lam.shape}")
    return lam, check_positive("alpha", alpha), check_positive("eta", eta), check_depth(depth)


def _refuse_unstable(lam_b, eta_b, depth_b) -> None:
    """DivergenceError for the first configuration (rows of ``lam_b``) whose step is unstable."""
    bad = np.flatnonzero(eta_b >= spectrum_step_limit(lam_b, depth_b))
    if bad.size:
        j = bad[0]
        _check_spectrum_step(float(eta_b[j]), lam_b[j], int(depth_b[j]), f"configuration {j}")


def _divergence_message(step, eta, lambda_1, depth, what):
    return f"gradient descent diverged by step {step} ({what}): " + _limits_text(eta, lambda_1, depth)


@dataclass(frozen=True)
class SpectralTrajectory:
    """Eigenvalues of the product recorded by :func:`spectral_gd`.

    Attributes
    ----------
    iterations : ndarray of int, shape (R,)
    eigenvalues : ndarray, shape (R, *batch, n)
        ``p_i(k) = x_i(k)^N`` in the order of the input spectrum.
    spectrum : ndarray, shape (*batch, n)
        Target eigenvalues ``λ̃_i`` (broadcast to the batch).
    alpha, eta, depth : ndarray, shape batch
        The configuration of each batch element.
    """

    iterations: np.ndarray
    eigenvalues: np.ndarray
    spectrum: np.ndarray
    alpha: np.ndarray
    eta: np.ndarray
    depth: np.ndarray


def _power_into(x, exponent: int, out) -> None:
    """``out = x ** exponent`` (integer ``exponent >= 1``) by repeated squaring, then plain
    products: fewer passes over memory than ``exponent − 1`` multiplications."""
    if exponent == 1:
        np.copyto(out, x)
        return
    np.multiply(x, x, out=out)
    done = 2
    while 2 * done <= exponent:
        out *= out
        done *= 2
    for _ in range(exponent - done):
        out *= x


def _run_one_depth(x, lam, eta, depth, record, out):
    """Advance ``x`` (shape (B, n)) in place at one depth, writing ``p = x^N`` into ``out``.

    ``out`` has shape (R, B, n). Returns the step by which an entry of ``x`` or ``p`` was
    found non-finite, or ``None``.
    """
    t = np.empty_like(x)
    u = np.empty_like(x)
    steps = int(record[-1])
    rec_pos = 0
    for k in range(steps + 1):
        if k == record[rec_pos]:
            np.power(x, depth, out=out[rec_pos])
            rec_pos += 1
        if k == steps:
            break
        if k % _CHECK_EVERY == 0 and not np.isfinite(x).all():
            return k
        # t = x^(N-1);  u = η t (x^N − λ);  x ← x − u
        _power_into(x, depth - 1, t)
        np.multiply(t, x, out=u)
        u -= lam
        u *= t
        u *= eta
        x -= u
    return None if np.isfinite(x).all() and np.isfinite(out).all() else steps


def spectral_gd(spectrum, *, alpha, eta, depth, steps: int, record=None) -> SpectralTrajectory:
    """Exact gradient descent on the eigenvalues (THEORY.md §2), batched.

    Parameters
    ----------
    spectrum : array_like, shape (*batch_s, n)
        Eigenvalues ``λ̃_i`` of the (symmetric) target.
    alpha, eta : float or array_like broadcastable with the batch
        Initialization scale ``α > 0`` (``W_j(0) = α I``) and step size ``η > 0``.
    depth : int or array_like of int, broadcastable with the batch
        Depth ``N >= 2``.
    steps : int
        Number of gradient steps.
    record : array_like of int, optional
        Strictly increasing iterations in ``[0, steps]`` to record; default every step.

    Returns
    -------
    SpectralTrajectory
        ``eigenvalues`` has shape ``(R, *batch, n)`` with ``batch`` the broadcast of
        ``batch_s`` and the shapes of ``alpha``, ``eta``, ``depth``.

    Raises
    ------
    DivergenceError
        If an iterate becomes non-finite; the message names the step, eigenvalue, ``η``
        and the stability limit.
    """
    lam, alpha, eta, depth_arr = _spectral_inputs(spectrum, alpha, eta, depth)
    steps = check_int("steps", steps, minimum=0)
    record = _check_record(record, steps)

    n = lam.shape[-1]
    batch = np.broadcast_shapes(lam.shape[:-1], alpha.shape, eta.shape, depth_arr.shape)
    lam_b = np.broadcast_to(lam, batch + (n,)).reshape(-1, n)
    alpha_b = np.broadcast_to(alpha, batch).reshape(-1)
    eta_b = np.broadcast_to(eta, batch).reshape(-1)
    depth_b = np.broadcast_to(depth_arr, batch).reshape(-1).astype(np.int64)

    _refuse_unstable(lam_b, eta_b, depth_b)

    out = np.empty((record.size, lam_b.shape[0], n))
    for idx in _blocks(depth_b, n):
        d = int(depth_b[idx[0]])
        x = np.repeat(alpha_b[idx, None], n, axis=1)
        sub = np.empty((record.size, idx.size, n))
        with np.errstate(over="ignore", invalid="ignore"):
            bad_step = _run_one_depth(x, lam_b[idx], eta_b[idx, None], int(d), record, sub)
            bad = ~np.isfinite(x) | ~np.isfinite(np.power(x, d))
        if bad_step is not None:
            cfg, i = np.argwhere(bad)[0] if bad.any() else np.argwhere(~np.isfinite(sub[-1]))[0]
            j = idx[cfg]
            what = f"eigenvalue index {i} with target {lam_b[j, i]:.4g}, configuration {j}"
            raise DivergenceError(
                _divergence_message(bad_step, float(eta_b[j]), float(max(lam_b[j].max(), 0)), int(d), what)
            )
        out[:, idx] = sub

    return SpectralTrajectory(
        iterations=record,
        eigenvalues=out.reshape((record.size,) + batch + (n,)),
        spectrum=np.broadcast_to(lam, batch + (n,)).copy(),
        alpha=np.broadcast_to(alpha, batch).copy(),
        eta=np.broadcast_to(eta, batch).copy(),
        depth=np.broadcast_to(depth_arr, batch).astype(np.int64),
    )


@dataclass(frozen=True)
class FullTrajectory:
    """What :func:`full_gd` records of the product ``W(k) = W_N ⋯ W_1``.

    Attributes
    ----------
    iterations : ndarray of int, shape (R,)
    singular_values : ndarray, shape (R, n), each row in decreasing order
    spectral_errors, frobenius_errors : dict of str to ndarray of shape (R,)
        ``‖W(k) − M‖₂`` and ``‖W(k) − M‖_F`` for each reference matrix ``M`` passed in
        ``references`` (same keys).
    product : ndarray, shape (n, n)
        The product after the last step.
    """

    iterations: np.ndarray
    singular_values: np.ndarray
    spectral_errors: dict
    frobenius_errors: dict
    product: np.ndarray


def _initial_factors(n, depth, alpha, init, rng, dtype):
    if init == "identity":
        return [alpha * np.eye(n, dtype=dtype) for _ in range(depth)]
    if init == "gaussian":
        if rng is None:
            raise ValueError("init='gaussian' needs rng (a numpy Generator or an int seed)")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return [((alpha / np.sqrt(n)) * gen.standard_normal((n, n))).astype(dtype) for _ in range(depth)]
    raise ValueError(f"init must be 'identity' or 'gaussian', got {init!r}")


def full_gd(
    target,
    *,
    depth: int,
    alpha: float,
    eta: float,
    steps: int,
    record=None,
    init: str = "identity",
    rng=None,
    references: Mapping[str, np.ndarray] | None = None,
    blas_threads: int | None = 1,
    dtype=np.float64,
) -> FullTrajectory:
    """Gradient descent on all factors of ``W_N ⋯ W_1 ≈ target`` (THEORY.md §1).

    Each step computes the prefix products ``P_j = W_j ⋯ W_1`` (``N − 1`` products), the
    residual ``R = P_N − Ã`` and, in one backward sweep, ``B_j = (W_N ⋯ W_{j+1})ᵀ R`` and the
    gradients ``B_j P_{j−1}ᵀ`` (``2N − 2`` products): ``3N − 3`` matrix products per step.
    All layers are updated from the same iterate.

    Parameters
    ----------
    target : array_like, shape (n, n)
        The matrix ``Ã`` being fitted (any square matrix).
    depth : int
        Number of factors ``N >= 2``.
    alpha : float
        Initialization scale: ``W_j(0) = α I`` (``init='identity'``) or ``α G_j / √n`` with
        standard Gaussian ``G_j`` (``init='gaussian'``, needs ``rng``).
    eta : float
        Step size.
    steps : int
    record : array_like of int, optional
        Iterations to record (default every step); see :func:`every_grid`, :func:`log_grid`.
    references : mapping of str to (n, n) arrays, optional
        Matrices to measure the product against on the record grid.
    blas_threads : int or None
        BLAS threads during the run (threadpoolctl); ``None`` leaves the setting alone.
        One thread is fastest for small ``n`` on a shared 2-core machine.
    dtype : numpy float dtype
        Arithmetic precision (float64 by default).

    Raises
    ------
    DivergenceError
        If the product becomes non-finite.
    """
    a = check_square("target", target).astype(dtype)
    n = a.shape[0]
    depth = check_int("depth", depth, minimum=2)
    alpha = float(check_positive("alpha", alpha))
    eta = float(check_positive("eta", eta))
    steps = check_int("steps", steps, minimum=0)
    record = _check_record(record, steps)
    if references is not None and not isinstance(references, Mapping):
        raise TypeError("references must be a mapping of names to (n, n) matrices")
    refs = {name: check_square(f"references[{name!r}]", m) for name, m in (references or {}).items()}
    for name, m in refs.items():
        if m.shape != a.shape:
            raise ValueError(f"references[{name!r}] has shape {m.shape}, target has {a.shape}")
    if blas_threads is not None:
        check_int("blas_threads", blas_threads, minimum=1)

    ws = _initial_factors(n, depth, alpha, init, rng, dtype)
    prefix = [ws[0]] + [np.empty((n, n), dtype=dtype) for _ in range(depth - 1)]
    resid = np.empty((n, n), dtype=dtype)
    grad = np.empty((n, n), dtype=dtype)
    sweep = (np.empty((n, n), dtype=dtype), np.empty((n, n), dtype=dtype))
    sv = np.empty((record.size, n))
    spec_err = {name: np.empty(record.size) for name in refs}
    frob_err = {name: np.empty(record.size) for name in refs}
    if np.array_equal(a, a.T):  # symmetric: the exact limit of its eigenvalues
        _check_spectrum_step(eta, np.linalg.eigvalsh(a.astype(float)), depth, "full_gd")
    else:  # general: the largest singular value stands in for lambda_1
        _check_spectrum_step(eta, np.linalg.svd(a.astype(float), compute_uv=False)[:1], depth, "full_gd")
    lambda_1 = float(np.linalg.norm(a, 2))

    limits = threadpool_limits(limits=blas_threads, user_api="blas") if blas_threads else None
    try:
        rec_pos = 0
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(steps + 1):
                for j in range(1, depth):
                    np.matmul(ws[j], prefix[j - 1], out=prefix[j])
                product = prefix[-1]
                if (k % _CHECK_EVERY == 0 or k == record[rec_pos]) and not np.isfinite(product).all():
                    raise DivergenceError(
                        _divergence_message(k, eta, lambda_1, depth, "the product W(k) became non-finite")
                    )
                if k == record[rec_pos]:
                    sv[rec_pos] = np.linalg.svd(product, compute_uv=False)
                    for name, m in refs.items():
                        spec_err[name][rec_pos] = np.linalg.norm(product - m, 2)
                        frob_err[name][rec_pos] = np.linalg.norm(product - m, "fro")
                    rec_pos += 1
                if k == steps:
                    break
                # η R: the backward sweep is linear in R, so every gradient comes out scaled by η
                np.subtract(product, a, out=resid)
                resid *= eta
                b = resid  # b = η (W_N ⋯ W_{j+1})ᵀ R, built from the top layer down
                for j in range(depth - 1, 0, -1):
                    np.matmul(b, prefix[j - 1].T, out=grad)
                    b = np.matmul(ws[j].T, b, out=sweep[j % 2])
                    ws[j] -= grad
                ws[0] -= b
    finally:
        if limits is not None:
            limits.restore_original_limits()

    return FullTrajectory(
        iterations=record,
        singular_values=sv,
        spectral_errors=spec_err,
        frobenius_errors=frob_err,
        product=np.array(prefix[-1], dtype=float),
    )


_COMPACT_EVERY = 256  # steps between active-set compactions in spectral_hitting_times


def spectral_hitting_times(spectrum, levels, *, alpha, eta, depth, max_steps, inclusive=False) -> np.ndarray:
    """Exact first-passage times of the eigenvalues ``p_i(k)`` (THEORY.md §2 reduction).

    For every configuration and eigenvalue, the first ``k`` in ``[0, max_steps]`` with
    ``p_i(k) > levels_i`` (``>=`` where ``inclusive``), tracked at every step without
    storing the trajectory: memory ``O(batch × n)``. Configurations whose passages are all
    found, or that reached their own ``max_steps``, stop costing work (active-set compaction).

    Parameters
    ----------
    spectrum : array_like, shape (*batch_s, n)
    levels : array_like, broadcastable to (*batch, n)
        ``inf`` for eigenvalues whose passage is not wanted.
    alpha, eta, depth : as in :func:`spectral_gd`
    max_steps : int or array_like of int, broadcastable to the batch
        Last iteration examined, per configuration.
    inclusive : bool or array_like of bool, broadcastable to (*batch, n)

    Returns
    -------
    ndarray of int64, shape (*batch, n): the passage iteration, ``-1`` if none up to
    ``max_steps`` (or if ``levels_i = inf``).

    Raises
    ------
    DivergenceError
        As :func:`spectral_gd`.
    """
    lam, alpha, eta, depth_arr = _spectral_inputs(spectrum, alpha, eta, depth)
    max_arr = np.asarray(max_steps)
    if not np.issubdtype(max_arr.dtype, np.integer) or (max_arr < 0).any():
        raise ValueError(f"max_steps must be a non-negative integer, got {max_steps!r}")
    lev = np.asarray(levels, dtype=float)
    if np.isnan(lev).any():
        raise ValueError("levels must not be NaN (use inf for passages that are not wanted)")

    n = lam.shape[-1]
    batch = np.broadcast_shapes(lam.shape[:-1], alpha.shape, eta.shape, depth_arr.shape,
                                max_arr.shape, lev.shape[:-1], np.shape(inclusive)[:-1])
    flat = lambda a, tail=(): np.broadcast_to(a, batch + tail).reshape((-1,) + tail)  # noqa: E731
    lam_b, lev_b = flat(lam, (n,)), flat(lev, (n,))
    incl_b = flat(np.asarray(inclusive, dtype=bool), (n,))
    alpha_b, eta_b, max_b = flat(alpha), flat(eta), flat(max_arr).astype(np.int64)
    depth_b = flat(depth_arr).astype(np.int64)

    _refuse_unstable(lam_b, eta_b, depth_b)

    hits = np.full(lam_b.shape, -1, dtype=np.int64)
    for rows in _blocks(depth_b, n):
        _passages_one_depth(rows, lam_b, lev_b, incl_b, alpha_b, eta_b, max_b, int(depth_b[rows[0]]), hits)
    return hits.reshape(batch + (n,))


def _passages_one_depth(rows, lam_all, lev_all, incl_all, alpha_all, eta_all, max_all, depth, hits):
    """Fill ``hits[rows]`` for one depth, compacting the active set as passages complete."""
    lam, eta, last = lam_all[rows], eta_all[rows, None], max_all[rows]
    # "p >= level" is "p > the float just below level": one comparison per step
    lev = np.where(incl_all[rows], np.nextafter(lev_all[rows], -np.inf), lev_all[rows])
    x = np.repeat(alpha_all[rows, None], lam.shape[1], axis=1)
    hit = np.full(lam.shape, -1, dtype=np.int64)
    t, p, newly = np.empty_like(x), np.empty_like(x), np.empty(x.shape, dtype=bool)
    k = 0

    def store(rows, hit, last):  # a passage after a configuration's own max_steps does not count
        hits[rows] = np.where(hit > last[:, None], -1, hit)

    soonest = int(last.min())  # the first configuration to reach its own max_steps
    with np.errstate(over="ignore", invalid="ignore"):
        while rows.size:
            if k % _COMPACT_EVERY == 0 or k > soonest:
                if not np.isfinite(x).all():
                    cfg, i = np.argwhere(~np.isfinite(x))[0]
                    what = f"eigenvalue index {i} with target {lam[cfg, i]:.4g}, configuration {rows[cfg]}"
                    raise DivergenceError(
                        _divergence_message(k, float(eta[cfg, 0]), float(max(lam[cfg].max(), 0)), depth, what)
                    )
                keep = np.isfinite(lev).any(axis=1) & (last >= k)  # passages still awaited
                if not keep.all():
                    store(rows[~keep], hit[~keep], last[~keep])
                    rows, lam, lev, eta, last, x, hit = (a[keep] for a in (rows, lam, lev, eta, last, x, hit))
                    t, p, newly = t[: rows.size], p[: rows.size], newly[: rows.size]
                    if not rows.size:
                        break
                    soonest = int(last.min())
            # t = x^(N-1), p = x^N: record passages at step k, then x ← x − η t (p − λ)
            _power_into(x, depth - 1, t)
            np.multiply(t, x, out=p)
            np.greater(p, lev, out=newly)
            if newly.any():  # rare: record the passage and stop watching that coordinate
                np.copyto(hit, k, where=newly)
                np.copyto(lev, np.inf, where=newly)
            p -= lam
            p *= t
            p *= eta
            x -= p
            k += 1
    if rows.size:
        store(rows, hit, last)
