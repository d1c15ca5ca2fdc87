"""``edgekit bench``: the whole benchmark, TensorFlow-free, so it also runs on the board itself.

Two halves, both plain Python 3.9 with numpy, OpenCV and a TFLite interpreter:

* the harness, where ``edgekit bench`` runs (a workstation, or the board with
  ``pip install 'edgekit[device,bench]'``): :mod:`~edge.bench.cli` (the commands),
  :mod:`~edge.bench.harness` (artifacts x targets -> one results document),
  :mod:`~edge.bench.remote` (a working folder on a target: this machine or ssh),
  :mod:`~edge.bench.evalset` (accuracy clips and the one scoring path, shared with report.json),
  :mod:`~edge.bench.report` (results.json/csv/md), :mod:`~edge.bench.plot` (Pareto plot,
  optional: matplotlib) and :mod:`~edge.bench.compare` (two runs side by side);
* what runs on the target and measures, copied there over ssh with the rest of ``edge/``:
  :mod:`~edge.bench.device` (``python -m edge.bench.device JOB.json OUT.json``: one artifact),
  :mod:`~edge.bench.check` (``python -m edge.bench.check``: what ``edgekit devices check``
  asks), :mod:`~edge.bench.placement`, :mod:`~edge.bench.power`, :mod:`~edge.bench.stats` and
  :mod:`~edge.bench.sysinfo`.
"""
