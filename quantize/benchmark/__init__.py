"""Host side of ``edgekit bench``: devices, remote execution, eval sets, results, plots, compare.

TensorFlow-free: the targets run :mod:`edge.bench`; this package stages, runs, scores and reports.
"""
