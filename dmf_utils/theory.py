"""The project's bounds: hitting times, low-rank intervals, critical noise (THEORY.md §2–6).

Every function broadcasts over its array arguments (scalars give 0-d arrays) and returns
float64 iteration counts: ``inf`` means "never" (for example ``K_low(μ)`` when ``μ <= ε``),
``nan`` means *void*: a hypothesis of the bound fails for that entry. With ``strict=True``
(the default) a void entry raises :class:`HypothesisError` naming the hypothesis instead;
sweeps pass ``strict=False`` and mask the void entries themselves. No function returns a
negative or otherwise meaningless count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_depth, check_finite, check_int, check_positive
from .dynamics import monotone_step_limit

__all__ = [
    "THETA_GRID",
    "HypothesisError",
    "escape_lower_bound",
    "convergence_upper_bound",
    "IntervalBounds",
    "lowrank_interval_bounds",
    "perturbed_interval_bounds",
    "critical_noise",
    "eigenvalue_error_bound",
    "spectral_error_bound",
]

THETA_GRID = np.round(np.arange(1, 20) * 0.05, 2)  # 0.05, 0.10, …, 0.95 (THEORY.md §3, §8)
_PEAK_ZONE = 50  # K_up(λ) peaks at λ of a few ε: T_0(δ) samples [λ_r − δ, 50 ε] densely too
_PEAK_POINTS = 512


class HypothesisError(ValueError):
    """A hypothesis of a bound fails (THEORY.md §3–6): the bound says nothing there."""


def _params(alpha, eta, depth, eps):
    alpha = check_positive("alpha", alpha)
    eta = check_positive("eta", eta)
    eps = check_positive("eps", eps)
    return alpha, eta, check_depth(depth), eps


def _finish(value, void_reasons, strict: bool):
    """Set void entries to NaN; if ``strict``, raise for the first void entry.

    ``void_reasons`` holds ``(mask, describe)`` pairs; ``describe(at)`` words the failed
    hypothesis with the numbers of that entry, ``at(x)`` picking them out of any array.
    """
    value = np.asarray(value, dtype=float)
    void = np.zeros(value.shape, dtype=bool)
    for mask, describe in void_reasons:
        mask = np.broadcast_to(mask, value.shape)
        if strict and mask.any():
            index = np.unravel_index(int(np.argmax(mask)), mask.shape)
            raise HypothesisError(describe(lambda x: float(np.broadcast_to(x, value.shape)[index])))
        void |= mask
    return np.where(void, np.nan, value)


def _alpha_void(alpha, depth, eps):
    return alpha**depth >= eps, lambda at: (
        f"the bounds require alpha^N < eps (THEORY.md §3): alpha={at(alpha):.4g}, N={at(depth):.0f} give "
        f"alpha^N={at(alpha) ** at(depth):.4g} >= eps={at(eps):.4g}"
    )


def _step_void(eta, lam, depth, what="lambda"):
    limit = monotone_step_limit(lam, depth)
    return ~(eta < limit), lambda at: (
        f"the step-size condition eta N {what}^(2-2/N) < 1 fails (THEORY.md §2): eta={at(eta):.4g} >= "
        f"{at(limit):.4g} for {what}={at(lam):.4g}, N={at(depth):.0f}"
    )


def escape_lower_bound(mu, *, alpha, eta, depth, eps, strict: bool = True) -> np.ndarray:
    """``K_low(μ)``: the first ``k`` with ``p(k) > ε`` is larger than this (THEORY.md §3).

    ``⌊(α^{−m} − ε^{−m/N}) / (m η μ)⌋`` for ``N ≥ 3`` (``m = N − 2``),
    ``⌊log(ε/α²) / (2 log(1 + η μ))⌋`` for ``N = 2``, and ``inf`` when ``μ <= ε``.
    Void (NaN, or HypothesisError if ``strict``) where ``α^N >= ε``.
    """
    mu = check_finite("mu", mu)
    alpha, eta, depth, eps = _params(alpha, eta, depth, eps)
    m = depth - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        deep = (alpha ** (-m) - eps ** (-m / depth)) / (m * eta * mu)
        shallow = np.log(eps / alpha**2) / (2 * np.log1p(eta * mu))
        k = np.floor(np.where(depth >= 3, deep, shallow))
        k = np.where(mu <= eps, np.inf, k)
    return _finish(k, [_alpha_void(alpha, depth, eps)], strict)


def convergence_upper_bound(lam, *, alpha, eta, depth, eps, thetas=THETA_GRID,
                            strict: bool = True) -> np.ndarray:
    """``K_up(λ)``: after this many steps ``λ − p(k) <= ε`` for good (THEORY.md §3).

    Minimum over the split levels ``θ`` in ``thetas`` of ``k_1(θ) + k_2(θ)``: phase 1 until
    ``p >= θλ``, phase 2 (linear rate ``ρ(θ) = 1 − Nη(θλ)^{2−2/N}``) until ``λ − p <= ε``.
    Void where ``λ <= 0``, ``α^N >= λ`` (the coordinate must start below its target,
    THEORY.md §2) or the step-size condition ``η N λ^{2−2/N} < 1`` fails. Unlike ``K_low``
    it does not need ``α^N < ε`` (THEORY.md §8 quotes ``K_up(1) = 31`` at ``α² = ε``);
    phase 1 is skipped when ``θλ <= α^N``.
    """
    lam = check_finite("lam", lam)
    alpha, eta, depth, eps = _params(alpha, eta, depth, eps)
    thetas = np.asarray(thetas, dtype=float)
    if thetas.ndim != 1 or not ((thetas > 0) & (thetas < 1)).all():
        raise ValueError("thetas must be a 1-D array of values in (0, 1)")
    lam_b, alpha_b, eta_b, depth_b, eps_b = (
        x[..., None] for x in np.broadcast_arrays(lam, alpha, eta, depth, eps)
    )
    m = depth_b - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        level = thetas * lam_b  # θλ
        gap = (1 - thetas) * lam_b  # (1 − θ)λ
        t_max = eta_b * gap * level ** (m / depth_b)
        deep = (alpha_b ** (-m) - level ** (-m / depth_b)) * (1 + m * t_max) / (m * eta_b * gap)
        shallow = np.log(level / alpha_b**2) / (2 * np.log1p(eta_b * gap))
        k1 = np.ceil(np.where(depth_b >= 3, deep, shallow))
        k1 = np.where(level <= alpha_b**depth_b, 0.0, k1)
        rho = 1 - depth_b * eta_b * level ** (2 - 2 / depth_b)
        k2 = np.ceil(np.log(gap / eps_b) / -np.log(rho))
        k2 = np.where(eps_b >= gap, 0.0, k2)
        k = np.min(k1 + k2, axis=-1)
    return _finish(
        k,
        [
            (~(lam > 0), lambda at: f"K_up(lambda) needs lambda > 0 (THEORY.md §3), got lambda={at(lam):.4g}"),
            (~(alpha**depth < lam), lambda at: (
                f"K_up(lambda) needs alpha^N < lambda (THEORY.md §2), got alpha^N="
                f"{at(alpha) ** at(depth):.4g} >= lambda={at(lam):.4g}")),
            _step_void(eta, lam, depth),
        ],
        strict,
    )


@dataclass(frozen=True)
class IntervalBounds:
    """A predicted low-rank interval ``[T_0, T_1]`` (float arrays of the batch shape).

    ``T_1 = inf`` when the tail never escapes; NaN marks entries where a hypothesis fails
    (``valid`` is False there). ``nonempty`` is ``valid & (T_0 <= T_1)``.
    """

    t0: np.ndarray
    t1: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return ~(np.isnan(self.t0) | np.isnan(self.t1))

    @property
    def nonempty(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return self.valid & (self.t0 <= self.t1)


def _spectrum_and_r(spectrum, r):
    lam = check_finite("spectrum", spectrum)
    if lam.ndim == 0:
        raise ValueError("spectrum must have a last axis of eigenvalues")
    r = check_int("r", r, minimum=1, maximum=lam.shape[-1] - 1)
    if np.any(np.diff(lam, axis=-1) > 0):
        raise ValueError("spectrum must be sorted in decreasing order along its last axis")
    return lam, r


def lowrank_interval_bounds(spectrum, r: int, *, alpha, eta, depth, eps,
                            strict: bool = True) -> IntervalBounds:
    """Theorem A (THEORY.md §4): ``T_0 = max_{i<=r} K_up(λ_i)``, ``T_1 = K_low(λ_{r+1})``.

    For ``T_0 <= k <= T_1``: ``‖W(k) − A_r‖₂ <= ε``. Hypotheses: ``α^N < ε``,
    ``η N λ_1^{2−2/N} < 1``, ``λ_r > λ_{r+1}``, clean PSD target.

    Parameters
    ----------
    spectrum : array_like, shape (..., n), sorted decreasingly
    r : int, ``1 <= r < n``
    alpha, eta, depth, eps : scalars or arrays broadcastable with ``spectrum[..., 0]``
    """
    lam, r = _spectrum_and_r(spectrum, r)
    alpha, eta, depth, eps = _params(alpha, eta, depth, eps)
    kw = dict(alpha=alpha[..., None], eta=eta[..., None], depth=depth[..., None], eps=eps[..., None])
    t0 = np.max(convergence_upper_bound(lam[..., :r], **kw, strict=False), axis=-1)
    t1 = escape_lower_bound(lam[..., r], alpha=alpha, eta=eta, depth=depth, eps=eps, strict=False)
    lam_r, lam_next, lam_min = lam[..., r - 1], lam[..., r], lam[..., -1]
    reasons = [
        _alpha_void(alpha, depth, eps),
        _step_void(eta, lam[..., 0], depth, "lambda_1"),
        (~(lam_r > lam_next), lambda at: (
            f"Theorem A needs lambda_r > lambda_{{r+1}} (THEORY.md §4), got {at(lam_r):.4g} <= {at(lam_next):.4g}")),
        (~(lam_min >= 0), lambda at: (
            f"Theorem A needs a positive semidefinite target (THEORY.md §4), got an eigenvalue {at(lam_min):.4g}")),
    ]
    t0, t1 = np.broadcast_arrays(t0, t1)
    return IntervalBounds(_finish(t0, reasons, strict), _finish(t1, reasons, strict))


def perturbed_interval_bounds(spectrum, r: int, delta, *, alpha, eta, depth, eps, n_grid: int = 64,
                              strict: bool = True) -> IntervalBounds:
    """Theorem C (THEORY.md §6): ``T_0(δ) = max_{λ ∈ [λ_r − δ, λ_1 + δ]} K_up(λ)``,
    ``T_1(δ) = K_low(λ_{r+1} + δ)``.

    The maximum is taken over ``n_grid`` equally spaced ``λ`` (end points included, as in
    THEORY.md §8) **and** over 512 geometrically spaced ``λ`` in ``[λ_r − δ, 50 ε]`` when
    the interval reaches down there: ``K_up`` is not monotone in ``λ`` but peaks at ``λ`` of
    a few ``ε``, which the equally spaced grid alone can miss (it would then understate
    ``T_0(δ)``). Where ``λ_r − δ`` is far above ``ε`` the two agree.

    ``spectrum`` is the *clean* spectrum (shape (..., n), decreasing). Hypotheses:
    ``α^N < ε``, ``η N (λ_1 + δ)^{2−2/N} < 1``, ``λ_r − δ > 0`` and
    ``λ_r − δ > λ_{r+1} + δ``. For ``T_0(δ) <= k <= T_1(δ)``:
    ``‖W(k) − Ã_r‖₂ <= ε`` and ``‖W(k) − A‖₂ <= ε + λ_{r+1} + 2δ``.
    """
    lam, r = _spectrum_and_r(spectrum, r)
    delta = check_finite("delta", delta)
    if (delta < 0).any():
        raise ValueError("delta must be >= 0")
    n_grid = check_int("n_grid", n_grid, minimum=2)
    alpha, eta, depth, eps = _params(alpha, eta, depth, eps)
    low, high = lam[..., r - 1] - delta, lam[..., 0] + delta
    grid = low[..., None] + (high - low)[..., None] * np.linspace(0.0, 1.0, n_grid)
    # K_up(λ) is not monotone: it peaks at λ of a few ε. Where [λ_r − δ, λ_1 + δ] reaches down
    # there, a dense geometric grid catches the peak that the equally spaced one can miss.
    with np.errstate(invalid="ignore", divide="ignore"):
        top = np.minimum(high, _PEAK_ZONE * eps)
        ratio = np.where((low > 0) & (top > low), top / np.where(low > 0, low, 1.0), 1.0)
        dense = low[..., None] * ratio[..., None] ** np.linspace(0.0, 1.0, _PEAK_POINTS)
    batch = np.broadcast_shapes(grid.shape[:-1], dense.shape[:-1])
    grid = np.concatenate([np.broadcast_to(grid, batch + grid.shape[-1:]),
                           np.broadcast_to(dense, batch + dense.shape[-1:])], axis=-1)
    kw = dict(alpha=alpha[..., None], eta=eta[..., None], depth=depth[..., None], eps=eps[..., None])
    t0 = np.max(convergence_upper_bound(grid, **kw, strict=False), axis=-1)
    t1 = escape_lower_bound(lam[..., r] + delta, alpha=alpha, eta=eta, depth=depth, eps=eps,
                            strict=False)
    tail = np.maximum(lam[..., r] + delta, 0)
    reasons = [
        _alpha_void(alpha, depth, eps),
        _step_void(eta, high, depth, "(lambda_1 + delta)"),
        (~(low > tail), lambda at: (
            f"Theorem C needs lambda_r - delta > max(lambda_{{r+1}} + delta, 0) (THEORY.md §6), got "
            f"{at(low):.4g} <= {at(tail):.4g}")),
    ]
    t0, t1 = np.broadcast_arrays(t0, t1)
    return IntervalBounds(_finish(t0, reasons, strict), _finish(t1, reasons, strict))


def critical_noise(spectrum, r: int, *, alpha: float, eta: float, depth: int, eps: float,
                   n_grid: int = 64, tol: float = 1e-6) -> float:
    """``δ*``: the largest ``δ`` with ``T_0(δ) <= T_1(δ)``, by bisection (THEORY.md §6).

    ``T_0(δ)`` grows and ``T_1(δ)`` shrinks with ``δ``, so the set of such ``δ`` is an
    interval ``[0, δ*]``; ``δ`` where a hypothesis of Theorem C fails count as outside.
    Scalar configuration; ``spectrum`` 1-D. Raises HypothesisError if even ``δ = 0`` has no
    predicted interval.
    """
    lam, r = _spectrum_and_r(spectrum, r)
    if lam.ndim != 1:
        raise ValueError("critical_noise takes one spectrum (1-D)")
    tol = float(check_positive("tol", tol))

    def holds(delta):
        b = perturbed_interval_bounds(lam, r, delta, alpha=alpha, eta=eta, depth=depth, eps=eps,
                                      n_grid=n_grid, strict=False)
        return bool(b.nonempty)

    if not holds(0.0):  # name the failed hypothesis if there is one, else the empty interval
        b = perturbed_interval_bounds(lam, r, 0.0, alpha=alpha, eta=eta, depth=depth, eps=eps, n_grid=n_grid)
        raise HypothesisError(f"no predicted low-rank interval even at delta = 0 (T_0 = {float(b.t0):.0f} > "
                              f"T_1 = {float(b.t1):.0f}): delta* is undefined")
    low, high = 0.0, float(lam[r - 1])  # beyond lambda_r the hypotheses fail
    if holds(high):
        return high
    while high - low > tol:
        mid = 0.5 * (low + high)
        low, high = (mid, high) if holds(mid) else (low, mid)
    return low


def eigenvalue_error_bound(eps, delta) -> np.ndarray:
    """Theorem B (THEORY.md §5): ``|λ_i(W(k)) − λ_i| <= ε + δ`` once the top ``r`` converged."""
    return check_positive("eps", eps) + check_finite("delta", delta)


def spectral_error_bound(eps, delta, tail=0.0) -> np.ndarray:
    """Theorem C (THEORY.md §6): ``‖W(k) − A‖₂ <= ε + λ_{r+1} + 2δ`` inside the interval
    (``tail = λ_{r+1}``, 0 for an exact rank-``r`` target)."""
    return check_positive("eps", eps) + check_finite("tail", tail) + 2 * check_finite("delta", delta)
