"""Per-layer quantization error of the frame model: where does accuracy go?

TFLite's QuantizationDebugger converts the model with a numeric-verify op after every quantized
op, runs it on calibration frames and compares each int8 tensor (dequantized) with its float
counterpart. We keep its MSE and add an SNR in dB (signal power of the float tensor over the
error power): below ~20 dB a layer is a likely accuracy sink (EfficientNet's swish/SE under PTQ
is the classic case); it is recorded per op in report.json and the worst few in the table.

Only the frame model is analysed: it is the part that runs every frame (on a Coral, the part
on the accelerator), and the debugger cannot handle the head's fused LSTM.
"""

import io

import numpy as np

from quantize.quantization.convert import concrete_function
from quantize.tf_compat import tf


def _snr_db(float_tensors, quant_tensors, scale, zero_point):
    reference = np.asarray(float_tensors[0], dtype=np.float64)
    quantized = (np.asarray(quant_tensors[0], dtype=np.float64) - zero_point) * scale
    noise = np.mean((reference - quantized) ** 2)
    signal = np.mean(reference ** 2)
    if noise <= 0:
        return 120.0
    return float(10.0 * np.log10(max(signal, 1e-30) / noise))


def frame_layer_errors(frame_model, shape, frames, debug_count=16):
    """[{op, tensor, mse, max_abs_error, snr_db, scale}] per quantized op of the frame model,
    in execution order. ``frames``: calibration frames (N, H, W, 3) float 0..255."""
    frames = np.asarray(frames, dtype=np.float32)
    function = concrete_function(frame_model, shape, "frame", "features")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], frame_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([f[None]] for f in frames)
    debug = frames[:debug_count]
    options = tf.lite.experimental.QuantizationDebugOptions(
        layer_direct_compare_metrics={"snr_db": _snr_db})
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=lambda: ([f[None]] for f in debug),
        debug_options=options)
    debugger.run()
    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    rows = []
    lines = buffer.getvalue().strip().splitlines()
    header = lines[0].split(",")
    for line in lines[1:]:
        values = dict(zip(header, line.split(",", len(header) - 1)))
        rows.append({
            "op": values["op_name"],
            "tensor": values["tensor_name"],
            "mse": float(values["mean_squared_error"]),
            "max_abs_error": float(values["max_abs_error"]),
            "snr_db": round(float(values["snr_db"]), 2),
            "scale": float(values["scale"]),
        })
    return rows


def worst(rows, count=5):
    return sorted(rows, key=lambda r: r["snr_db"])[:count]
