"""Reproduction package for *Implicit Regularization in Perturbed Deep Matrix Factorization:
Spectral Conditions and Stability* (Chou and Wang, arXiv:2605.28613).

Modules, each importing only from those before it: ``targets`` (targets and noise),
``dynamics`` (gradient-descent engines), ``metrics`` (ranks, errors, low-rank intervals),
``theory`` (the bounds), ``checks`` (bounds against true times), ``runs`` (one experiment
run per configuration), ``plotting`` (theme, colours, checked atomic figure files),
``provenance`` (hashes, versions, records), ``sweep`` (grids on local processes or Dask,
resumable), ``parameters``, ``pipeline``, ``baselines``, ``report`` and ``cli`` (papermill
runs of the notebooks, figure regression, the reviewer's report). The mathematics is in
THEORY.md.
"""

__version__ = "0.1.0"
