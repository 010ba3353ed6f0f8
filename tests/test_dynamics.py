import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmf_utils.dynamics import (
    DivergenceError,
    every_grid,
    full_gd,
    log_grid,
    monotone_step_limit,
    spectral_gd,
    stability_limit,
)
from dmf_utils.targets import padded_spectrum, symmetric_target


def test_reference_value_first_escape_is_94():
    """THEORY.md §8, first reference value: N=3, λ=1, α=0.1, η=0.1; first k with p(k)>0.5."""
    traj = spectral_gd([1.0], alpha=0.1, eta=0.1, depth=3, steps=200)
    p = traj.eigenvalues[:, 0]
    assert int(np.argmax(p > 0.5)) == 94


def test_step_limits_theory_section_2():
    assert stability_limit(4.0, 3) == pytest.approx(2 / (3 * 4.0 ** (4 / 3)))
    assert monotone_step_limit(4.0, 3) == pytest.approx(1 / (3 * 4.0 ** (4 / 3)))
    assert monotone_step_limit(1.0, 2) == pytest.approx(0.5)
    assert np.isinf(stability_limit(0.0, 3))
    assert stability_limit([1.0, 4.0], [[2], [3]]).shape == (2, 2)
    with pytest.raises(ValueError, match="depth must be an integer >= 2, got 1"):
        stability_limit(2.0, 1)


def test_negative_eigenvalues_count_in_the_stability_limit_for_depth_2():
    """N = 2: a coordinate with λ < 0 follows x ← x(1 + ηλ) near 0, stable iff η < 2/|λ|."""
    from dmf_utils.dynamics import spectrum_step_limit

    assert spectrum_step_limit([1.0, -10.0], 2) == pytest.approx(0.2)
    assert spectrum_step_limit([1.0, -10.0], 3) == pytest.approx(stability_limit(1.0, 3))
    converged = spectral_gd([1.0, -10.0], alpha=0.1, eta=0.15, depth=2, steps=2000).eigenvalues[-1]
    np.testing.assert_allclose(converged, [1.0, 0.0], atol=1e-12)
    full = full_gd(np.diag([1.0, -10.0]), alpha=0.1, eta=0.15, depth=2, steps=2000)
    np.testing.assert_allclose(full.singular_values[-1], [1.0, 0.0], atol=1e-12)
    for run in (lambda: spectral_gd([1.0, -10.0], alpha=0.1, eta=0.25, depth=2, steps=100),
                lambda: full_gd(np.diag([1.0, -10.0]), alpha=0.1, eta=0.25, depth=2, steps=100)):
        with pytest.raises(DivergenceError, match=r"2/\|lambda_n\| = 0.2 of the negative eigenvalue"):
            run()


def test_grids():
    assert every_grid(10, 4).tolist() == [0, 4, 8, 10]
    assert every_grid(3).tolist() == [0, 1, 2, 3]
    g = log_grid(10_000, 50)
    assert g[0] == 0 and g[-1] == 10_000 and np.all(np.diff(g) > 0) and g.size <= 51
    assert log_grid(0, 5).tolist() == [0]
    with pytest.raises(ValueError, match="every=0 is out of range"):
        every_grid(10, 0)


def test_record_grid_is_respected_and_validated():
    traj = spectral_gd([1.0, 0.5], alpha=0.1, eta=0.1, depth=2, steps=50, record=[0, 7, 50])
    full = spectral_gd([1.0, 0.5], alpha=0.1, eta=0.1, depth=2, steps=50)
    assert traj.iterations.tolist() == [0, 7, 50]
    np.testing.assert_array_equal(traj.eigenvalues, full.eigenvalues[[0, 7, 50]])
    for bad in ([0, 0, 5], [0, 60], [3.0, 4.0], []):
        with pytest.raises(ValueError, match="record"):
            spectral_gd([1.0], alpha=0.1, eta=0.1, depth=2, steps=50, record=bad)


def test_spectral_and_full_engines_agree():
    """Acceptance: n = 30, N = 3, identity init, 3,000 steps, agreement to 1e-10."""
    target = symmetric_target(padded_spectrum([4.0, 3.0, 2.5, 2.0, 0.3], 30), rng=0)
    eta = 0.5 * monotone_step_limit(4.0, 3)
    grid = every_grid(3000, 250)
    spec = spectral_gd(target.eigenvalues, alpha=0.1, eta=eta, depth=3, steps=3000, record=grid)
    full = full_gd(target.matrix, depth=3, alpha=0.1, eta=eta, steps=3000, record=grid)
    v = target.eigenvectors
    np.testing.assert_allclose(full.product, (v * spec.eigenvalues[-1]) @ v.T, rtol=0, atol=1e-10)
    sv_from_spectral = np.sort(np.abs(spec.eigenvalues), axis=-1)[:, ::-1]
    np.testing.assert_allclose(full.singular_values, sv_from_spectral, rtol=0, atol=1e-10)
    assert spec.eigenvalues[-1, 3] > 1.9  # the run did learn the signal


def test_batch_equals_separate_runs_and_mixes_depths():
    spectra = np.array([[2.0, 1.0, 0.0], [1.5, 0.5, -0.5]])
    depth = np.array([[2], [3], [4]])  # (3, 1) against (2, 3): batch (3, 2)
    eta = 0.4 * monotone_step_limit(spectra[:, 0], depth)
    batch = spectral_gd(spectra, alpha=0.2, eta=eta, depth=depth, steps=400, record=[0, 100, 400])
    assert batch.eigenvalues.shape == (3, 3, 2, 3)
    for d in range(3):
        for c in range(2):
            one = spectral_gd(spectra[c], alpha=0.2, eta=eta[d, c], depth=int(depth[d, 0]),
                              steps=400, record=[0, 100, 400])
            np.testing.assert_array_equal(batch.eigenvalues[:, d, c], one.eigenvalues)
    assert batch.depth.tolist() == [[2, 2], [3, 3], [4, 4]]


@settings(max_examples=60, deadline=None)
@given(
    lam=st.floats(0.05, 5.0),
    alpha=st.floats(0.01, 0.5),
    depth=st.integers(2, 6),
    fraction=st.floats(0.05, 0.99),
)
def test_monotone_convergence_under_step_condition(lam, alpha, depth, fraction):
    """THEORY.md §2: with η N λ^{2−2/N} < 1 and α^N < λ, p(k) increases to λ, never overshoots."""
    if alpha**depth >= lam:
        alpha = 0.5 * lam ** (1 / depth)
    eta = fraction * monotone_step_limit(lam, depth)
    traj = spectral_gd([lam, 0.0, -lam], alpha=alpha, eta=eta, depth=depth, steps=300)
    p = traj.eigenvalues
    ulp = 8 * np.finfo(float).eps * lam  # rounding once converged
    assert np.all(np.diff(p[:, 0]) >= -ulp) and np.all(p[:, 0] <= lam + ulp)
    # zero and negative targets: p stays in [0, α^N] (THEORY.md §2)
    assert np.all(p[:, 1:] >= 0) and np.all(p[:, 1:] <= alpha**depth * (1 + 1e-12))


def test_larger_eigenvalues_are_learned_first():
    traj = spectral_gd([3.0, 2.0, 1.0, 0.5], alpha=0.05, eta=0.5 * monotone_step_limit(3.0, 3),
                       depth=3, steps=5000)
    p = traj.eigenvalues
    assert np.all(np.diff(p[1:], axis=1) < 0)  # x_i(k) increasing in λ_i at every k >= 1


@pytest.mark.parametrize("engine", ["spectral", "full"])
def test_divergent_step_raises_naming_eta_and_limit(engine):
    """Acceptance: η = 3 / (N λ_1^{2−2/N}) raises an error naming η and the stability limit."""
    lam1, depth = 4.0, 3
    eta = 3 / (depth * lam1 ** (2 - 2 / depth))
    limit = stability_limit(lam1, depth)
    with pytest.raises(DivergenceError) as info:
        if engine == "spectral":
            spectral_gd([lam1, 1.0, 0.0], alpha=0.05, eta=eta, depth=depth, steps=1000)
        else:
            full_gd(np.diag([lam1, 1.0, 0.0]), alpha=0.05, eta=eta, depth=depth, steps=1000)
    message = str(info.value)
    assert f"eta={eta:.4g}" in message and f"= {limit:.4g}" in message
    assert "stability limit" in message and "THEORY.md §2" in message


@pytest.mark.parametrize("engine", ["spectral", "full"])
def test_runtime_blow_up_raises_instead_of_nan(engine):
    """Below the stability limit but started far too large: the iterates overflow."""
    eta = 0.9 * stability_limit(4.0, 3)
    with pytest.raises(DivergenceError, match="diverged by step"):
        if engine == "spectral":
            spectral_gd([4.0, 1.0], alpha=3.0, eta=eta, depth=3, steps=200)
        else:
            full_gd(np.diag([4.0, 1.0]), alpha=3.0, eta=eta, depth=3, steps=200)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alpha": 0.0}, "alpha must be finite and > 0"),
        ({"eta": -1.0}, "eta must be finite and > 0"),
        ({"depth": 1}, "depth must be an integer >= 2"),
        ({"depth": 2.5}, "depth must be an integer >= 2"),
        ({"steps": -1}, "steps=-1 is out of range"),
    ],
)
def test_spectral_gd_validates_inputs(kwargs, match):
    args = dict(alpha=0.1, eta=0.1, depth=3, steps=10) | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        spectral_gd([1.0], **args)


def _naive_step(ws, target, eta):
    """One gradient step written directly from THEORY.md §1 (independent of the engine)."""
    n, depth = target.shape[0], len(ws)

    def prod(mats):
        out = np.eye(n)
        for m in mats:
            out = m @ out
        return out

    resid = prod(ws) - target
    grads = [prod(ws[j + 1:]).T @ resid @ prod(ws[:j]).T for j in range(depth)]
    return [w - eta * g for w, g in zip(ws, grads)]


def test_full_gd_gradient_matches_the_loss_gradient_with_random_init():
    rng = np.random.default_rng(0)
    target = rng.standard_normal((5, 5))
    for depth in (2, 3, 4):
        gen = np.random.default_rng(9)
        ws = [(0.7 / np.sqrt(5)) * gen.standard_normal((5, 5)) for _ in range(depth)]
        for _ in range(3):
            ws = _naive_step(ws, target, 0.01)
        expected = np.eye(5)
        for w in ws:
            expected = w @ expected
        got = full_gd(target, depth=depth, alpha=0.7, eta=0.01, steps=3, init="gaussian", rng=9)
        np.testing.assert_allclose(got.product, expected, rtol=0, atol=1e-13)


def test_full_gd_uses_3n_minus_3_products_per_step(monkeypatch):
    calls = []
    real = np.matmul

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(np, "matmul", counting)
    for depth in (2, 3, 5):
        calls.clear()
        full_gd(np.eye(4), depth=depth, alpha=0.5, eta=0.01, steps=7, record=[0, 7])
        # 7 steps of 3N-3 products, plus the prefix products of the final record
        assert len(calls) == 7 * (3 * depth - 3) + (depth - 1)


def test_full_gd_records_errors_and_singular_values():
    target = symmetric_target([3.0, 1.0, 0.0, 0.0], rng=1)
    traj = full_gd(target.matrix, depth=3, alpha=0.2, eta=0.05, steps=2000, record=log_grid(2000, 20),
                   references={"A": target.matrix})
    assert traj.singular_values.shape == (traj.iterations.size, 4)
    assert np.all(np.diff(traj.singular_values, axis=1) <= 0)
    assert traj.spectral_errors["A"][0] == pytest.approx(3.0 - 0.2**3)
    # the zero eigenvalues decay only sublinearly for N = 3 (THEORY.md §5), hence 0.02
    assert traj.frobenius_errors["A"][-1] < 0.02 < 3 < traj.frobenius_errors["A"][0]


def test_full_gd_float32_and_threads_and_bad_inputs():
    traj = full_gd(np.diag([2.0, 1.0]), depth=3, alpha=0.3, eta=0.05, steps=500, dtype=np.float32,
                   blas_threads=None)
    assert traj.singular_values[-1] == pytest.approx([2.0, 1.0], abs=1e-4)
    with pytest.raises(ValueError, match="needs rng"):
        full_gd(np.eye(2), depth=2, alpha=0.1, eta=0.1, steps=1, init="gaussian")
    with pytest.raises(ValueError, match="init must be"):
        full_gd(np.eye(2), depth=2, alpha=0.1, eta=0.1, steps=1, init="orthogonal")
    with pytest.raises(ValueError, match="square"):
        full_gd(np.ones((2, 3)), depth=2, alpha=0.1, eta=0.1, steps=1)
    with pytest.raises(ValueError, match="blas_threads=0"):
        full_gd(np.eye(2), depth=2, alpha=0.1, eta=0.1, steps=1, blas_threads=0)
    with pytest.raises(TypeError, match="references must be a mapping"):
        full_gd(np.eye(2), depth=2, alpha=0.1, eta=0.1, steps=1, references=[np.eye(2)])
    with pytest.raises(TypeError, match="target must be real numbers"):
        full_gd(np.eye(2) * 1j, depth=2, alpha=0.1, eta=0.1, steps=1)
    with pytest.raises(ValueError, match="references\\['B'\\] has shape"):
        full_gd(np.eye(2), depth=2, alpha=0.1, eta=0.1, steps=1, references={"B": np.eye(3)})


def test_hitting_times_match_recorded_trajectories():
    from dmf_utils.dynamics import spectral_hitting_times

    lam = np.array([[1.0, 0.5, 0.1], [2.0, 0.3, 0.05], [1.5, 0.7, 0.2]])
    depth = np.array([3, 3, 4])
    eta = 0.4 * monotone_step_limit(lam[:, 0], depth)
    levels = np.array([0.5, 0.05, 0.05])
    hits = spectral_hitting_times(lam, levels, alpha=0.1, eta=eta, depth=depth, max_steps=20_000)
    for b in range(3):
        p = spectral_gd(lam[b], alpha=0.1, eta=eta[b], depth=int(depth[b]), steps=20_000).eigenvalues
        above = p > levels
        expected = np.where(above.any(axis=0), np.argmax(above, axis=0), -1)
        np.testing.assert_array_equal(hits[b], expected)
    capped = spectral_hitting_times(lam, levels, alpha=0.1, eta=eta, depth=depth, max_steps=[100, 300, 0])
    assert capped.tolist()[0][1:] == [-1, -1] and capped[2].tolist() == [-1, -1, -1]
    assert (spectral_hitting_times(lam, np.inf, alpha=0.1, eta=eta, depth=depth, max_steps=50) == -1).all()


def test_hitting_times_inclusive_and_errors():
    from dmf_utils.dynamics import spectral_hitting_times

    alpha = 0.5  # p(0) = α^2 = 0.25 exactly
    kw = dict(alpha=alpha, eta=0.1, depth=2, max_steps=5)
    assert spectral_hitting_times([0.0], 0.25, **kw, inclusive=True).tolist() == [0]
    assert spectral_hitting_times([0.0], 0.25, **kw).tolist() == [-1]
    with pytest.raises(DivergenceError, match="stability limit"):
        spectral_hitting_times([4.0], 1.0, alpha=0.1, eta=1.0, depth=3, max_steps=10)
    with pytest.raises(ValueError, match="levels must not be NaN"):
        spectral_hitting_times([1.0], np.nan, **kw)
    with pytest.raises(ValueError, match="max_steps"):
        spectral_hitting_times([1.0], 0.5, alpha=0.1, eta=0.1, depth=2, max_steps=-1)


def test_full_gd_float32_computes_in_float32(monkeypatch):
    """No silent promotion: every matrix product of a float32 run is float32 (numpy 2 turns
    float32 × np.float64 scalar into float64, which once made float32 runs 3× slower)."""
    dtypes = set()
    real = np.matmul

    def recording(*args, **kwargs):
        dtypes.update(str(a.dtype) for a in args + (kwargs["out"],))
        return real(*args, **kwargs)

    monkeypatch.setattr(np, "matmul", recording)
    for init in ("identity", "gaussian"):
        full_gd(np.diag([2.0, 1.0, 0.0]), depth=3, alpha=0.3, eta=0.05, steps=5, record=[5], init=init, rng=0,
                dtype=np.float32)
    assert dtypes == {"float32"}
