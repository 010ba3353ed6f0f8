# %% [markdown]
# # Theorem A: spectral conditions for a low-rank phase (no noise)
#
# **Statement (THEORY.md §4).** For a clean PSD target with `λ_r > λ_{r+1}`, `α^N < ε` and
# `η N λ_1^{2−2/N} < 1`, let `T_0 = max_{i≤r} K_up(λ_i)` and `T_1 = K_low(λ_{r+1})`
# (THEORY.md §3). Then every iterate with `T_0 ≤ k ≤ T_1` satisfies `‖W(k) − A_r‖₂ ≤ ε`:
# the **predicted interval lies inside the empirical low-rank interval**. The spectral
# condition for a nonempty phase is `T_0 ≤ T_1`; it ties together the gap
# `λ_r / λ_{r+1}`, the initialization `α`, the step `η` and the depth `N`.
#
# **How it is checked.** A sweep over depth, `α`, gap and `η`; for every configuration where
# the hypotheses hold and `T_0 ≤ T_1`, the true convergence and escape times of the exact
# dynamics (THEORY.md §2, every step) must bracket `[T_0, T_1]`. A single violation fails the
# notebook. The spectrum is `(λ_1, λ_r, λ_{r+1})` with `r = 2`: the interval depends on the
# top `r` and on `λ_{r+1}` only, since smaller tail eigenvalues escape later (§2, monotone
# in `λ`). The gaps keep `λ_{r+1} > ε`, so `T_1` is finite and both ends of every interval
# are tested. The bounds are this project's derivation (THEORY.md §3), shown with their
# tightness.

# %%
import itertools

import numpy as np
import matplotlib.pyplot as plt
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from dmf_utils.checks import CheckCount, empirical_times, interval_inside, report
from dmf_utils.dynamics import monotone_step_limit
from dmf_utils.plotting import apply_theme, depth_color, save_figure
from dmf_utils.theory import lowrank_interval_bounds

apply_theme()

# %% tags=["parameters"]
eps = 0.05  # tolerance of the low-rank interval (spectral-norm distance of W(k) to A_r)
lam_1 = 1.0  # largest eigenvalue
lam_r = 0.6  # r-th eigenvalue (r is 2); the next one is lam_r / gap
sweep_depths = [2, 3, 4, 5]  # depths N of the sweep
sweep_init_ratios = [1e-4, 0.5]  # range of alpha^N / eps (log-spaced), so alpha^N < eps
sweep_init_count = 16  # number of alpha values per depth
sweep_gaps = [1.1, 10.0]  # range of the gap lambda_r / lambda_{r+1} (log-spaced), lambda_{r+1} above eps
sweep_gap_count = 20  # number of gaps
sweep_step_fractions = [0.25, 0.5, 0.75, 0.95]  # eta as fractions of 1 / (N lambda_1^(2-2/N))
plane_depths = [2, 3, 4]  # one (alpha, gap) panel per depth
plane_alphas = [0.01, 0.35]  # alpha range of the panels (log)
plane_resolution = 36  # cells per axis of each panel
plane_step_fraction = 0.5  # eta of the panels, as a fraction of the monotone limit
horizon_factor = 3  # simulate up to horizon_factor * max(T_0, T_1) to measure true times
max_horizon = 1000000  # never simulate beyond this many steps
min_checked = 2000  # the sweep must check at least this many configurations

# %%
r = 2


def spectra_for(gaps):
    """(λ_1, λ_r, λ_r / gap) for each gap: shape (..., 3)."""
    gaps = np.asarray(gaps, dtype=float)
    return np.stack(np.broadcast_arrays(lam_1, lam_r, lam_r / gaps), axis=-1)


def horizon_for(bounds):
    """Steps to simulate: enough to see both true times next to their bounds."""
    t1 = np.where(np.isfinite(bounds.t1), bounds.t1, 0)
    reach = horizon_factor * np.fmax(np.nan_to_num(bounds.t0), t1) + 10
    return np.minimum(reach, max_horizon).astype(np.int64)


# the sweep: every combination of depth, alpha^N / eps, gap and step fraction
grid = np.array(list(itertools.product(
    sweep_depths, np.geomspace(*sweep_init_ratios, sweep_init_count),
    np.geomspace(*sweep_gaps, sweep_gap_count), sweep_step_fractions)))
depth = grid[:, 0].astype(int)
alpha = (grid[:, 1] * eps) ** (1 / depth)
gap = grid[:, 2]
eta = grid[:, 3] * monotone_step_limit(lam_1, depth)
spectra = spectra_for(gap)

# %%
bounds = lowrank_interval_bounds(spectra, r, alpha=alpha, eta=eta, depth=depth, eps=eps, strict=False)
times = empirical_times(spectra, r, alpha=alpha, eta=eta, depth=depth, eps=eps, horizon=horizon_for(bounds))
checked = bounds.nonempty
held = interval_inside(bounds, times)[checked]

# the (alpha, gap) panels, one per depth, at a fixed step fraction
p_alpha = np.geomspace(*plane_alphas, plane_resolution)
p_gap = np.geomspace(*sweep_gaps, plane_resolution)
p_depth = np.array(plane_depths)[:, None, None]
P_alpha, P_gap = np.meshgrid(p_alpha, p_gap)  # (gap, alpha)
p_eta = plane_step_fraction * monotone_step_limit(lam_1, p_depth)
p_bounds = lowrank_interval_bounds(spectra_for(P_gap), r, alpha=P_alpha, eta=p_eta, depth=p_depth,
                                   eps=eps, strict=False)
p_times = empirical_times(spectra_for(P_gap), r, alpha=P_alpha, eta=p_eta, depth=p_depth, eps=eps,
                          horizon=horizon_for(p_bounds))

# %%
fig = plt.figure(figsize=(12.5, 8.2))
top = fig.subplots(1, len(plane_depths), sharey=True, gridspec_kw=dict(top=0.9, bottom=0.58))
# 0 hypotheses fail (alpha^N >= eps), 1 no interval, 2 empirical only, 3 guaranteed by theory
states = np.where(~p_bounds.valid, 0, np.where(p_bounds.nonempty, 3, np.where(p_times.nonempty, 2, 1)))
state_colors = ["#f0f0f0", "#bdbdbd", "#9ecae1", "#08519c"]
state_names = ["hypotheses fail ($α^N ≥ ε$)", "no low-rank interval",
               "interval observed, not guaranteed", "interval guaranteed by Theorem A"]
for ax, d, st in zip(top, plane_depths, states):
    ax.pcolormesh(p_alpha, p_gap, st, cmap=ListedColormap(state_colors), vmin=-0.5, vmax=3.5, shading="nearest")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(f"depth N = {d}")
    ax.set_xlabel("initialization scale α (log scale)")
    ax.minorticks_off()
    ax.set_xticks([t for t in (0.01, 0.03, 0.1, 0.3) if plane_alphas[0] <= t <= plane_alphas[1]])
    ax.xaxis.set_major_formatter("{x:g}")
top[0].set_yticks([t for t in (1.1, 1.5, 2, 3, 5, 10, 20) if sweep_gaps[0] <= t <= sweep_gaps[1]])
top[0].yaxis.set_major_formatter("{x:g}")
top[0].set_ylabel("spectral gap $λ_r / λ_{r+1}$ (log scale)")
fig.legend([Patch(color=c) for c in state_colors], state_names, loc="upper center", ncol=4,
           bbox_to_anchor=(0.5, 0.97), fontsize="small")

bottom = fig.subplots(1, 3, gridspec_kw=dict(top=0.44, bottom=0.08, wspace=0.3))
sel = checked & (times.convergence > 0)
esc = checked & (times.escape > 0) & np.isfinite(bounds.t1)
for d in sweep_depths:
    m, e = sel & (depth == d), esc & (depth == d)
    bottom[0].scatter(times.convergence[m], bounds.t0[m], s=6, color=depth_color(d), label=f"N = {d}")
    bottom[1].scatter(times.escape[e], bounds.t1[e], s=6, color=depth_color(d), label=f"N = {d}")
    both = m & e
    bottom[2].scatter(bounds.t0[both] / times.convergence[both], bounds.t1[both] / times.escape[both],
                      s=6, color=depth_color(d), label=f"N = {d}")
for ax, what in zip(bottom[:2], ["convergence of the top r", "escape of $λ_{r+1}$"]):
    lims = [min(ax.get_xlim()[0], ax.get_ylim()[0]), max(ax.get_xlim()[1], ax.get_ylim()[1])]
    ax.plot(lims, lims, color="0.3", ls="--", lw=1, label="bound = true time")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"true iteration of {what}")
    ax.legend(fontsize="small", markerscale=2)
bottom[0].set_ylabel("upper bound $T_0$ (iterations)")
bottom[0].set_title("$T_0$ = max of $K_{up}(λ_i)$ over $i ≤ r$ ≥ true time")
bottom[1].set_ylabel("lower bound $T_1$ (iterations)")
bottom[1].set_title("$T_1 = K_{low}(λ_{r+1})$ < true time")
bottom[2].axvline(1, color="0.3", ls="--", lw=1)
bottom[2].axhline(1, color="0.3", ls="--", lw=1)
bottom[2].set_xlabel("$T_0$ / true convergence time (≥ 1)")
bottom[2].set_ylabel("$T_1$ / true escape time (< 1)")
bottom[2].set_title("tightness of the two bounds")
fig.text(0.5, 0.5, f"bottom: the whole sweep ({checked.sum()} configurations with $T_0 ≤ T_1$, all step sizes "
         f"{sweep_step_fractions} × the monotone limit)", ha="center", fontsize="small")
fig.suptitle(f"Theorem A: where the theory guarantees a low-rank phase, and how tight it is\n"
             f"(spectrum $(λ_1, λ_r, λ_r / \\mathrm{{gap}})$ = ({lam_1:g}, {lam_r:g}, ·), r = {r}, ε = {eps:g}; "
             f"top: η = {plane_step_fraction:g} × the monotone limit)", y=1.02)
save_figure(fig, "thm_a_spectral_conditions")
plt.show()

# %% [markdown]
# ## Checks
# * **Theorem A** on the sweep: predicted interval inside the empirical one, for every
#   configuration where the hypotheses hold and `T_0 ≤ T_1`.
# * **Panels**: every cell where the theory guarantees an interval has one empirically.
# * **Depth enlarges the guaranteed region**: it covers more cells of the panels for each
#   larger depth.
# * The sweep must check at least `min_checked` configurations (2,000 by default).

# %%
theorem = CheckCount.of("Theorem A", held)
panels = CheckCount.of("Theorem A, (alpha, gap) panels", p_times.nonempty[p_bounds.nonempty], unit="cells")
print(f"sweep: {checked.size} configurations, hypotheses hold in {int(bounds.valid.sum())}, "
      f"T_0 <= T_1 in {int(checked.sum())}, of which T_1 finite in {int(np.isfinite(bounds.t1[checked]).sum())}")
region = p_bounds.nonempty.sum(axis=(1, 2))  # guaranteed cells per depth
print("guaranteed cells per depth: " + ", ".join(f"N={d}: {c}" for d, c in zip(plane_depths, region)))
up, low = bounds.t0[sel] / times.convergence[sel], bounds.t1[esc] / times.escape[esc]
print(f"tightness: T_0 / true convergence in [{up.min():.3f}, {up.max():.3f}], median {np.median(up):.3f}; "
      f"T_1 / true escape in [{low.min():.3f}, {low.max():.3f}], median {np.median(low):.3f}")
report([theorem, panels, CheckCount.of("depth enlarges the guaranteed region", [bool(np.all(np.diff(region) > 0))],
                                        unit="sweeps")])
assert theorem.checked >= min_checked, f"the sweep checked fewer than {min_checked} configurations"
