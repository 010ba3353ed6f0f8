"""Engine benchmark: throughput against a bound measured in the same run (issue 6).

Prints one table row per case: engine, n, N, dtype, achieved rate, the bound measured in
the same run, and their ratio.

* Full-matrix engine: steps/s of ``full_gd`` against the rate of its own ``3N − 3`` matrix
  products alone (the same shapes, preallocated outputs, one BLAS thread), measured
  back to back; the ratio is the share of time spent in matrix products.
* Spectral engine: coordinate updates per second (configurations × eigenvalues × steps)
  of ``spectral_gd`` and ``spectral_hitting_times`` on one core, against the plain
  in-place numpy loop (the issue's reference, 4–5 × 10⁸ here).

Usage: ``python benchmarks/bench.py [--quick]``. Timings are best of ``repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from dmf_utils.dynamics import full_gd, monotone_step_limit, spectral_gd, spectral_hitting_times  # noqa: E402


def best_of(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_bound(n, depth, dtype, steps, repeat):
    """Seconds per step of 3N − 3 preallocated n × n products (the engine's own shapes)."""
    rng = np.random.default_rng(0)
    a = [rng.standard_normal((n, n)).astype(dtype) for _ in range(3)]
    out = np.empty((n, n), dtype=dtype)

    def products():
        for _ in range(steps):
            for _ in range(3 * depth - 3):
                np.matmul(a[0], a[1].T, out=out)

    return best_of(products, repeat) / steps


def full_engine(n, depth, dtype, steps, repeat):
    """Seconds per step of ``full_gd``: runs of ``steps`` and ``2 steps`` differenced, so the
    one-off costs (start-up checks, the SVD of the recorded product) cancel."""
    target = np.diag(np.linspace(1.0, 0.0, n))
    eta = 0.5 * float(monotone_step_limit(1.0, depth))

    def run(count):
        return lambda: full_gd(target, depth=depth, alpha=0.3, eta=eta, steps=count, record=[count],
                               init="gaussian", rng=1, dtype=dtype, blas_threads=1)

    return (best_of(run(2 * steps), repeat) - best_of(run(steps), repeat)) / steps


def plain_spectral_loop(lam, alpha, eta, depth, steps):
    """The issue's reference: a simple in-place numpy loop over the same arrays."""
    x = np.full_like(lam, alpha)
    t = np.empty_like(x)
    for _ in range(steps):
        np.power(x, depth - 1, out=t)
        x -= eta * t * (t * x - lam)


def spectral_rates(pairs, depth, steps, repeat):
    rng = np.random.default_rng(2)
    n = 10
    lam = rng.uniform(0.1, 1.0, (pairs // n, n))
    eta = 0.5 * float(monotone_step_limit(1.0, depth))
    alpha = 0.05
    updates = pairs * steps
    gd = best_of(lambda: spectral_gd(lam, alpha=alpha, eta=eta, depth=depth, steps=steps, record=[0, steps]), repeat)
    levels = np.full(lam.shape, 2.0)  # never reached: every configuration works for all steps
    hit = best_of(lambda: spectral_hitting_times(lam, levels, alpha=alpha, eta=eta, depth=depth, max_steps=steps),
                  repeat)
    plain = best_of(lambda: plain_spectral_loop(lam, alpha, eta, depth, steps), repeat)
    return updates / gd, updates / hit, updates / plain


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats (a smoke run)")
    args = parser.parse_args()
    repeat = 2 if args.quick else 3
    blas = [f"{i['internal_api']} {i['version']}" for i in threadpool_info() if i["user_api"] == "blas"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}; numpy {np.__version__}; BLAS {', '.join(blas)}")
    header = f"{'engine':<22}{'n':>5}{'N':>3} {'dtype':<8}{'rate':>14}  {'bound (same run)':>18}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    with threadpool_limits(limits=1, user_api="blas"):
        for n in (100, 256, 512):
            steps = {100: 1000, 256: 150, 512: 30}[n] // (4 if args.quick else 1)
            for depth in (3, 5):
                for dtype in (np.float64, np.float32):
                    bound = matmul_bound(n, depth, dtype, steps, repeat)
                    engine = full_engine(n, depth, dtype, steps, repeat)
                    print(f"{'full_gd':<22}{n:>5}{depth:>3} {np.dtype(dtype).name:<8}"
                          f"{1 / engine:>10.0f} it/s  {1 / bound:>12.0f} it/s{bound / engine:>8.1%}")
    pairs = 200_000
    for depth in (3, 5):
        steps = 200 if args.quick else 1000
        gd, hit, plain = spectral_rates(pairs, depth, steps, repeat)
        for name, rate in (("spectral_gd", gd), ("spectral_hitting_times", hit)):
            print(f"{name:<22}{pairs:>5}{depth:>3} {'float64':<8}{rate:>10.3g} up/s  "
                  f"{plain:>12.3g} up/s{rate / plain:>8.1%}")
    print("(spectral rows: n = (eigenvalue, configuration) pairs; bound = plain in-place numpy loop)")


if __name__ == "__main__":
    main()
