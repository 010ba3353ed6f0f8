# %% [markdown]
# # Theorem B: convergence, iteration complexity and eigenvalue recovery under noise
#
# **Statement (THEORY.md §5).** Fit `Ã = A + E` with symmetric noise `‖E‖₂ = δ`, step size
# `η N (λ_1 + δ)^{2−2/N} < 1`. Then
# 1. **iteration complexity of the signal**: the top `r` eigenvalues of `W(k)` are within `ε` of
#    `λ̃_1, …, λ̃_r` after at most `T_0(δ) = max_{λ ∈ [λ_r − δ, λ_1 + δ]} K_up(λ)` steps;
# 2. **eigenvalue recovery**: from then on `|λ_i(W(k)) − λ_i| ≤ ε + δ` for `i ≤ r`;
# 3. **full convergence** to `Ã_+` within `ε` takes at most `max_{λ̃_i > ε} K_up(λ̃_i)` steps,
#    which grows like `1 / λ̃_min^+` (the smallest eigenvalue of `Ã` above `ε`): noise that
#    creates small positive eigenvalues makes it slow — by a factor of 20 here, for any
#    `δ > 0`, since Wigner noise always puts eigenvalues just above `ε` — while the signal's
#    complexity changes only by a factor about `λ_r / (λ_r − δ)`.
#
# **How it is checked.** A sweep over `δ` and noise draws; the exact spectral dynamics of
# THEORY.md §2 give the true passage times at every step, and the eigenvalues of `W(k)` are
# recorded on a log grid for the recovery check. Every case must satisfy all three
# statements. The bounds are this project's derivation (THEORY.md §3).

# %%
import numpy as np
import matplotlib.pyplot as plt

from dmf_utils.checks import CheckCount, report
from dmf_utils.dynamics import log_grid, monotone_step_limit, spectral_gd, spectral_hitting_times
from dmf_utils.plotting import apply_theme, noise_color, save_figure
from dmf_utils.targets import eigh_descending, padded_spectrum, symmetric_target, wigner_noise
from dmf_utils.theory import convergence_upper_bound, eigenvalue_error_bound, perturbed_interval_bounds

apply_theme()

# %% tags=["parameters"]
n = 60  # matrix size
leading = [4.0, 3.0, 2.5, 2.0]  # nonzero eigenvalues of the clean target A; their count is the rank r
depth = 3  # depth N
alpha = 0.05  # initialization scale: W_j(0) is alpha times the identity
eps = 0.05  # accuracy demanded of each eigenvalue
step_fraction = 0.5  # step size as a fraction of 1 / (N (lambda_1 + delta)^(2 - 2/N))
deltas = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]  # noise sizes ||E||_2 (symmetric Wigner noise)
seeds = 5  # noise draws per delta
seed = 0  # root seed: target basis and noise
records = 300  # log-spaced record points for the recovery check

# %%
r = len(leading)
rng = np.random.default_rng(seed)
target = symmetric_target(padded_spectrum(leading, n), rng)
noise_dirs = [wigner_noise(n, 1.0, np.random.default_rng([seed, s])) for s in range(seeds)]
delta = np.repeat(deltas, seeds)  # (case,)
noisy = np.stack([eigh_descending(target.matrix + dl * noise_dirs[s])[0]
                  for dl in deltas for s in range(seeds)])  # (case, n): λ̃, decreasing
eta = step_fraction * monotone_step_limit(target.eigenvalues[0] + delta, depth)  # (case,)
kw = dict(alpha=alpha, eta=eta, depth=depth, eps=eps)

# %%
# bounds: signal (T_0(δ)), per-draw signal, and full convergence (coordinates with λ̃_i > ε)
signal_bound = perturbed_interval_bounds(target.eigenvalues, r, delta, **kw).t0
per_coordinate = convergence_upper_bound(np.where(noisy > eps, noisy, 1.0), **{k: v[:, None] if k == "eta" else v
                                                                             for k, v in kw.items()})
per_coordinate = np.where(noisy > eps, per_coordinate, 0.0)  # λ̃_i <= ε: accurate from the start
draw_bound = per_coordinate[:, :r].max(axis=1)
full_bound = per_coordinate.max(axis=1)

# true times: first k with p_i(k) >= λ̃_i − ε for every λ̃_i > ε (final, by monotonicity, §2)
levels = np.where(noisy > eps, noisy - eps, np.inf)
horizon = int(full_bound.max()) + 1
hits = spectral_hitting_times(noisy, levels, alpha=alpha, eta=eta, depth=depth, max_steps=horizon,
                              inclusive=True)
signal_time = np.where((hits[:, :r] >= 0).all(axis=1), hits[:, :r].max(axis=1), -1)
full_found = ((hits >= 0) | ~np.isfinite(levels)).all(axis=1)
full_time = np.where(full_found, hits.max(axis=1), -1)

# eigenvalue recovery on recorded iterates after the signal has converged
grid = log_grid(horizon, records)
p = spectral_gd(noisy, alpha=alpha, eta=eta, depth=depth, steps=horizon, record=grid).eigenvalues
after = grid[:, None] >= signal_time[None, :]  # (record, case)
recovery_error = np.abs(p[:, :, :r] - target.eigenvalues[:r]).max(axis=-1)  # (record, case)
worst_recovery = np.where(after, recovery_error, -np.inf).max(axis=0)  # (case,)
smallest_positive = np.where(noisy > eps, noisy, np.inf).min(axis=1)

# %%
fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.3))
colors = [noise_color(d) for d in delta]
jitter = (np.tile(np.arange(seeds), len(deltas)) - (seeds - 1) / 2) * 0.006
ax = axes[0]
ax.scatter(delta + jitter, signal_time, s=14, c=colors, label="true (each noise draw)", zorder=3)
ax.plot(deltas, signal_bound[::seeds], color="0.2", lw=2, label="bound $T_0(δ)$")
ax.scatter(delta + jitter, draw_bound, s=10, marker="_", color="0.5", label="bound $\\max_{i≤r} K_{up}(\\tilde λ_i)$")
ax.set_xlabel("noise size δ = $‖E‖_2$")
ax.set_ylabel("iterations until the top r are ε-accurate")
ax.set_title("1. iteration complexity of the signal")
ax.legend(fontsize="small")
ax = axes[1]
ax.scatter(delta + jitter, worst_recovery, s=14, c=colors, label="max over k after convergence, $i ≤ r$", zorder=3)
ax.plot(deltas, eigenvalue_error_bound(eps, np.array(deltas)), color="0.2", lw=2, label="bound ε + δ")
ax.set_xlabel("noise size δ = $‖E‖_2$")
ax.set_ylabel("eigenvalue error $|λ_i(W(k)) − λ_i|$")
ax.set_title("2. eigenvalue recovery")
ax.legend(fontsize="small")
ax = axes[2]
lam_axis = np.geomspace(smallest_positive.min() * 0.8, target.eigenvalues[0], 200)
eta_mid = step_fraction * float(monotone_step_limit(target.eigenvalues[0] + max(deltas), depth))
ax.plot(lam_axis, convergence_upper_bound(lam_axis, alpha=alpha, eta=eta_mid, depth=depth, eps=eps),
        color="0.4", lw=1, ls="--", label=f"$K_{{up}}(λ)$ at the largest δ's step")
ax.scatter(smallest_positive, full_time, s=16, c=colors, zorder=3, label="true (each case; colour: δ)")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("smallest eigenvalue $\\tilde λ_{min}^+$ of Ã above ε (log scale)")
ax.set_ylabel("iterations until W(k) is ε-close to $\\tilde A_+$ (log scale)")
ax.set_title("3. full convergence waits for the smallest\npositive eigenvalue (∝ 1/λ)")
ax.legend(fontsize="small")
fig.suptitle(f"Theorem B under symmetric noise (n = {n}, r = {r}, N = {depth}, α = {alpha:g}, ε = {eps:g}, "
             f"$η = {step_fraction:g} / (N (λ_1 + δ)^{{2−2/N}})$, {seeds} noise draws per δ)")
fig.tight_layout()
save_figure(fig, "thm_b_perturbed_convergence")
plt.show()

# %% [markdown]
# ## Checks (every case: each `δ` and noise draw)
# 1. The top `r` eigenvalues become `ε`-accurate, no later than `T_0(δ)`.
# 2. From then on, on every recorded iterate, `|λ_i(W(k)) − λ_i| ≤ ε + δ` for `i ≤ r`.
# 3. Full `ε`-convergence to `Ã_+` happens, no later than `max_{λ̃_i > ε} K_up(λ̃_i)`.

# %%
recorded = int(after.sum())
checks = [
    CheckCount.of("Theorem B, signal complexity", (signal_time >= 0) & (signal_time <= signal_bound), "cases"),
    CheckCount.of("Theorem B, eigenvalue recovery", (np.where(after, recovery_error, 0)
                                                     <= eigenvalue_error_bound(eps, delta)).all(axis=0), "cases"),
    CheckCount.of("Theorem B, full convergence", full_found & (full_time <= full_bound), "cases"),
]
print(f"recovery checked on {recorded} recorded iterates after convergence")
for d in deltas:
    m = delta == d
    print(f"delta={d:.2f}: signal time {int(signal_time[m].min())}-{int(signal_time[m].max())} "
          f"(bound {int(signal_bound[m][0])}), full convergence {int(full_time[m].min())}-{int(full_time[m].max())} "
          f"(smallest lambda~ above eps: {smallest_positive[m].min():.3g})")
report(checks)
