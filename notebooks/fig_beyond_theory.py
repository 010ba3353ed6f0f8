# %% [markdown]
# # Beyond the theorems: random initialization and non-symmetric noise
#
# **This notebook goes beyond what the theorems cover.** THEORY.md §2–6 assume the identity
# initialization `W_j(0) = α I` and symmetric noise, which make the dynamics reduce exactly
# to scalar recursions. Here the full-matrix engine (gradient descent on every factor,
# THEORY.md §1) runs outside those assumptions: random Gaussian initialization
# `W_j(0) = α G_j / √n`, and non-symmetric Gaussian noise `E` with `‖E‖₂ = δ`. No bound
# applies; what is shown is observed, not proved.
#
# **Observation.** In all four settings — identity or Gaussian initialization, symmetric or
# non-symmetric noise — the product still passes through a low-rank phase: its effective
# rank drops to about `erank(A_r)`, and the error to the clean target is U-shaped, so early
# stopping still denoises. The identity-initialized symmetric case (covered by the
# theorems) is drawn in black for reference.
#
# **What would falsify it.** A run whose best stopping point is not near rank `r`, or where
# early stopping does not clearly beat the end of the run (checks at the end). The runs stop
# at `steps` iterations, before the smallest noise eigenvalues are fitted: the right end of
# the curves is not convergence, and the last error understates the converged one. Curves are
# medians over the noise draws (and random initializations) with min–max bands.

# %%
import numpy as np
import matplotlib.pyplot as plt
from matplotlib.ticker import LogLocator

from dmf_utils.checks import CheckCount, report
from dmf_utils.metrics import effective_rank, truncated_spectrum
from dmf_utils.plotting import apply_theme, save_figure
from dmf_utils.runs import noisy_full_run
from dmf_utils.sweep import sweep
from dmf_utils.targets import padded_spectrum, symmetric_target

apply_theme()

# %% tags=["parameters"]
n = 40  # matrix size
leading = [4.0, 3.0, 2.5, 2.0]  # nonzero eigenvalues of the clean target A; their count is the rank r
depth = 3  # depth N
alpha = 0.1  # initialization scale: alpha times the identity, or alpha G / sqrt(n) with Gaussian G
delta = 0.5  # noise size ||E||_2
step_fraction = 0.5  # step size as a fraction of 1 / (N ||A + E||_2^(2 - 2/N))
steps = 20000  # gradient steps
records = 150  # log-spaced record points (an SVD each)
seeds = 5  # noise draws (and random initializations) per setting
seed = 0  # root seed: of the target, and of every run's stream (derived from it and the run's configuration)
plateau_tolerance = 0.1  # relative distance to erank(A_r) allowed at the best stopping time
min_factor = 1.5  # early stopping must beat the end of the run at least by this factor
workers = None  # local worker processes for the runs (None: one per CPU; 1: in this kernel)
cache_dir = None  # resumable results, e.g. 'build/sweep-cache' (relative to the repository root); None: no cache
progress = False  # True draws a bar (finished / total, rate) on stderr, for interactive sessions

# %%
r = len(leading)
target = symmetric_target(padded_spectrum(leading, n), np.random.default_rng(seed))
erank_target = float(effective_rank(np.abs(truncated_spectrum(target.eigenvalues, r))))
settings = {  # (initialization, noise): name, the first one is covered by the theorems
    ("identity", "symmetric"): "identity init, symmetric noise (theory)",
    ("gaussian", "symmetric"): "Gaussian init, symmetric noise",
    ("identity", "non-symmetric"): "identity init, non-symmetric noise",
    ("gaussian", "non-symmetric"): "Gaussian init, non-symmetric noise",
}
colors = ["0.15", "C1", "C2", "C4"]
fixed = dict(n=n, leading=leading, target_seed=seed, depth=depth, alpha=alpha, delta=delta,
             step_fraction=step_fraction, steps=steps, records=records)
configs = [dict(fixed, init=init, noise=noise, replicate=s) for (init, noise) in settings for s in range(seeds)]

# %%
runs = sweep(noisy_full_run, configs, seed=seed, cache=cache_dir, workers=workers, progress=progress)
runs["setting"] = [settings[key] for key in zip(runs["init"], runs["noise"])]
grid = runs["iterations"].iloc[0]
erank = {name: np.stack(g["erank"]) for name, g in runs.groupby("setting", sort=False)}  # name: (seed, record)
error = {name: np.stack(g["error"]) for name, g in runs.groupby("setting", sort=False)}

# %%
fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.8))
for (name, color) in zip(settings.values(), colors):
    for ax, data in zip(axes, (erank[name], error[name])):
        ax.plot(grid[1:], np.median(data, axis=0)[1:], color=color, lw=2, label=name)
        ax.fill_between(grid[1:], data.min(axis=0)[1:], data.max(axis=0)[1:], color=color, alpha=0.2, lw=0)
axes[0].axhline(erank_target, color="0.4", ls="--", lw=1, label=f"erank($A_r$) = {erank_target:.3g}")
axes[0].set_yscale("log")
axes[0].set_ylabel("effective rank of W(k) (log scale)")
axes[0].set_title("a low-rank phase in every setting")
axes[1].set_yscale("log")
axes[1].set_ylabel("error to the clean target $‖W(k) − A‖_F$ (log scale)")
axes[1].set_title("U-shaped error: early stopping still denoises")
for ax in axes:
    ax.set_xscale("log")
    ax.set_xlabel("iteration k (log scale)")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter("{x:g}")
    ax.yaxis.set_minor_formatter("")
axes[1].legend(*axes[0].get_legend_handles_labels(), fontsize="small", loc="upper right")
fig.suptitle(f"Beyond the theorems: full-matrix gradient descent (n = {n}, r = {r}, N = {depth}, α = {alpha:g}, "
             f"δ = {delta:g}); median and min–max over {seeds} draws;\nthe runs stop at k = {steps}, before "
             "the noise is fully fitted")
fig.tight_layout()
save_figure(fig, "fig_beyond_theory")
plt.show()

# %% [markdown]
# ## Checks (every run of every setting; observations, not theorems)
# * **Near rank r at the best stopping time**: the effective rank at the minimum of
#   `‖W(k) − A‖_F` is within `plateau_tolerance` of `erank(A_r)`.
# * **Early stopping wins**: the error at the end of the run is at least `min_factor` times
#   the best one.

# %%
near, wins = [], []
for name in settings.values():
    best = error[name].argmin(axis=1)
    at_best = erank[name][np.arange(seeds), best]
    factor = error[name][:, -1] / error[name].min(axis=1)
    near.extend(np.abs(at_best / erank_target - 1) <= plateau_tolerance)
    wins.extend(factor >= min_factor)
    print(f"{name}: erank at the best stopping time {np.round(at_best, 2).tolist()}, "
          f"end/best error {np.round(factor, 2).tolist()}")
report([CheckCount.of("near rank r at the best stopping time", near, "runs"),
        CheckCount.of(f"early stopping beats the end of the run by x{min_factor:g}", wins, "runs")])
