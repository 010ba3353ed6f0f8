import numpy as np
import pytest

from dmf_utils.targets import (
    best_rank_r,
    eigh_descending,
    gaussian_noise,
    padded_spectrum,
    random_orthogonal,
    symmetric_target,
    wigner_noise,
)


def test_padded_spectrum():
    assert padded_spectrum([4, 3], 4).tolist() == [4.0, 3.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="n=1 is out of range"):
        padded_spectrum([4, 3], 1)


def test_random_orthogonal_is_orthogonal_and_seeded():
    q = random_orthogonal(7, 3)
    np.testing.assert_allclose(q.T @ q, np.eye(7), atol=1e-13)
    np.testing.assert_array_equal(q, random_orthogonal(7, np.random.default_rng(3)))
    assert not np.allclose(q, random_orthogonal(7, 4))


def test_symmetric_target_has_the_given_spectrum():
    t = symmetric_target([2.0, 4.0, 0.0, 3.0], rng=0)
    assert t.eigenvalues.tolist() == [4.0, 3.0, 2.0, 0.0]
    np.testing.assert_allclose(t.matrix, t.matrix.T, atol=0)
    np.testing.assert_allclose(t.matrix @ t.eigenvectors, t.eigenvectors * t.eigenvalues, atol=1e-13)
    np.testing.assert_allclose(np.linalg.eigvalsh(t.matrix)[::-1], t.eigenvalues, atol=1e-13)


@pytest.mark.parametrize("bad", [[], [[1.0, 2.0]], [1.0, np.nan]])
def test_symmetric_target_rejects_bad_spectra(bad):
    with pytest.raises(ValueError, match="spectrum"):
        symmetric_target(bad, rng=0)


def test_eigh_descending_orders_and_checks_symmetry():
    t = symmetric_target([1.0, -2.0, 3.0], rng=1)
    lam, v = eigh_descending(t.matrix)
    assert lam.tolist() == pytest.approx([3.0, 1.0, -2.0])
    np.testing.assert_allclose((v * lam) @ v.T, t.matrix, atol=1e-13)
    with pytest.raises(ValueError, match="symmetric"):
        eigh_descending(np.triu(np.ones((3, 3))))


def test_best_rank_r_is_eckart_young():
    a = np.random.default_rng(0).standard_normal((6, 6))
    s = np.linalg.svd(a, compute_uv=False)
    for r in range(7):
        ar = best_rank_r(a, r)
        assert np.linalg.matrix_rank(ar, tol=1e-10) == r
        expected = s[r] if r < 6 else 0.0
        assert np.linalg.norm(a - ar, 2) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="r=7 is out of range"):
        best_rank_r(a, 7)


def test_best_rank_r_of_symmetric_keeps_largest_magnitude():
    t = symmetric_target([3.0, -5.0, 1.0], rng=2)
    lam = np.linalg.eigvalsh(best_rank_r(t.matrix, 2))
    assert sorted(lam.round(10)) == [-5.0, 0.0, 3.0]


def test_wigner_noise_is_symmetric_with_norm_delta():
    e = wigner_noise(50, 0.3, rng=0)
    np.testing.assert_array_equal(e, e.T)
    assert np.linalg.norm(e, 2) == pytest.approx(0.3, rel=1e-12)
    # Frobenius norm close to sqrt(n) * delta / 2 for Wigner noise (THEORY.md §6)
    assert np.linalg.norm(e) == pytest.approx(np.sqrt(50) * 0.3 / 2, rel=0.15)
    np.testing.assert_array_equal(e, wigner_noise(50, 0.3, rng=0))


def test_gaussian_noise_is_not_symmetric_with_norm_delta():
    e = gaussian_noise(20, 0.7, rng=np.random.default_rng(5))
    assert not np.allclose(e, e.T)
    assert np.linalg.norm(e, 2) == pytest.approx(0.7, rel=1e-12)


@pytest.mark.parametrize("noise", [wigner_noise, gaussian_noise])
def test_noise_of_size_zero_and_bad_delta(noise):
    assert not noise(5, 0.0, rng=0).any()
    with pytest.raises(ValueError, match="delta must be finite and >= 0"):
        noise(5, -0.1, rng=0)


def test_best_rank_r_with_tied_magnitudes_stays_symmetric():
    from dmf_utils.metrics import truncated_spectrum

    t = symmetric_target([3.0, 1.0, 0.2, 0.0, -0.5, -1.0], rng=0)  # |1| = |-1| tie at r = 2
    b = best_rank_r(t.matrix, 2)
    np.testing.assert_array_equal(b, b.T)
    v = t.eigenvectors
    np.testing.assert_allclose(b, (v * truncated_spectrum(t.eigenvalues, 2)) @ v.T, atol=1e-12)


def test_complex_input_is_refused():
    with pytest.raises(TypeError, match="spectrum must be real numbers"):
        symmetric_target([1.0 + 1j, 2.0], rng=0)
