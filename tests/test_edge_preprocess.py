"""Preprocessing: crop/resize/colour order and quantization into a preallocated input tensor."""

import cv2
import numpy as np
import pytest

from edge.errors import EdgekitError
from edge.manifest import InputSpec, TensorSpec
from edge.preprocess import Preprocessor, check_roi, parse_roi, quantize_lut

SPEC = InputSpec(height=16, width=20)


def _frame(height=40, width=50, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _reference(frame_bgr, roi=None):
    if roi is not None:
        x, y, w, h = roi
        frame_bgr = frame_bgr[y:y + h, x:x + w]
    rgb = cv2.cvtColor(np.ascontiguousarray(frame_bgr), cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]  # resize="fast": exact 2x2 halvings down to >= 20x16 first
    last = cv2.INTER_AREA
    while height % 2 == 0 and width % 2 == 0 and height // 2 >= 16 and width // 2 >= 20:
        height, width = height // 2, width // 2
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
        last = cv2.INTER_LINEAR if height < 32 and width < 40 else cv2.INTER_AREA
    return cv2.resize(rgb, (20, 16), interpolation=last)


@pytest.mark.parametrize("dtype, scale, zero_point", [
    ("uint8", 1.0, 0), ("uint8", 0.5, 3), ("int8", 1.0, -128), ("int8", 2.1, -5),
    ("float32", None, None)])
def test_quantization_matches_formula(dtype, scale, zero_point):
    frame = _frame()
    pre = Preprocessor(SPEC, TensorSpec("frame", [1, 16, 20, 3], dtype, scale, zero_point))
    dst = np.zeros((16, 20, 3), dtype)
    assert pre(frame, dst) is dst
    pixels = _reference(frame).astype(np.float64)
    if dtype == "float32":
        expected = pixels.astype(np.float32)
    else:
        info = np.iinfo(dtype)
        expected = np.clip(np.round(pixels / scale) + zero_point, info.min, info.max).astype(dtype)
    np.testing.assert_array_equal(dst, expected)


def test_identity_lut_is_skipped_and_writes_in_place():
    pre = Preprocessor(SPEC, TensorSpec("frame", [1, 16, 20, 3], "uint8", 1.0, 0))
    assert pre.identity
    tensor = np.zeros((1, 16, 20, 3), np.uint8)  # stands in for interpreter.tensor(i)()
    pre(_frame(), tensor[0])
    np.testing.assert_array_equal(tensor[0], _reference(_frame()))


def test_roi_crop_and_rgb_source():
    frame = _frame(60, 80)
    roi = (10, 20, 30, 25)
    pre = Preprocessor(SPEC, TensorSpec("f", [1, 16, 20, 3], "uint8", 1.0, 0), roi=roi)
    dst = np.zeros((16, 20, 3), np.uint8)
    pre(frame, dst)
    np.testing.assert_array_equal(dst, _reference(frame, roi))
    rgb_source = Preprocessor(SPEC, TensorSpec("f", [1, 16, 20, 3], "uint8", 1.0, 0),
                              source_order="RGB", roi=roi)
    rgb_frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    rgb_source(rgb_frame, dst)
    np.testing.assert_array_equal(dst, _reference(frame, roi))


def test_no_resize_when_sizes_match():
    frame = _frame(16, 20)
    pre = Preprocessor(SPEC, TensorSpec("f", [1, 16, 20, 3], "int8", 1.0, -128))
    dst = np.zeros((16, 20, 3), np.int8)
    pre(frame, dst)
    np.testing.assert_array_equal(dst.astype(np.int16) + 128, frame[:, :, ::-1])


def test_bad_frames_and_rois():
    pre = Preprocessor(SPEC, TensorSpec("f", [1, 16, 20, 3], "uint8", 1.0, 0), roi=(40, 0, 20, 20))
    dst = np.zeros((16, 20, 3), np.uint8)
    with pytest.raises(EdgekitError, match="outside the 50x40 frame"):
        pre(_frame(), dst)
    with pytest.raises(EdgekitError, match="uint8 H x W x 3"):
        Preprocessor(SPEC, TensorSpec("f", [1, 16, 20, 3], "uint8", 1.0, 0))(
            np.zeros((40, 50), np.uint8), dst)
    with pytest.raises(EdgekitError, match="no quantization scale"):
        quantize_lut("int8", None, None)


def test_parse_and_check_roi():
    assert parse_roi("1, 2,3,4") == (1, 2, 3, 4)
    for text in ("1,2,3", "a,b,c,d", "0,0,0,5", "-1,0,4,4"):
        with pytest.raises(EdgekitError, match="bad ROI"):
            parse_roi(text)
    check_roi((0, 0, 50, 40), (40, 50, 3))
    with pytest.raises(EdgekitError, match="outside"):
        check_roi((1, 0, 50, 40), (40, 50, 3))


def test_halving_sizes():
    from edge.preprocess import halving_sizes
    assert halving_sizes(480, 640, 100, 100) == [(240, 320), (120, 160)]
    assert halving_sizes(1080, 1920, 100, 100) == [(540, 960), (270, 480), (135, 240)]
    assert halving_sizes(199, 640, 100, 100) == []   # odd side: no exact halving
    assert halving_sizes(48, 64, 32, 32) == [] and halving_sizes(64, 64, 32, 32) == [(32, 32)]


def _vga(seed=0):
    noise = np.random.default_rng(seed).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 3)  # camera-like texture, not pure noise


def test_fast_resize_predecimates_large_frames_and_stays_close_to_area():
    spec, tensor = InputSpec(height=100, width=100), TensorSpec("f", [1, 100, 100, 3], "uint8",
                                                                1.0, 0)
    frame = _vga()
    fast, area = np.zeros((100, 100, 3), np.uint8), np.zeros((100, 100, 3), np.uint8)
    Preprocessor(spec, tensor, resize="fast")(frame, fast)
    Preprocessor(spec, tensor, resize="area")(frame, area)
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(area, cv2.resize(rgb, (100, 100),
                                                   interpolation=cv2.INTER_AREA))
    half = cv2.resize(rgb, (320, 240), interpolation=cv2.INTER_AREA)
    quarter = cv2.resize(half, (160, 120), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(fast, cv2.resize(quarter, (100, 100),
                                                   interpolation=cv2.INTER_LINEAR))
    diff = np.abs(fast.astype(np.int16) - area)
    assert 0 < diff.max() <= 6 and diff.mean() < 1.0


def test_fast_resize_ends_in_area_when_the_halvings_leave_twice_the_input():
    """Odd sides stop the halvings early (1000x750 -> 500x375); 500x375 -> 100x100 is more than
    2x per side, where bilinear would skip source pixels: that last step stays INTER_AREA."""
    spec, tensor = InputSpec(height=100, width=100), TensorSpec("f", [1, 100, 100, 3], "uint8",
                                                                1.0, 0)
    frame = cv2.resize(_vga(), (1000, 750))
    fast = np.zeros((100, 100, 3), np.uint8)
    Preprocessor(spec, tensor, resize="fast")(frame, fast)
    half = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), (500, 375),
                      interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(fast, cv2.resize(half, (100, 100),
                                                   interpolation=cv2.INTER_AREA))


def test_fast_resize_is_plain_area_for_small_sources_and_rois():
    tensor = TensorSpec("f", [1, 16, 20, 3], "uint8", 1.0, 0)
    for frame, roi in ((_frame(30, 38), None), (_frame(60, 80), (10, 20, 30, 25)),
                       (_frame(31, 80), None)):  # odd height: no exact halving
        fast, area = np.zeros((16, 20, 3), np.uint8), np.zeros((16, 20, 3), np.uint8)
        Preprocessor(SPEC, tensor, roi=roi)(frame, fast)
        Preprocessor(SPEC, tensor, roi=roi, resize="area")(frame, area)
        np.testing.assert_array_equal(fast, area)
    with pytest.raises(EdgekitError, match="unknown resize mode"):
        Preprocessor(SPEC, tensor, resize="cubic")


def test_vga_frames_preprocess_without_allocation():
    import tracemalloc
    spec = InputSpec(height=100, width=100)
    pre = Preprocessor(spec, TensorSpec("f", [1, 100, 100, 3], "int8", 1.0, -128),
                       roi=(0, 0, 640, 400))
    frames = [_vga(seed) for seed in range(2)]
    dst = np.zeros((100, 100, 3), np.int8)
    pre(frames[0], dst)  # the first frame sizes the decimation buffer
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(50):
            pre(frames[i % 2], dst)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 1024 and peak - before < 8 * 1024  # a 100x100x3 copy is 30 KB
