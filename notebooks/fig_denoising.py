# %% [markdown]
# # Early stopping in the low-rank phase denoises
#
# **Claim.** Fitting a noisy target `Ã = A + E` (symmetric Wigner noise, `‖E‖₂ = δ`) by
# gradient descent from a small initialization, the error to the *clean* target
# `‖W(k) − A‖_F` is U-shaped in `k`: it falls while the signal is learned, stays low during
# the low-rank phase, and rises again as the noise is fitted, up to `‖Ã_+ − A‖_F` at
# convergence (THEORY.md §5, §6). Stopping at the bottom of the U — which lies inside the
# empirical low-rank interval — beats running to convergence by a factor that the figure
# reports, for every noise level below `δ*`.
#
# **What would falsify it.** A best stopping time outside the empirical low-rank interval,
# an early-stopping error not clearly below the converged one, or above THEORY.md §6's
# `√(2r)(ε + 2δ)`.
#
# The noise levels stay below `δ*`, where Theorem C predicts a nonempty interval (drawn as
# strips). **Choice of ε.** Along the way up, `‖W(k) − A‖_F` is smallest when each learned
# eigenvalue `p_i(k)` passes `ṽ_iᵀAṽ_i`, not `λ̃_i`; the offset
# `max_{i≤r} |λ̃_i − ṽ_iᵀAṽ_i|` grows like `δ²` (0.1 at `δ = 0.6` here, printed below). The
# interval's tolerance must exceed it, or the optimum falls a few iterations before the
# interval starts; `ε = 0.2` does, and the check below asserts it. Dynamics: the exact
# spectral reduction (THEORY.md §2); the Frobenius error is evaluated exactly in the
# eigenbasis of `Ã` at every record.

# %%
import numpy as np
import matplotlib.pyplot as plt

from dmf_utils.checks import CheckCount, report
from dmf_utils.dynamics import log_grid, monotone_step_limit, spectral_gd
from dmf_utils.metrics import frobenius_error_eigenbasis, lowrank_interval, spectral_truncation_error
from dmf_utils.plotting import apply_theme, noise_color, save_figure, shade_intervals
from dmf_utils.targets import eigh_descending, padded_spectrum, symmetric_target, wigner_noise
from dmf_utils.theory import critical_noise, perturbed_interval_bounds

apply_theme()

# %% tags=["parameters"]
n = 100  # matrix size
leading = [5.0, 4.0, 3.5, 3.0, 2.5]  # nonzero eigenvalues of the clean target A; their count is the rank r
depth = 3  # depth N
alpha = 0.05  # initialization scale: W_j(0) is alpha times the identity
eps = 0.2  # tolerance of the low-rank interval (spectral-norm distance of W(k) to the rank-r truncation)
step_fraction = 0.5  # step size as a fraction of 1 / (N (lambda_1 + delta_max)^(2 - 2/N))
deltas = [0.1, 0.2, 0.3, 0.45, 0.6]  # noise sizes ||E||_2, all below delta*
steps = 200000  # gradient steps (long enough for the noise to be fitted)
records = 1500  # log-spaced record points
min_factor = 2.0  # early stopping must beat convergence at least by this factor
seed = 0  # target basis and noise direction

# %%
r = len(leading)
rng = np.random.default_rng(seed)
target = symmetric_target(padded_spectrum(leading, n), rng)
unit_noise = wigner_noise(n, 1.0, rng)  # one noise direction, scaled to each delta
decomp = [eigh_descending(target.matrix + d * unit_noise) for d in deltas]
noisy = np.stack([lam for lam, _ in decomp])  # (delta, n)
eta = step_fraction * monotone_step_limit(target.eigenvalues[0] + max(deltas), depth)
kw = dict(alpha=alpha, eta=eta, depth=depth)
d_star = critical_noise(target.eigenvalues, r, **kw, eps=eps)

# %%
grid = log_grid(steps, records)
p = spectral_gd(noisy, **kw, steps=steps, record=grid).eigenvalues  # (record, delta, n)
error = np.stack([frobenius_error_eigenbasis(p[:, b], decomp[b][1], target.matrix)
                  for b in range(len(deltas))], axis=1)  # (record, delta)
best_index = error.argmin(axis=0)
best_time, best_error = grid[best_index], error.min(axis=0)
converged_error = np.array([np.linalg.norm((v * np.maximum(lam, 0)) @ v.T - target.matrix)
                            for lam, v in decomp])  # ||Ã_+ − A||_F, the limit (THEORY.md §5)
factor = converged_error / best_error
distance_r = spectral_truncation_error(p, noisy, r)  # ||W(k) − Ã_r||_2, (record, delta)
empirical = lowrank_interval(grid, distance_r, eps)
predicted = perturbed_interval_bounds(target.eigenvalues, r, np.array(deltas), **kw, eps=eps)
bound = np.sqrt(2 * r) * (eps + 2 * np.array(deltas))  # THEORY.md §6 (exact rank r: no tail)
offset = np.array([np.abs(lam[:r] - np.einsum("ij,ik,kj->j", v[:, :r], target.matrix, v[:, :r])).max()
                   for lam, v in decomp])  # max_{i<=r} |λ̃_i − ṽ_iᵀ A ṽ_i|

# %%
fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.8), gridspec_kw=dict(width_ratios=[1.5, 1]))
ax = axes[0]
colors = [noise_color(d) for d in deltas]
for b, d in enumerate(deltas):
    ax.plot(grid[1:], error[1:, b], color=colors[b], lw=2, label=f"δ = {d:g}")
    ax.plot(best_time[b], best_error[b], "o", color=colors[b], ms=6, mec="white")
    ax.axhline(converged_error[b], color=colors[b], ls=":", lw=1)
shade_intervals(ax, empirical.start, empirical.end, colors, band=(0.90, 0.99))  # empirical (top)
shade_intervals(ax, predicted.t0, np.minimum(predicted.t1, steps), colors, band=(0.78, 0.87))  # predicted
ax.plot([], [], "o", color="0.4", label="best stopping time")
ax.plot([], [], ":", color="0.4", label="$‖\\tilde A_+ − A‖_F$ (converged)")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_ylim(top=ax.get_ylim()[1] * 12)  # room for the interval strips
ax.set_xlabel("iteration k (log scale)")
ax.set_ylabel("error to the clean target $‖W(k) − A‖_F$ (log scale)")
ax.set_title("U-shaped error; strips: empirical (top) and predicted (THEORY.md §6)\nlow-rank interval, to the end of the run where it does not end")
ax.legend(fontsize="small", ncol=2, loc="lower left")
ax = axes[1]
ax.plot(deltas, converged_error, "s-", color="0.35", label="run to convergence")
ax.plot(deltas, best_error, "o-", color="C0", label="best early stopping")
ax.plot(deltas, bound, "--", color="C0", lw=1, label="bound $\\sqrt{2r}(ε + 2δ)$")
for d, c, f in zip(deltas, converged_error, factor):
    ax.annotate(f"×{f:.2f}", (d, c), textcoords="offset points", xytext=(0, 7), ha="center", fontsize="small")
ax.set_xlabel("noise size δ = $‖E‖_2$")
ax.set_ylabel("error to the clean target $‖W − A‖_F$")
ax.set_title(f"early stopping beats convergence by ×{factor.min():.2f} or more")
ax.legend(fontsize="small")
fig.suptitle(f"Denoising by early stopping (n = {n}, r = {r}, N = {depth}, α = {alpha:g}, ε = {eps:g}, "
             f"δ* = {d_star:.3f})")
fig.tight_layout()
save_figure(fig, "fig_denoising")
plt.show()

# %% [markdown]
# ## Checks (every noise level)
# * **Tolerance above the offset**: `ε > max_{i≤r} |λ̃_i − ṽ_iᵀAṽ_i|` (see the choice of ε).
# * **Best time inside the phase**: the best recorded stopping time lies inside the empirical
#   low-rank interval `‖W(k) − Ã_r‖₂ ≤ ε`.
# * **Early stopping wins**: the converged error is at least `min_factor` times the best one.
# * **U shape**: the best error is below both the initial and the converged error.
# * **§6 bound**: the best error is at most `√(2r)(ε + 2δ)`.

# %%
inside = empirical.found & (best_time >= empirical.start) & (best_time <= empirical.end)
for b, d in enumerate(deltas):
    print(f"delta={d:g}: best ||W-A||_F {best_error[b]:.4f} at k={best_time[b]} "
          f"(||W-A~_r||_2 there {distance_r[best_index[b], b]:.4f}, offset {offset[b]:.4f}), empirical interval "
          f"[{empirical.start[b]}, {empirical.end[b]}], predicted [{predicted.t0[b]:.0f}, {predicted.t1[b]:.0f}], "
          f"converged {converged_error[b]:.4f}, factor {factor[b]:.3f}")
print(f"delta* = {d_star:.4f}; early stopping beats convergence by a factor of at least {factor.min():.2f}")
report([
    CheckCount.of("precondition: tolerance eps above the Frobenius offset", offset < eps, "noise levels"),
    CheckCount.of("best stopping time inside the empirical interval", inside, "noise levels"),
    CheckCount.of(f"early stopping beats convergence by at least x{min_factor:g}", factor >= min_factor, "noise levels"),
    CheckCount.of("U shape", (best_error < error[0]) & (best_error < converged_error), "noise levels"),
    CheckCount.of("THEORY §6 denoising bound", best_error <= bound, "noise levels"),
    CheckCount.of("precondition: noise levels below delta*", np.array(deltas) < d_star, "noise levels"),
])
