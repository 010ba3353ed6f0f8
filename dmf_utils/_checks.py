"""Input validation shared by the public functions: errors name the parameter,
its value and the allowed range (scikit-learn style)."""

from __future__ import annotations

import numbers

import numpy as np


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int, or raise naming ``name`` and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value} is out of range: must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}={value} is out of range: must be <= {maximum}")
    return value


def as_real(name: str, value) -> np.ndarray:
    """Return ``value`` as a float64 array; complex, string or object input is refused."""
    raw = np.asarray(value)
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers, got an array of dtype {raw.dtype}")
    return raw.astype(float)


def check_depth(value) -> np.ndarray:
    """Return ``value`` (the depth N) as an int64 array, or raise unless every entry is an int >= 2."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"depth must be an integer >= 2, got values of dtype {arr.dtype}")
    if (arr < 2).any():
        raise ValueError(f"depth must be an integer >= 2, got {arr[arr < 2].ravel()[0]}")
    return arr.astype(np.int64)


def check_positive(name: str, value) -> np.ndarray:
    """Return ``value`` as a float64 array whose entries are finite and > 0."""
    arr = as_real(name, value)
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        raise ValueError(f"{name} must be finite and > 0, got {arr[bad].ravel()[0]!r}")
    return arr


def check_nonnegative(name: str, value) -> np.ndarray:
    """Return ``value`` as a float64 array whose entries are finite and >= 0."""
    arr = as_real(name, value)
    bad = ~(np.isfinite(arr) & (arr >= 0))
    if bad.any():
        raise ValueError(f"{name} must be finite and >= 0, got {arr[bad].ravel()[0]!r}")
    return arr


def check_finite(name: str, value) -> np.ndarray:
    """Return ``value`` as a float64 array, or raise if it holds NaN or inf."""
    arr = as_real(name, value)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return arr


def check_square(name: str, value) -> np.ndarray:
    """Return ``value`` as a finite float64 ``(n, n)`` array."""
    arr = check_finite(name, value)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {arr.shape}")
    return arr
