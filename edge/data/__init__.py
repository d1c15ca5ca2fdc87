"""Labelled data on disk, read without TensorFlow: swimmer clips and UTKFace images.

Here rather than in ``quantize/`` because both sides read the same files: training, evaluation
and calibration on the workstation, and ``edgekit bench`` on a board (its accuracy clips), which
has no TensorFlow and never imports ``quantize``. Modules: :mod:`edge.data.clips` (the
``<action>_<identity>_<n>.avi`` folders and their ``labels.json``), :mod:`edge.data.utkface`
(``[age]_[gender]_[race]_[datetime].jpg``) and :mod:`edge.data.labelled` (either folder as
arrays plus per-task targets).
"""
