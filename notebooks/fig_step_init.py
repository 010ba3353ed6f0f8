# %% [markdown]
# # Step size and initialization: where the low-rank phase is long
#
# **Claim.** The length of the low-rank interval is set by the initialization scale `α` and
# the step size `η`: it grows as either shrinks (leading order `α^{−(N−2)} / ((N−2) η)`,
# THEORY.md §4), the theory's interval `[T_0, T_1]` lies inside the empirical one wherever
# it applies (`η` below the step-size condition `1 / (N λ_1^{2−2/N})`), and gradient descent
# stays stable up to the stability limit `2 / (N λ_1^{2−2/N})` (THEORY.md §2), beyond which
# it oscillates or diverges (the engines refuse such steps, so that region is not run).
#
# **What would falsify it.** A predicted interval not contained in the empirical one, or the
# longest phase anywhere but at the smallest `α` and `η`.
#
# Target: spectrum `(λ_1, λ_r, λ_{r+1}) = (1, 0.5, 0.1)`, `r = 2` (a small tail, so the phase
# ends). Empirical lengths in the heatmaps come from trajectories recorded on a log grid
# (`‖W(k) − A_r‖₂ ≤ ε`, accurate to the grid spacing, in every regime of `η`); the
# containment check uses the exact passage times (THEORY.md §2), where the theory applies.

# %%
import numpy as np
import matplotlib.pyplot as plt
from matplotlib.colors import LogNorm

from dmf_utils.checks import CheckCount, empirical_times, interval_inside, report
from dmf_utils.dynamics import log_grid, monotone_step_limit, spectral_gd, stability_limit
from dmf_utils.metrics import lowrank_interval, spectral_truncation_error
from dmf_utils.plotting import apply_theme, save_figure
from dmf_utils.theory import escape_lower_bound, lowrank_interval_bounds

apply_theme()

# %% tags=["parameters"]
spectrum = [1.0, 0.5, 0.1]  # lambda_1, lambda_r and the tail eigenvalue lambda_{r+1} (r is 2)
eps = 0.05  # tolerance of the low-rank interval (spectral-norm distance of W(k) to A_r)
depths = [3, 4]  # one row of heatmaps per depth
alpha_ranges = [[0.05, 0.35], [0.1, 0.45]]  # alpha range (log) for each depth, alpha^N below eps
step_range = [0.02, 1.95]  # eta range as multiples of the monotone limit 1 / (N lambda_1^(2-2/N))
resolution = 24  # cells per axis
records = 400  # log-spaced record points of each trajectory
horizon_factor = 3  # simulate up to horizon_factor times the largest K_low(lambda_{r+1})
max_horizon = 2000000  # never simulate beyond this many steps

# %%
lam = np.array(spectrum)
r = lam.size - 1
rows = []
for depth, a_range in zip(depths, alpha_ranges):
    alphas = np.geomspace(*a_range, resolution)
    monotone = monotone_step_limit(lam[0], depth)
    etas = np.geomspace(*step_range, resolution) * monotone
    A, E = np.meshgrid(alphas, etas)  # (eta, alpha)
    bounds = lowrank_interval_bounds(lam, r, alpha=A, eta=E, depth=depth, eps=eps, strict=False)
    escape = escape_lower_bound(lam[r], alpha=A, eta=E, depth=depth, eps=eps)
    horizon = int(min(horizon_factor * escape.max(), max_horizon))
    grid = log_grid(horizon, records)
    traj = spectral_gd(lam, alpha=A, eta=E, depth=depth, steps=horizon, record=grid)
    recorded = lowrank_interval(grid, spectral_truncation_error(traj.eigenvalues, lam, r), eps)
    exact = empirical_times(lam, r, alpha=A, eta=E, depth=depth, eps=eps, horizon=horizon)
    rows.append(dict(depth=depth, alphas=alphas, etas=etas, monotone=monotone, bounds=bounds,
                     recorded=recorded, exact=exact, horizon=horizon,
                     stability=float(stability_limit(lam[0], depth))))

# %%
fig, axes = plt.subplots(len(rows), 2, figsize=(11, 4.6 * len(rows)), squeeze=False,
                         sharex="row", sharey="row", layout="constrained")
for row, (ax_p, ax_e) in zip(rows, axes):
    b, rec = row["bounds"], row["recorded"]
    predicted = np.where(b.nonempty, b.t1 - b.t0, np.nan)
    predicted = np.where(predicted > 0, predicted, np.nan)  # a one-point interval has no length on a log scale
    empirical = np.where(rec.found & (rec.length > 0), rec.length, np.nan).astype(float)
    values = np.concatenate([predicted[np.isfinite(predicted)], empirical[np.isfinite(empirical)]])
    norm = LogNorm(values.min(), values.max())
    for ax, data, title in ((ax_p, predicted, "predicted length $T_1 − T_0$ (Theorem A)"),
                            (ax_e, empirical, "empirical length")):
        ax.set_facecolor("#d9d9d9")  # cells without an interval (or where the theory is silent)
        mesh = ax.pcolormesh(row["alphas"], row["etas"], np.ma.masked_invalid(data), norm=norm,
                             cmap="viridis", shading="nearest")
        ax.axhline(row["monotone"], color="white", lw=1.5, ls="--")
        ax.axhline(row["stability"], color="C3", lw=2)
        ax.text(row["alphas"][0], row["monotone"] * 1.05, " step-size condition of the theory", color="white",
                va="bottom", fontsize="small")
        ax.text(row["alphas"][0], row["stability"] * 1.05, " stability limit: beyond it GD cannot converge (not run)",
                color="C3", va="bottom", fontsize="small")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(row["etas"][0] * 0.9, row["stability"] * 1.6)
        ax.set_xticks([t for t in (0.05, 0.1, 0.2, 0.3, 0.4) if row["alphas"][0] <= t <= row["alphas"][-1]])
        ax.xaxis.set_major_formatter("{x:g}")
        ax.xaxis.set_minor_formatter("")
        ax.set_title(f"N = {row['depth']}: {title}")
        ax.set_xlabel("initialization scale α (log scale)")
    ax_p.set_ylabel("step size η (log scale)")
    fig.colorbar(mesh, ax=[ax_p, ax_e], label="low-rank interval length (iterations, log scale)")
fig.suptitle(f"Small α and small η lengthen the low-rank phase\n(spectrum {tuple(spectrum)}, r = {r}, ε = {eps:g}); "
             "grey: no interval")
save_figure(fig, "fig_step_init")
plt.show()

# %% [markdown]
# ## Checks (every depth)
# * **Theorem A in the (α, η) plane**: wherever the theory predicts a nonempty interval, it
#   lies inside the empirical one (exact passage times).
# * **Longest phase at the smallest α and η**: the longest empirical interval is at the
#   corner of smallest `α` and `η`.

# %%
inside, corner = [], []
for row in rows:
    b, exact, rec = row["bounds"], row["exact"], row["recorded"]
    held = interval_inside(b, exact)[b.nonempty]
    inside.extend(held.tolist())
    longest = np.unravel_index(np.argmax(np.where(rec.found, rec.length, -1)), rec.length.shape)
    corner.append(longest == (0, 0))
    print(f"N={row['depth']}: {int(b.nonempty.sum())} cells with a predicted interval, "
          f"{int(rec.found.sum())} of {rec.found.size} with an empirical one; longest {int(rec.length.max())} "
          f"iterations at alpha={row['alphas'][longest[1]]:.3g}, eta={row['etas'][longest[0]]:.3g}; "
          f"horizon {row['horizon']}")
report([CheckCount.of("Theorem A in the (alpha, eta) plane", inside, "cells"),
        CheckCount.of("longest phase at the smallest alpha and eta", corner, "depths")])
