"""Deprecated alias of :mod:`edge.atomic`, the one atomic-write helper.

Kept only so modules not yet switched (``quantize/benchmark/plot.py`` and ``results.py``) keep
importing; new code imports :mod:`edge.atomic` directly. Remove once nothing imports this.
"""

from edge.atomic import atomic_path, write_json, write_text  # noqa: F401
