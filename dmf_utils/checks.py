"""The theorems' statements tested on simulated trajectories (THEORY.md §4–6).

Measures the *true* times of the exact spectral dynamics (THEORY.md §2) that the bounds of
:mod:`dmf_utils.theory` predict, and compares the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_int, check_positive
from .dynamics import spectral_hitting_times
from .theory import IntervalBounds

__all__ = ["EmpiricalTimes", "empirical_times", "interval_inside", "CheckCount", "report"]


@dataclass(frozen=True)
class EmpiricalTimes:
    """True times of a batch of spectral trajectories (int64 arrays of the batch shape).

    Attributes
    ----------
    convergence : first ``k`` with ``λ_i − p_i(k) <= ε`` for every ``i <= r`` (the largest of
        the ``r`` passage times), ``-1`` if some passage is not within ``horizon``.
    escape : first ``k`` with ``p_{r+1}(k) > ε``, ``-1`` if none within ``horizon`` (always
        ``-1`` when ``λ_{r+1} <= ε``: that coordinate never exceeds ``ε``).
    horizon : last iteration examined.

    Under the step-size condition every ``p_i`` moves monotonically (THEORY.md §2), so
    these passages are final and the empirical low-rank interval is
    ``[convergence, escape − 1]``; the tail eigenvalues below ``λ_{r+1}`` escape later.
    """

    convergence: np.ndarray
    escape: np.ndarray
    horizon: np.ndarray

    @property
    def nonempty(self) -> np.ndarray:
        """The empirical low-rank interval is nonempty (within the horizon)."""
        return (self.convergence >= 0) & ((self.escape < 0) | (self.escape > self.convergence))


def empirical_times(spectrum, r: int, *, alpha, eta, depth, eps, horizon) -> EmpiricalTimes:
    """Exact convergence and escape times (see :class:`EmpiricalTimes`).

    Parameters
    ----------
    spectrum : array_like, shape (*batch, n), decreasing; the target being fitted (``λ̃``)
    r : int, ``1 <= r < n``
    alpha, eta, depth, eps : broadcastable to the batch
    horizon : int or array_like of int, broadcastable to the batch
    """
    lam = np.asarray(spectrum, dtype=float)
    r = check_int("r", r, minimum=1, maximum=lam.shape[-1] - 1)
    eps = check_positive("eps", eps)[..., None]
    top = lam[..., :r] - eps  # convergence level of each of the top r
    tail = np.where(lam[..., r:r + 1] > eps, eps, np.inf)  # escape level of λ_{r+1}
    batch = np.broadcast_shapes(top.shape[:-1], tail.shape[:-1])
    levels = np.concatenate([np.broadcast_to(top, batch + (r,)), np.broadcast_to(tail, batch + (1,))], -1)
    inclusive = np.arange(r + 1) < r  # convergence: p >= λ − ε; escape: p > ε
    hits = spectral_hitting_times(lam[..., : r + 1], levels, alpha=alpha, eta=eta, depth=depth,
                                  max_steps=horizon, inclusive=inclusive)
    conv = np.where((hits[..., :r] >= 0).all(axis=-1), hits[..., :r].max(axis=-1), -1)
    return EmpiricalTimes(conv, hits[..., r], np.broadcast_to(horizon, conv.shape).astype(np.int64))


def interval_inside(bounds: IntervalBounds, times: EmpiricalTimes) -> np.ndarray:
    """Predicted interval ``[T_0, T_1]`` inside the empirical one, per configuration.

    ``T_0 >= convergence`` (found), and ``escape > T_1``; an escape not found within the
    horizon counts only if the horizon reaches ``T_1`` (or ``T_1 = inf``). Entries whose
    predicted interval is void or empty are False: select them out before counting.
    """
    t0, t1 = bounds.t0, bounds.t1
    with np.errstate(invalid="ignore"):
        start_ok = (times.convergence >= 0) & (times.convergence <= t0)
        end_ok = np.where(times.escape >= 0, times.escape > t1, np.isinf(t1) | (times.horizon >= t1))
    return bounds.nonempty & start_ok & end_ok


@dataclass(frozen=True)
class CheckCount:
    """How many cases a check examined and in how many it held; prints as one line."""

    name: str
    checked: int
    held: int
    unit: str = "configurations"

    @classmethod
    def of(cls, name: str, held_mask, unit: str = "configurations") -> "CheckCount":
        mask = np.asarray(held_mask, dtype=bool)
        return cls(name, int(mask.size), int(mask.sum()), unit)

    @property
    def ok(self) -> bool:
        return self.checked > 0 and self.held == self.checked

    def __str__(self) -> str:
        return f"{self.name}: checked {self.checked} {self.unit}, held in {self.held}"


def report(checks) -> None:
    """Print one line per check, then raise AssertionError naming every check that failed.

    A notebook ends with ``report([...])``: nbval compares the printed lines and a plain run
    fails on the assertion, so both notice when a statement breaks.
    """
    checks = list(checks)
    for check in checks:
        print(check)
    failed = [str(c) for c in checks if not c.ok]
    assert not failed, "failed: " + "; ".join(failed)
