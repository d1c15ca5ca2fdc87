"""The ring's window inputs: the running integer mean is exact (no drift, through resets and
wrap-around), rounds once, and the stacked window keeps its order."""

import numpy as np
import pytest

from edge.errors import EdgekitError
from edge.manifest import TensorSpec
from edge.ringbuffer import FeatureRing
from edge.window_inputs import MeanWindow, StackWindow, make_window, mean_table

SHAPE = (2, 3, 5)


def _expected_mean(codes, src, dst):
    real = (np.mean(np.asarray(codes, np.float64), axis=0) - src.zero_point) * src.scale
    if dst.dtype == "float32":
        return real
    scaled = real / dst.scale + dst.zero_point
    return np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5), -128, 127).astype(np.int8)


@pytest.mark.parametrize("dst_dtype", ["int8", "float32"])
@pytest.mark.parametrize("src_dtype", ["int8", "uint8"])
def test_running_mean_is_exact_over_a_long_stream_with_resets(src_dtype, dst_dtype):
    """An int8 head input gets the exact mean rounded once; a float one (the heads edgekit
    quantize writes) the exact mean to float32 precision, from the exact integer sums."""
    T = 15
    src = TensorSpec("features", [1] + list(SHAPE), src_dtype, 0.043, -7 if src_dtype == "int8" else 120)
    if dst_dtype == "int8":
        dst = TensorSpec("spatial_mean", [1] + list(SHAPE), "int8", 0.021, 4)
    else:
        dst = TensorSpec("spatial_mean", [1] + list(SHAPE), "float32")
    ring = FeatureRing(T, [MeanWindow(T, SHAPE, src, dst)], gap_policy="reset")
    info = np.iinfo(src_dtype)
    rng = np.random.default_rng(0)
    history = []
    out = np.empty(SHAPE, dst_dtype)
    index = 0
    for step in range(3000):
        if step in (700, 701, 1900):  # gaps: the ring resets and must warm up again
            index += 5
            history = []
        codes = rng.integers(info.min, info.max + 1, SHAPE).astype(src_dtype)
        codes.flat[0] = info.max if step % 2 else info.min  # extremes, both ends
        ring.push([codes], index)
        history = (history + [codes])[-T:]
        index += 1
        if ring.is_warm:
            assert len(history) == T
            ring.window_into(0, out)
            if dst_dtype == "int8":
                np.testing.assert_array_equal(out, _expected_mean(history, src, dst))
            else:  # float32 rounding of sum * scale / T + bias, nothing that grows with time
                np.testing.assert_allclose(out, _expected_mean(history, src, dst), rtol=1e-6,
                                           atol=1e-6)
    assert ring.resets == 3


def test_mean_table_rounds_half_away_from_zero_and_saturates():
    src = TensorSpec("f", [1], "int8", 1.0, 0)
    dst = TensorSpec("m", [1], "int8", 1.0, 0)
    table = mean_table(2, 128, src, dst)
    # sums of two offset codes: (q1 + 128) + (q2 + 128); mean 0.5 -> 1, -0.5 -> -1, -1.5 -> -2
    assert table[256 + 1] == 1 and table[256 - 1] == -1 and table[256 - 3] == -2
    tight = TensorSpec("m", [1], "int8", 0.25, 0)
    assert mean_table(1, 128, src, tight)[255] == 127 and mean_table(1, 128, src, tight)[0] == -128


def test_float_mean_and_float_head_input():
    T = 3
    spec = TensorSpec("f", [1] + list(SHAPE), "float32")
    window = MeanWindow(T, SHAPE, spec, spec)
    ring = FeatureRing(T, [window])
    values = [np.full(SHAPE, v, np.float32) for v in (1.0, 2.0, 6.0, 10.0)]
    for i, v in enumerate(values):
        ring.push([v], i)
    out = np.empty(SHAPE, np.float32)
    ring.window_into(0, out)
    np.testing.assert_allclose(out, 6.0)


def test_stack_window_converts_and_orders():
    src = TensorSpec("o", [1, 4], "int8", 0.5, 0)
    dst = TensorSpec("i", [1, 3, 4], "int8", 0.25, 0)
    ring = FeatureRing(3, [StackWindow(3, (4,), src, dst)])
    for i in range(5):
        ring.push([np.full(4, i, np.int8)], i)
    out = np.empty((3, 4), np.int8)
    ring.window_into(0, out)
    assert out[:, 0].tolist() == [4, 6, 8]  # frames 2, 3, 4 at twice the resolution


def test_make_window_rejects_unknown_reduction_and_dtype():
    spec = TensorSpec("f", [1, 2], "int8", 0.1, 0)
    with pytest.raises(EdgekitError, match="unknown window reduction 'max'"):
        make_window("max", 3, (2,), spec, spec)
    with pytest.raises(EdgekitError, match="cannot average"):
        MeanWindow(3, (2,), TensorSpec("f", [1, 2], "int32"), spec)
