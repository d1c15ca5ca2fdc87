"""QuantizeConfigs for the MTDNN layers tfmot's default 8-bit registry does not cover.

tfmot's registry knows Conv2D/Dense/Activation/pooling/Add/Concatenate/Reshape, and folds a
BatchNormalization into the Conv/Dense right before it. The MTDNN also uses layers it rejects;
each gets the config that mirrors what the TFLite converter will do with that layer:

* pure data movement (FoldTime/UnfoldTime, a reshape in TFLite; Dropout and GlobalMaxPooling
  keep the input's scale in TFLite too) -> :class:`NoOpQuantizeConfig`: adding a fake-quant
  there would model a requantization that never happens.
* arithmetic with no trainable weights worth quantizing separately (the squeeze-excitation and
  CBAM ``Multiply``, ``Rescaling``, ``Dot`` of the self-attention, ``UnitNormalization``) and a
  *standalone* BatchNormalization (after PReLU or Multiply; TFLite runs it as an int8 MUL+ADD
  with constant operands it quantizes itself) -> :class:`OutputQuantizeConfig`: fake-quantize
  the output, whose int8 range is what the next op sees.
* ``PReLU``: its ``alpha`` becomes an int8 constant operand of TFLite's PRELU, so it is weight-
  quantized like a kernel, plus the output.
* ``LSTM``: TFLite fuses it into UNIDIRECTIONAL_SEQUENCE_LSTM whose int8 kernel has a dozen
  internal intermediates (gate pre-activations, cell state in int16) that tfmot cannot model; the
  converter calibrates those from the representative data. A fake-quant on the LSTM's output
  breaks the conversion ("quantization parameters violate the same scale constraint" on the
  fused op's transpose), and wrapping it at all stops the converter from recognising the Keras
  LSTM (it emits a WHILE loop instead of the fused op). So the LSTM is left *unannotated*
  (:func:`leave_float`) and is *calibrated* int8 — reported as such by :func:`qat_coverage`.

A BatchNormalization directly after Conv2D/DepthwiseConv2D/Dense is left to tfmot (it folds it);
giving it a custom config would stop the fold and model a graph TFLite never runs.
"""

from quantize.layers import FoldTime, UnfoldTime
from quantize.tf_compat import keras  # noqa: F401  (TF_USE_LEGACY_KERAS before tfmot)

import tensorflow_model_optimization as tfmot  # noqa: E402

layers = keras.layers
QuantizeConfig = tfmot.quantization.keras.QuantizeConfig
quantizers = tfmot.quantization.keras.quantizers

FOLDING_PARENTS = (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)


def _activation_quantizer():
    return quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                             narrow_range=False)


def _weight_quantizer():
    return quantizers.LastValueQuantizer(num_bits=8, per_axis=False, symmetric=True,
                                         narrow_range=True)


class NoOpQuantizeConfig(QuantizeConfig):
    """Nothing to quantize: the layer moves or selects values, their scale passes through."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


class OutputQuantizeConfig(NoOpQuantizeConfig):
    """Fake-quantize the output only (the int8 tensor TFLite writes after this op)."""

    def get_output_quantizers(self, layer):
        return [_activation_quantizer()]


class PReLUQuantizeConfig(OutputQuantizeConfig):
    """``alpha`` is an int8 constant operand of TFLite's PRELU: weight-quantize it, and the output."""

    def get_weights_and_quantizers(self, layer):
        return [(layer.alpha, _weight_quantizer())]

    def set_quantize_weights(self, layer, quantize_weights):
        layer.alpha = quantize_weights[0]


class SeparableConvQuantizeConfig(OutputQuantizeConfig):
    """Depthwise and pointwise kernels weight-quantized, output fake-quantized, layer kept whole.

    tfmot's own transform splits SeparableConv2D into two new, *renamed* layers; keeping the
    layer (TFLite splits it the same way at conversion and calibrates the tensor in between)
    keeps the layer names, so fine-tuned weights map back onto the float network by name.
    """

    def get_weights_and_quantizers(self, layer):
        return [(layer.depthwise_kernel, _weight_quantizer()),
                (layer.pointwise_kernel, _weight_quantizer())]

    def set_quantize_weights(self, layer, quantize_weights):
        layer.depthwise_kernel, layer.pointwise_kernel = quantize_weights


CUSTOM_OBJECTS = {
    "SeparableConvQuantizeConfig": SeparableConvQuantizeConfig,
    "NoOpQuantizeConfig": NoOpQuantizeConfig,
    "OutputQuantizeConfig": OutputQuantizeConfig,
    "PReLUQuantizeConfig": PReLUQuantizeConfig,
    "FoldTime": FoldTime,
    "UnfoldTime": UnfoldTime,
}

NO_OP_TYPES = (FoldTime, UnfoldTime, layers.Dropout, layers.GlobalMaxPooling1D,
               layers.GlobalMaxPooling2D)
LEFT_FLOAT_TYPES = (layers.LSTM,)
OUTPUT_TYPES = (layers.Multiply, layers.Rescaling, layers.Dot, layers.UnitNormalization)


def _inbound_layers(layer):
    nodes = getattr(layer, "_inbound_nodes", [])
    if not nodes:
        return []
    inbound = nodes[0].inbound_layers
    return list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]


def leave_float(layer):
    """True for layers QAT must not wrap (see the module docstring: the LSTM)."""
    return isinstance(layer, LEFT_FLOAT_TYPES)


def custom_config(layer):
    """The QuantizeConfig edgekit gives ``layer``, or None to leave it to tfmot's registry."""
    if isinstance(layer, NO_OP_TYPES):
        return NoOpQuantizeConfig()
    if isinstance(layer, layers.PReLU):
        return PReLUQuantizeConfig()
    if isinstance(layer, layers.SeparableConv2D):
        return SeparableConvQuantizeConfig()
    if isinstance(layer, OUTPUT_TYPES):
        return OutputQuantizeConfig()
    if isinstance(layer, layers.BatchNormalization):
        parents = _inbound_layers(layer)
        if len(parents) == 1 and isinstance(parents[0], FOLDING_PARENTS):
            return None  # folded into the conv/dense by tfmot's transforms
        return OutputQuantizeConfig()
    return None


def qat_coverage(model, calibrated=()):
    """{layer name: how QAT treats it}: 'registry', 'custom:<Config>', or 'calibrated' (the LSTM,
    and the layers named in ``calibrated``: the head, kept float during QAT).

    Recorded in the report so a user sees which parts were trained quantization-aware and which
    rely on the converter's calibration.
    """
    coverage = {}
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        config = custom_config(layer)
        if isinstance(layer, layers.LSTM):
            coverage[layer.name] = "calibrated (left unwrapped; the converter calibrates the fused LSTM)"
        elif layer.name in calibrated:
            coverage[layer.name] = "calibrated (head: float and frozen during QAT)"
        elif config is None:
            coverage[layer.name] = "registry"
        else:
            coverage[layer.name] = "custom:" + type(config).__name__
    return coverage
