"""Latency statistics the way LiteRT's ``benchmark_model`` reports them, plus percentiles."""

import math

import numpy as np


def summarize(times_ms):
    """{count, mean, std, min, max, p50, p90, p99} of per-run times in ms (linear percentiles).

    ``std`` is the population standard deviation, as ``benchmark_model`` prints it.
    """
    values = np.asarray(times_ms, dtype=np.float64)
    if values.size == 0:
        return {"count": 0}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"count": int(values.size), "mean_ms": float(values.mean()),
            "std_ms": float(values.std()), "min_ms": float(values.min()),
            "max_ms": float(values.max()), "p50_ms": float(p50), "p90_ms": float(p90),
            "p99_ms": float(p99)}


def enough(count, elapsed_s, min_runs, min_seconds, max_seconds):
    """The stopping rule of benchmark_model/MLPerf: at least ``min_runs`` and ``min_seconds``,
    but stop at ``max_seconds`` once at least one run is done."""
    if count >= 1 and elapsed_s >= max_seconds:
        return True
    return count >= min_runs and elapsed_s >= min_seconds


def finite_or_none(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) \
        else value
