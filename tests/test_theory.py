"""THEORY.md §8 reference values and the bounds' laws (§3–6)."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dmf_utils.checks import empirical_times, interval_inside
from dmf_utils.dynamics import monotone_step_limit, spectral_gd
from dmf_utils.theory import (
    THETA_GRID,
    HypothesisError,
    convergence_upper_bound,
    critical_noise,
    eigenvalue_error_bound,
    escape_lower_bound,
    lowrank_interval_bounds,
    perturbed_interval_bounds,
    spectral_error_bound,
)

SPECTRUM = np.array([4.0, 3.0, 2.5, 2.0] + [0.0] * 56)


def test_theta_grid():
    assert THETA_GRID[0] == 0.05 and THETA_GRID[-1] == 0.95 and THETA_GRID.size == 19


@pytest.mark.parametrize("depth, k_up, k_low", [(2, 31, None), (3, 118, 64), (4, 629, 719), (5, 4297, 6561)])
def test_reference_two_eigenvalues(depth, k_up, k_low):
    """THEORY.md §8: λ = (1, 0.5), α = 0.1, ε = 0.01, η = 0.5 / N."""
    kw = dict(alpha=0.1, eta=0.5 / depth, depth=depth, eps=0.01)
    assert convergence_upper_bound(1.0, **kw) == k_up
    if k_low is None:  # α² = ε: the escape bound is void
        assert np.isnan(escape_lower_bound(0.5, **kw, strict=False))
        with pytest.raises(HypothesisError, match="alpha\\^N < eps"):
            escape_lower_bound(0.5, **kw)
    else:
        assert escape_lower_bound(0.5, **kw) == k_low


def test_reference_depth_opens_the_interval():
    """THEORY.md §8: the interval is empty for N = 3 (118 > 64), nonempty for N = 4, 5."""
    spectrum = np.array([1.0, 0.5])
    nonempty = [bool(lowrank_interval_bounds(spectrum, 1, alpha=0.1, eta=0.5 / n, depth=n, eps=0.01).nonempty)
                for n in (3, 4, 5)]
    assert nonempty == [False, True, True]


@pytest.mark.parametrize("delta, t0, t1", [(0.0, 599, np.inf), (0.4, 840, 1869)])
def test_reference_perturbed_interval(delta, t0, t1):
    """THEORY.md §8: spectrum (4, 3, 2.5, 2, 0, …), r = 4, N = 3, α = ε = 0.05."""
    eta = 0.5 / (3 * (4.0 + delta) ** (4 / 3))
    b = perturbed_interval_bounds(SPECTRUM, 4, delta, alpha=0.05, eta=eta, depth=3, eps=0.05)
    assert (float(b.t0), float(b.t1)) == (t0, t1)
    if delta == 0:
        a = lowrank_interval_bounds(SPECTRUM, 4, alpha=0.05, eta=eta, depth=3, eps=0.05)
        assert (float(a.t0), float(a.t1)) == (599, np.inf)


def test_perturbed_maximum_is_at_the_lower_end():
    """THEORY.md §8: the maximum of K_up over [λ_r − δ, λ_1 + δ] was at λ_r − δ."""
    eta = 0.5 / (3 * 4.4 ** (4 / 3))
    b = perturbed_interval_bounds(SPECTRUM, 4, 0.4, alpha=0.05, eta=eta, depth=3, eps=0.05)
    assert b.t0 == convergence_upper_bound(1.6, alpha=0.05, eta=eta, depth=3, eps=0.05)


def test_escape_bound_is_infinite_below_eps_and_vectorized():
    k = escape_lower_bound([0.01, 0.05, 0.5], alpha=0.1, eta=0.1, depth=3, eps=0.05)
    assert np.isinf(k[0]) and np.isinf(k[1]) and np.isfinite(k[2])
    grid = escape_lower_bound(0.5, alpha=[[0.1], [0.2]], eta=0.1, depth=[3, 4], eps=0.05)
    assert grid.shape == (2, 2)


def test_void_entries_are_explicit_never_negative():
    kw = dict(alpha=0.1, depth=3, eps=0.01)
    k = convergence_upper_bound([1.0, -1.0, 100.0], eta=0.1, **kw, strict=False)
    assert np.isfinite(k[0]) and np.isnan(k[1]) and np.isnan(k[2])  # λ <= 0; step too large
    with pytest.raises(HypothesisError, match="lambda > 0"):
        convergence_upper_bound(-1.0, eta=0.1, **kw)
    with pytest.raises(HypothesisError, match="alpha\\^N < lambda"):  # starts above its target
        convergence_upper_bound(0.1, alpha=0.9, eta=0.1, depth=2, eps=0.01)
    with pytest.raises(HypothesisError, match="step-size condition .* eta=0.1 >= 0.0007181 for lambda=100"):
        convergence_upper_bound(100.0, eta=0.1, **kw)
    with pytest.raises(HypothesisError, match="lambda_r > lambda_\\{r\\+1\\}"):
        lowrank_interval_bounds([1.0, 0.5, 0.5], 2, alpha=0.1, eta=0.1, depth=3, eps=0.01)
    with pytest.raises(HypothesisError, match="step-size condition"):
        perturbed_interval_bounds([1.0, 0.0], 1, 0.2, alpha=0.1, eta=0.3, depth=3, eps=0.01)
    with pytest.raises(HypothesisError, match="lambda_r - delta"):
        perturbed_interval_bounds([1.0, 0.0], 1, 0.6, alpha=0.1, eta=0.1, depth=3, eps=0.01)
    with pytest.raises(ValueError, match="sorted in decreasing order"):
        lowrank_interval_bounds([0.5, 1.0], 1, alpha=0.1, eta=0.1, depth=3, eps=0.01)


def test_critical_noise_separates_nonempty_from_empty():
    kw = dict(alpha=0.05, eta=0.5 / (3 * 4.4 ** (4 / 3)), depth=3, eps=0.05)
    d_star = critical_noise(SPECTRUM, 4, **kw)
    assert 0.4 < d_star < 1.0  # δ = 0.4 has a nonempty interval (THEORY.md §8)
    assert perturbed_interval_bounds(SPECTRUM, 4, d_star, **kw).nonempty
    assert not perturbed_interval_bounds(SPECTRUM, 4, d_star + 1e-4, **kw, strict=False).nonempty
    with pytest.raises(HypothesisError, match=r"T_0 = 118 > T_1 = 64\): delta\* is undefined"):
        critical_noise(np.array([1.0, 0.5]), 1, alpha=0.1, eta=0.5 / 3, depth=3, eps=0.01)
    with pytest.raises(HypothesisError, match="alpha\\^N=0.125 >= eps=0.05"):
        critical_noise(SPECTRUM, 4, alpha=0.5, eta=0.01, depth=3, eps=0.05)


def test_perturbed_bound_catches_the_peak_of_k_up_near_eps():
    """Regression: K_up peaks at λ of a few ε; with λ_r − δ there, 64 equally spaced points
    missed the peak and T_0(δ) fell below a true convergence time (39069)."""
    kw = dict(alpha=0.07622, eta=0.025421, depth=3, eps=0.0044018)
    bounds = perturbed_interval_bounds([1.9455, 0.0082047, 0.0], 2, 0.0027604, **kw)
    noisy = np.array([1.9455, 0.0085528, 0.0027604])  # within δ of the clean spectrum
    times = empirical_times(noisy, 2, **kw, horizon=100_000)
    assert times.convergence > 39_000 and bounds.t0 >= times.convergence


def test_error_bounds():
    assert eigenvalue_error_bound(0.05, 0.4) == pytest.approx(0.45)
    assert spectral_error_bound(0.05, 0.4) == pytest.approx(0.85)
    assert spectral_error_bound(0.05, 0.4, tail=0.1) == pytest.approx(0.95)


admissible = dict(
    lam=st.floats(0.2, 3.0),
    ratio=st.floats(0.05, 0.95),
    scale=st.floats(1e-3, 0.9),
    depth=st.integers(2, 5),
    fraction=st.floats(0.1, 0.98),
    eps=st.floats(0.01, 0.1),
)


@settings(max_examples=80, deadline=None)
@given(**admissible)
def test_true_times_respect_the_bounds(lam, ratio, scale, depth, fraction, eps):
    """Property (THEORY.md §3): convergence never later than K_up, escape never by K_low."""
    alpha = (scale * eps) ** (1 / depth)  # α^N < ε
    mu = ratio * lam
    assume(mu > eps)
    eta = fraction * monotone_step_limit(lam, depth)
    k_up = convergence_upper_bound(lam, alpha=alpha, eta=eta, depth=depth, eps=eps)
    k_low = escape_lower_bound(mu, alpha=alpha, eta=eta, depth=depth, eps=eps)
    assume(max(k_up, k_low) < 300_000)
    times = empirical_times([lam, mu], 1, alpha=alpha, eta=eta, depth=depth, eps=eps,
                            horizon=int(max(k_up, k_low)) + 1)
    assert 0 <= times.convergence <= k_up
    assert times.escape < 0 or times.escape > k_low


def test_empirical_times_match_the_recorded_trajectory():
    lam = np.array([1.0, 0.6, 0.2])
    kw = dict(alpha=0.1, eta=0.5 * monotone_step_limit(1.0, 3), depth=3)
    times = empirical_times(lam, 2, **kw, eps=0.05, horizon=20_000)
    p = spectral_gd(lam, **kw, steps=20_000).eigenvalues
    conv = max(int(np.argmax(lam[i] - p[:, i] <= 0.05)) for i in range(2))
    assert times.convergence == conv and times.escape == int(np.argmax(p[:, 2] > 0.05))
    assert times.nonempty


def test_interval_inside_handles_horizon_and_infinity():
    lam = np.array([[1.0, 0.5, 0.3], [1.0, 0.5, 0.03]])
    kw = dict(alpha=0.1, eta=0.1, depth=4, eps=0.05)
    bounds = lowrank_interval_bounds(lam, 2, **kw)
    assert np.isfinite(bounds.t1[0]) and np.isinf(bounds.t1[1])
    long = empirical_times(lam, 2, **kw, horizon=int(bounds.t1[0]) + 1)
    assert interval_inside(bounds, long).tolist() == [True, True]
    short = empirical_times(lam, 2, **kw, horizon=int(bounds.t0.max()))  # escape beyond the horizon
    assert interval_inside(bounds, short).tolist() == [False, True]


def test_check_count_line_and_ok():
    from dmf_utils.checks import CheckCount

    c = CheckCount.of("Theorem A", [True, True, False])
    assert str(c) == "Theorem A: checked 3 configurations, held in 2" and not c.ok
    assert CheckCount.of("x", [True], unit="cases").ok
    assert not CheckCount.of("empty", []).ok  # a check that examined nothing did not hold
