import numpy as np
import pytest

from dmf_utils.metrics import (
    effective_rank,
    frobenius_error_eigenbasis,
    frobenius_error,
    hitting_time,
    lowrank_interval,
    numerical_rank,
    spectral_error,
    spectral_truncation_error,
    stable_rank,
    truncated_spectrum,
)
from dmf_utils.targets import symmetric_target


def test_effective_rank_definition():
    """THEORY.md §7: exp of the entropy of normalized singular values; erank(0) = 0."""
    assert effective_rank(np.ones(7)) == pytest.approx(7.0)
    assert effective_rank([5.0, 0.0, 0.0]) == pytest.approx(1.0)
    assert effective_rank(np.zeros(4)) == 0.0
    q = np.array([4.0, 3.0, 2.5, 2.0]) / 11.5
    assert effective_rank([4.0, 3.0, 2.5, 2.0, 0.0]) == pytest.approx(np.exp(-(q * np.log(q)).sum()))
    batch = effective_rank(np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]))
    np.testing.assert_allclose(batch, [2.0, 1.0, 0.0])
    assert effective_rank(3.0 * np.arange(1.0, 6.0)) == pytest.approx(effective_rank(np.arange(1.0, 6.0)))
    with pytest.raises(ValueError, match="singular_values must be finite and >= 0"):
        effective_rank([1.0, -1.0])


def test_numerical_and_stable_rank():
    s = np.array([[3.0, 1.0, 0.01, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert numerical_rank(s, 0.05).tolist() == [2, 0]
    assert numerical_rank(s, 0.0).tolist() == [3, 0]
    np.testing.assert_allclose(stable_rank(s), [(9 + 1 + 1e-4) / 9, 0.0])
    w = np.random.default_rng(0).standard_normal((6, 6))
    sv = np.linalg.svd(w, compute_uv=False)
    assert stable_rank(sv) == pytest.approx(np.linalg.norm(w) ** 2 / np.linalg.norm(w, 2) ** 2)


def test_errors_match_numpy_norms_and_broadcast():
    rng = np.random.default_rng(1)
    w, m = rng.standard_normal((3, 4, 4)), rng.standard_normal((4, 4))
    np.testing.assert_allclose(spectral_error(w, m), [np.linalg.norm(x - m, 2) for x in w])
    np.testing.assert_allclose(frobenius_error(w, m), [np.linalg.norm(x - m) for x in w])
    with pytest.raises(ValueError, match="w must be finite"):
        spectral_error(np.full((2, 2), np.nan), np.eye(2))


def test_truncated_spectrum_keeps_largest_magnitudes():
    lam = np.array([3.0, 0.5, -2.0, 0.1])
    assert truncated_spectrum(lam, 2).tolist() == [3.0, 0.0, -2.0, 0.0]
    assert truncated_spectrum(lam, 0).tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="r=5 is out of range"):
        truncated_spectrum(lam, 5)


def test_spectral_truncation_error_equals_matrix_norm():
    t = symmetric_target([4.0, 3.0, 0.3, 0.1, -0.2], rng=0)
    p = np.array([[3.9, 2.5, 0.2, 0.0, 0.01], [4.0, 3.0, 0.0, 0.0, 0.0]])  # (R=2, n)
    got = spectral_truncation_error(p, t.eigenvalues, 2)
    v = t.eigenvectors
    a2 = (v * truncated_spectrum(t.eigenvalues, 2)) @ v.T
    expected = [np.linalg.norm((v * row) @ v.T - a2, 2) for row in p]
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_hitting_time():
    its = np.array([0, 1, 2, 5, 10])
    vals = np.array([[0.0, 0.0], [0.1, 0.0], [0.6, 0.2], [0.9, 0.4], [1.0, 0.45]])
    assert hitting_time(its, vals, 0.5).tolist() == [2, -1]
    assert hitting_time(its, vals, [0.05, 0.3]).tolist() == [1, 5]


def test_lowrank_interval_longest_run_in_iterations():
    its = np.array([0, 1, 2, 3, 100, 200, 300])
    #               in  in  in  in  out  in   in   -> runs [0, 3] (3 its) and [200, 300] (100 its)
    err = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    iv = lowrank_interval(its, err, 0.1)
    assert (int(iv.start), int(iv.end), bool(iv.found), bool(iv.open_end)) == (200, 300, True, True)
    assert int(iv.length) == 100


def test_lowrank_interval_batch_empty_and_closed():
    its = np.arange(6)
    err = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
    iv = lowrank_interval(its, err, 0.5)
    assert iv.start.tolist() == [1, 2, -1]
    assert iv.end.tolist() == [3, 4, -1]
    assert iv.found.tolist() == [True, True, False]
    assert iv.open_end.tolist() == [False, False, False]
    assert iv.length.tolist() == [2, 2, 0]
    with pytest.raises(ValueError, match="errors must have shape"):
        lowrank_interval(its, err[:4], 0.5)


def test_rank_measures_are_scale_free_at_the_extremes():
    for scale in (1e-200, 1e200, 1e308):
        assert stable_rank([scale, scale]) == pytest.approx(2.0)
        assert effective_rank([scale, scale]) == pytest.approx(2.0)


def test_inputs_are_validated():
    with pytest.raises(ValueError, match="strictly increasing"):
        lowrank_interval([0, 2, 1], [0.0, 0.0, 0.0], 0.1)
    with pytest.raises(ValueError, match="strictly increasing"):
        hitting_time([0.0, 1.0], [0.0, 1.0], 0.5)
    with pytest.raises(ValueError, match="non-empty"):
        lowrank_interval([], np.zeros((0,)), 0.1)
    with pytest.raises(TypeError, match="r must be an integer"):
        truncated_spectrum([1.0, 2.0], True)


def test_frobenius_error_eigenbasis_equals_the_matrix_norm():
    rng = np.random.default_rng(3)
    v = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    m = rng.standard_normal((6, 6))
    p = rng.standard_normal((4, 6))
    expected = [np.linalg.norm((v * row) @ v.T - m) for row in p]
    np.testing.assert_allclose(frobenius_error_eigenbasis(p, v, m), expected, rtol=1e-12)
