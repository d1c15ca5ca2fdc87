"""The feature ring: order, warm-up, stride, gap policies, requantization, no allocation."""

import tracemalloc

import numpy as np
import pytest

from edge.errors import EdgekitError
from edge.manifest import TensorSpec
from edge.ringbuffer import FeatureRing, Requantizer


def _feat(value):
    return np.full((2, 2, 3), value, np.int8)


def test_warm_up_and_order_after_wrap():
    ring = FeatureRing.stacked(4, (2, 2, 3), np.int8)
    for i in range(3):
        ring.push([_feat(i)], i)
        assert not ring.is_warm
    with pytest.raises(EdgekitError, match="not warm"):
        ring.ordered()
    for i in range(3, 10):
        ring.push([_feat(i)], i)
        assert ring.is_warm
        assert ring.ordered()[:, 0, 0, 0].tolist() == list(range(i - 3, i + 1))
        assert ring.frame_range()[0] == (i - 3, i)


def test_window_into_writes_the_given_array():
    ring = FeatureRing.stacked(3, (2, 2, 3), np.int8)
    for i in range(5):
        ring.push([_feat(i)], i)
    dst = np.zeros((1, 3, 2, 2, 3), np.int8)
    assert ring.window_into(0, dst[0]) is not None
    assert dst[0, :, 0, 0, 0].tolist() == [2, 3, 4]


def test_due_every_stride_once_warm():
    ring = FeatureRing.stacked(3, (2, 2, 3), np.int8)
    due = []
    for i in range(10):
        ring.push([_feat(i)], i)
        due.append(ring.due(2))
    assert [i for i, d in enumerate(due) if d] == [2, 4, 6, 8]


def test_gap_reset_policy():
    ring = FeatureRing.stacked(3, (2, 2, 3), np.int8, gap_policy="reset")
    for i in (0, 1, 2):
        ring.push([_feat(i)], i)
    assert ring.push([_feat(5)], 5) is True
    assert not ring.is_warm and ring.count == 1 and ring.gaps == 1 and ring.resets == 1
    ring.push([_feat(6)], 6)
    ring.push([_feat(7)], 7)
    assert ring.ordered()[:, 0, 0, 0].tolist() == [5, 6, 7]


def test_gap_hold_policy_and_max_skip():
    ring = FeatureRing.stacked(3, (2, 2, 3), np.int8, gap_policy="hold", max_skip=1)
    for i in (0, 1, 3):  # one skipped frame is tolerated
        assert ring.push([_feat(i)], i) is False
    assert ring.push([_feat(9)], 9) is True  # a bigger jump is a gap, but the ring holds
    assert ring.is_warm and ring.ordered()[:, 0, 0, 0].tolist() == [1, 3, 9]
    ring.push([_feat(2)], 2)  # going backwards always resets, even under hold
    assert ring.count == 1 and ring.resets == 1


def test_timestamp_gap():
    ring = FeatureRing.stacked(2, (2, 2, 3), np.int8, max_gap_s=0.5)
    ring.push([_feat(0)], 0, 0.0)
    assert ring.push([_feat(1)], 1, 0.1) is False
    assert ring.push([_feat(2)], 2, 1.0) is True
    assert ring.count == 1


def test_bad_policy():
    with pytest.raises(EdgekitError, match="unknown gap policy"):
        FeatureRing.stacked(3, (1,), np.int8, gap_policy="drop")


def test_requantizer_lut_matches_formula():
    src = TensorSpec("out", [1, 4], "int8", 0.05, -10)
    dst = TensorSpec("in", [1, 4], "int8", 0.07, 3)
    requant = Requantizer(src, dst)
    assert requant.mode == "lut"
    values = np.arange(-128, 128, dtype=np.int8).reshape(16, 16)
    out = np.empty_like(values)
    requant(values, out)
    real = (values.astype(np.float64) + 10) * 0.05
    np.testing.assert_array_equal(out, np.clip(np.round(real / 0.07) + 3, -128, 127))


def test_requantizer_copy_and_float():
    same = TensorSpec("x", [1], "int8", 0.1, 0)
    assert Requantizer(same, same).mode == "copy"
    requant = Requantizer(TensorSpec("x", [1], "float32"), TensorSpec("y", [1], "int8", 0.5, 1))
    out = np.empty(4, np.int8)
    requant(np.array([0.0, 1.0, -70.0, 70.0], np.float32), out)
    assert out.tolist() == [1, 3, -128, 127]
    to_float = Requantizer(TensorSpec("x", [1], "uint8", 2.0, 10), TensorSpec("y", [1], "float32"))
    out = np.empty(2, np.float32)
    to_float(np.array([10, 12], np.uint8), out)
    assert out.tolist() == [0.0, 4.0]


def _windows(length, shape, src, dst):
    from edge.window_inputs import MeanWindow, StackWindow

    return [StackWindow(length, shape, src, dst), MeanWindow(length, shape, src, dst)]


def test_push_and_read_do_not_allocate():
    src = TensorSpec("o", [1, 4, 4, 384], "int8", 0.05, -10)
    dst = TensorSpec("i", [1, 4, 4, 384], "int8", 0.07, 3)
    ring = FeatureRing(15, _windows(15, (4, 4, 384), src, dst))
    feature = np.ones((4, 4, 384), np.int8)
    stacked = np.empty((1, 15, 4, 4, 384), np.int8)
    mean = np.empty((1, 4, 4, 384), np.int8)
    ring.push([feature, feature], 0, 0.0)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(1, 100):
            ring.push([feature, feature], i, i / 15.0)
            if ring.due(1):
                ring.window_into(0, stacked[0])
                ring.window_into(1, mean[0])
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 1024
