"""Run single TFLite files during conversion: calibration data and ``clip.tflite``.

``frame_outputs`` runs ``frame.tflite`` one frame at a time to get the int8 frame model's
outputs (the step model is calibrated on them); ``window_samples`` makes of them the inputs an
int8 head is calibrated on (the heads ``edgekit quantize`` writes are not calibrated:
:mod:`quantize.quantization.hybrid`; the tests' legacy int8 heads are); ``run_clip`` runs the
one-file ``clip.tflite`` on whole clips (its report.json figures and the frame+head vs clip parity). The frame+head
path itself is not here: report.json scores it with the device runtime's streaming runner
(``edge.bench.evalset.score_model_dir``), the code ``edgekit bench`` and the camera run.
Models are loaded through the device runtime's factory (``edge.interpreter.make_interpreter``)
so what is run here is what the device loads.
"""

import numpy as np

from edge.interpreter import make_interpreter


class Model:
    """One TFLite file behind its signature runner: named inputs/outputs, (de)quantization."""

    def __init__(self, path, threads=2):
        self.interpreter = make_interpreter(path, device="cpu", threads=threads)
        self.runner = self.interpreter.get_signature_runner()
        self.inputs = self.runner.get_input_details()
        self.outputs = self.runner.get_output_details()
        self.input_name = next(iter(self.inputs))

    @property
    def input_detail(self):
        return self.inputs[self.input_name]

    def __call__(self, value):
        # Every clip is independent. An unrolled LSTM (what quantize.model builds) keeps no state
        # between invokes; a fused one keeps it in variable tensors: zero them, as the device
        # runner does.
        self.interpreter.reset_all_variables()
        detail = self.input_detail
        value = np.asarray(value)
        if value.dtype != detail["dtype"]:
            value = quantize(value, detail)
        return self.runner(**{self.input_name: value})


def quantize(value, detail):
    """float -> the input's dtype (uint8/int8 with its scale/zero point, or a plain cast)."""
    dtype = detail["dtype"]
    scale, zero_point = detail["quantization"]
    if np.issubdtype(dtype, np.integer) and scale:
        info = np.iinfo(dtype)
        return np.clip(np.round(value / scale + zero_point), info.min, info.max).astype(dtype)
    return value.astype(dtype)


def dequantize(value, detail):
    scale, zero_point = detail["quantization"]
    if np.issubdtype(value.dtype, np.integer) and scale:
        return (value.astype(np.float32) - zero_point) * scale
    return value.astype(np.float32)


def requantize(value, source, target):
    """An int8 tensor with ``source`` quantization expressed in ``target``'s (or float)."""
    return quantize(dequantize(value, source), target) if target["dtype"] != np.float32 \
        else dequantize(value, source)


def frame_outputs(frame_path, clips_uint8):
    """Per clip, {frame output: (T, ...) float array}: ``frame.tflite``'s dequantized outputs,
    run one frame at a time as the device runs them."""
    frame = Model(frame_path)
    per_clip = []
    for clip in np.asarray(clips_uint8):
        outputs = {}
        for image in clip:  # Model.__call__ casts/quantizes to the input's dtype
            for name, value in frame(image[None]).items():
                outputs.setdefault(name, []).append(dequantize(value, frame.outputs[name])[0])
        per_clip.append({name: np.stack(v).astype(np.float32) for name, v in outputs.items()})
    return per_clip


def window_samples(outputs, window, hidden_states=None):
    """The head's calibration samples: per clip (``outputs``, from :func:`frame_outputs`), one
    float array per head input of ``window`` (the manifest's WindowInput list): "stack" inputs
    are the T outputs, "mean" inputs their mean (what the ring computes, before its rounding to
    the head's int8 input), "recurrent" inputs the clip's ``hidden_states`` (T, u) (see
    :func:`quantize.streaming.recurrent_windows`)."""
    samples = []
    for k, clip in enumerate(outputs):
        sample = []
        for link in window:
            if link.reduce == "recurrent":
                sample.append(hidden_states[k])
            elif link.reduce == "mean":
                sample.append(clip[link.source].mean(axis=0))
            else:
                sample.append(clip[link.source])
        samples.append(sample)
    return samples


def run_clip(clip_path, clips_uint8):
    clip = Model(clip_path)
    results = {}
    for sample in clips_uint8:
        value = sample[None]
        if clip.input_detail["dtype"] == np.float32:
            value = value.astype(np.float32)
        for name, out in clip(value).items():
            results.setdefault(name, []).append(dequantize(out, clip.outputs[name])[0])
    return {name: np.stack(values) for name, values in results.items()}
