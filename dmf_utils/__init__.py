"""Reproduction package for *Implicit Regularization in Perturbed Deep Matrix Factorization:
Spectral Conditions and Stability* (Chou and Wang, arXiv:2605.28613).

Modules, each importing only from those before it: ``targets`` (targets and noise),
``dynamics`` (gradient-descent engines), ``metrics`` (ranks, errors, low-rank intervals),
``plotting`` (theme, colours, checked atomic figure files), ``pipeline`` and ``cli``
(papermill runs of the notebooks). The mathematics is in THEORY.md.
"""

__version__ = "0.1.0"
