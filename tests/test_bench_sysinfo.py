"""Peak memory is the bench process's own, not inherited from whoever started it."""

import subprocess
import sys

import numpy as np


def test_peak_rss_of_a_child_does_not_include_its_parents_memory():
    ballast = np.ones(300 * 1024 * 1024 // 8)  # 300 MB resident in this (parent) process
    code = "from edge.bench.sysinfo import peak_rss_mb; print(peak_rss_mb())"
    child = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True, timeout=60).stdout)
    assert ballast.sum() > 0
    assert 1 < child < 150, child
