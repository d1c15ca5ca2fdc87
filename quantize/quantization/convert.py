"""Keras -> TFLite bytes for every method, through fixed-batch-1 concrete functions.

The device runs one frame (1, H, W, 3), one window of T feature maps (1, T, h, w, c) or one clip
(1, T, H, W, 3) at a time, so each model is traced with a static batch of 1: no dynamic shapes,
which the Edge TPU and XNNPACK both want. The traced function returns a dict so the TFLite
signature keys are the task names (``action``, ``identity_embedding``) and the input is called
``frame`` / ``features`` / ``clip`` — the names the manifest and the device runner use.

Integer methods (ptq, qat, prune-qat) are converted with int8-only builtins; the converter still
lets a float-only op through (e.g. SIN, CUMSUM keep float kernels with a DEQUANTIZE before them),
so every integer artifact also goes through :func:`quantize.quantization.gate.check_int8`.
"""

import numpy as np

from quantize.quantization import gate
from quantize.quantization.methods import FLOAT_METHODS, INTEGER_METHODS, METHODS  # noqa: F401
from quantize.tf_compat import tf


def input_specs(shape, input_name):
    """[(name, batch-1 shape)]: ``shape`` itself when it is such a list (a model with several
    inputs, e.g. the streaming head), else the one input ``input_name``."""
    if isinstance(shape, list):
        return [(name, tuple(dims)) for name, dims in shape]
    return [(input_name, tuple(shape))]


def concrete_function(model, shape, input_name=None, output_name=None):
    """A batch-1 concrete function of ``model`` with named inputs and dict outputs.

    ``shape``/``input_name``: see :func:`input_specs`; several inputs are passed to the model as
    a list in that order. A single-tensor output is called ``output_name``; a dict output keeps
    its keys.
    """
    specs = input_specs(shape, input_name)

    def run(*tensors):
        result = model(tensors[0] if len(tensors) == 1 else list(tensors), training=False)
        if not isinstance(result, dict):
            result = {output_name or "output": result}
        return result

    function = tf.function(run, input_signature=[tf.TensorSpec(dims, tf.float32, name=name)
                                                 for name, dims in specs])
    return function.get_concrete_function()


def _pinned(samples, pin_pixels, names):
    """Yield calibration samples (one array, or a list of arrays in ``names`` order for a
    several-input model, fed by name: the converted model may order its inputs otherwise);
    with ``pin_pixels`` the first one holds a 0 and a 255 so the uint8 input quantization is
    exactly scale 1, zero point 0 (pixels in, no rescale)."""
    for i, sample in enumerate(samples):
        if isinstance(sample, (list, tuple)):
            yield {name: np.array(part, dtype=np.float32)[None]
                   for name, part in zip(names, sample)}
            continue
        sample = np.array(sample, dtype=np.float32)[None]
        if pin_pixels and i == 0:
            flat = sample.reshape(-1)
            flat[0], flat[-1] = 0.0, 255.0
        yield [sample]


def convert(model, shape, input_name, method, samples=None, input_type="float32",
            output_type="float32", output_name=None, artifact="model"):
    """TFLite flatbuffer bytes of ``model`` for ``method``.

    ``shape``/``input_name``: see :func:`input_specs`. ``samples`` (an iterable of unbatched
    inputs: one array each, or a list of arrays per sample for several inputs) is the representative data set for the
    integer methods; ``input_type``/``output_type`` are uint8/int8/float32 for them.
    """
    function = concrete_function(model, shape, input_name, output_name)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    if method == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif method == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif method in INTEGER_METHODS:
        if samples is None:
            raise ValueError("integer conversion needs representative samples")
        sample_list = list(samples)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        names = [name for name, _ in input_specs(shape, input_name)]
        converter.representative_dataset = lambda: _pinned(sample_list, input_type == "uint8",
                                                           names)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.as_dtype(input_type)
        converter.inference_output_type = tf.as_dtype(output_type)
    elif method != "fp32":
        raise ValueError("unknown method %r" % method)
    try:
        return converter.convert()
    except Exception as exc:  # ConverterError and friends: turn into a one-line user error
        raise gate.conversion_error(exc, artifact, method)
