# %% [markdown]
# # Depth opens and lengthens the low-rank phase
#
# **Claim.** For a fixed noisy target, deeper factorizations have a longer low-rank phase and
# a larger ratio `T_1 / T_0` between its end and its start, in theory and in practice: the
# ratio grows towards the spectral gap (`(λ_r − δ)/(λ_{r+1} + δ)` for the bounds of
# THEORY.md §6, `λ̃_r / λ̃_{r+1}` for the true times), while for `N = 2` it stays close to 1
# (THEORY.md §4: depth sharpens the phase).
#
# **What would falsify it.** A ratio or a length that does not grow with depth, or a
# predicted interval not inside the empirical one.
#
# To compare depths fairly the *product* starts at the same scale, `α^N = init_product`
# (`α` grows with `N`), and every depth uses the same fraction of its step-size limit
# `1 / (N (λ_1 + δ)^{2−2/N})`. The empirical interval is measured exactly (passage times of
# the dynamics of THEORY.md §2) against `Ã_r`, for several noise draws.

# %%
import numpy as np
import matplotlib.pyplot as plt

from dmf_utils.checks import CheckCount, empirical_times, interval_inside, report
from dmf_utils.dynamics import monotone_step_limit
from dmf_utils.plotting import apply_theme, depth_color, save_figure
from dmf_utils.targets import eigh_descending, padded_spectrum, symmetric_target, wigner_noise
from dmf_utils.theory import perturbed_interval_bounds

apply_theme()

# %% tags=["parameters"]
n = 60  # matrix size
leading = [4.0, 3.0, 2.5, 2.0]  # nonzero eigenvalues of the clean target A; their count is the rank r
delta = 0.3  # noise size ||E||_2 (symmetric Wigner noise)
depths = [2, 3, 4, 5, 6, 7, 8]  # depths N
init_product = 0.0001  # scale of the product at initialization, alpha^N, the same for every depth
eps = 0.05  # tolerance of the low-rank interval (spectral-norm distance of W(k) to the rank-r truncation)
step_fraction = 0.5  # step size as a fraction of 1 / (N (lambda_1 + delta)^(2 - 2/N))
seeds = 3  # noise draws
seed = 0  # root seed: target basis and noise

# %%
r = len(leading)
depth = np.array(depths)
target = symmetric_target(padded_spectrum(leading, n), np.random.default_rng(seed))
noisy = np.stack([eigh_descending(target.matrix + wigner_noise(n, delta, np.random.default_rng([seed, s])))[0]
                  for s in range(seeds)])  # (seed, n)
alpha = init_product ** (1 / depth)
eta = step_fraction * monotone_step_limit(target.eigenvalues[0] + delta, depth)
bounds = perturbed_interval_bounds(target.eigenvalues, r, delta, alpha=alpha, eta=eta, depth=depth, eps=eps)
horizon = (3 * np.fmax(bounds.t0, np.where(np.isfinite(bounds.t1), bounds.t1, 0)) + 10).astype(np.int64)

# %%
times = empirical_times(noisy[:, None, :], r, alpha=alpha, eta=eta, depth=depth, eps=eps, horizon=horizon)
found = times.nonempty & (times.escape > 0)  # (seed, depth): interval that ends within the horizon
ratio = np.where(found, times.escape / np.maximum(times.convergence, 1), np.nan)
length = np.where(found, times.escape - 1 - times.convergence, np.nan)
predicted_ratio = np.where(bounds.nonempty, bounds.t1 / bounds.t0, np.nan)
predicted_length = np.where(bounds.nonempty, bounds.t1 - bounds.t0, np.nan)
gap_theory = (leading[-1] - delta) / delta  # (λ_r − δ)/(λ_{r+1} + δ), λ_{r+1} = 0
gap_true = noisy[:, r - 1] / noisy[:, r]  # λ̃_r / λ̃_{r+1}

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
for ax, emp, pred, what in ((axes[0], ratio, predicted_ratio, "ratio end / start, $T_1 / T_0$"),
                            (axes[1], length, predicted_length, "length $T_1 − T_0$ (iterations, log scale)")):
    ax.plot(depth[np.isfinite(pred)], pred[np.isfinite(pred)], "-", color="0.3", lw=2,
            label="theory: $T_0(δ), T_1(δ)$ (THEORY.md §6)")
    for s in range(seeds):
        ax.scatter(depth, emp[s], color=[depth_color(N) for N in depths], s=30, zorder=3)
    ax.scatter([], [], color="0.5", s=30, label="empirical (each noise draw; colour = depth)")
    ax.set_xlabel("depth N")
    ax.set_ylabel(f"low-rank interval: {what}")
    ax.set_xticks(depths)
axes[0].axhline(gap_theory, color="0.3", ls=":", lw=1, label="$(λ_r − δ)/(λ_{r+1} + δ)$")
axes[0].axhline(gap_true.mean(), color="C0", ls=":", lw=1, label="$\\tilde λ_r / \\tilde λ_{r+1}$ (mean over draws)")
axes[0].axhline(1, color="0.6", lw=0.8)
axes[0].set_title("depth opens the phase: end/start ratio")
axes[1].set_yscale("log")
axes[1].set_title("depth lengthens the phase")
for ax in axes:
    ax.legend(fontsize="small")
fig.suptitle(f"Low-rank phase against depth (n = {n}, r = {r}, δ = {delta:g}, $α^N$ = {init_product:g}, "
             f"ε = {eps:g}, {seeds} noise draws)")
fig.tight_layout()
save_figure(fig, "fig_depth")
plt.show()

# %% [markdown]
# ## Checks
# * **Predicted inside empirical**: for every depth and noise draw with a nonempty predicted
#   interval.
# * **Depth opens the phase**: the empirical ratio `T_1 / T_0` increases with `N` (each draw).
# * **Depth lengthens the phase**: the empirical length increases with `N` (each draw).

# %%
inside = interval_inside(bounds, times)[np.broadcast_to(bounds.nonempty, times.convergence.shape)]
for i, N in enumerate(depths):
    print(f"N={N}: alpha={alpha[i]:.4g}, eta={eta[i]:.4g}, predicted [{bounds.t0[i]:.0f}, {bounds.t1[i]:.0f}], "
          f"empirical start {times.convergence[:, i].tolist()}, end {(times.escape[:, i] - 1).tolist()}")
report([
    CheckCount.of("predicted interval inside the empirical one", inside, "cases"),
    CheckCount.of("ratio T_1/T_0 increases with depth", [bool(np.all(np.diff(x) > 0)) for x in ratio], "noise draws"),
    CheckCount.of("length increases with depth", [bool(np.all(np.diff(x) > 0)) for x in length], "noise draws"),
])
