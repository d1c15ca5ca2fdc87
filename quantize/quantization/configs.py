"""QuantizeConfigs for the MTDNN layers tfmot's default 8-bit registry does not cover.

tfmot's registry knows Conv2D/Dense/Activation/pooling/Add/Concatenate/Reshape, and folds a
BatchNormalization into the Conv/Dense right before it. The MTDNN also uses layers it rejects;
each gets the config that mirrors what the TFLite converter will do with that layer:

* pure data movement (FoldTime/UnfoldTime, a reshape in TFLite; Dropout and GlobalMaxPooling
  keep the input's scale in TFLite too) -> :class:`NoOpQuantizeConfig`: adding a fake-quant
  there would model a requantization that never happens.
* arithmetic with no trainable weights worth quantizing separately (the squeeze-excitation and
  CBAM ``Multiply``, ``Rescaling``, the ``Normalization`` at the input of keras.applications'
  EfficientNets (a constant SUB/MUL in TFLite), ``Dot`` of the self-attention,
  ``UnitNormalization``) and a
  *standalone* BatchNormalization (after PReLU or Multiply; TFLite runs it as an int8 MUL+ADD
  with constant operands it quantizes itself) -> :class:`OutputQuantizeConfig`: fake-quantize
  the output, whose int8 range is what the next op sees.
* ``PReLU``: its ``alpha`` becomes an int8 constant operand of TFLite's PRELU, so it is weight-
  quantized like a kernel, plus the output.
* squeeze-excitation convs (a Conv2D on a 1x1 map whose output feeds no BatchNormalization:
  EfficientNet's and the MBConv backbones' ``*se_reduce``/``*se_expand``) ->
  :class:`SqueezeExciteConvQuantizeConfig`: the kernel per-tensor instead of tfmot's per-channel
  Conv2D default, the activation as tfmot's registry does it (see that class for why).
* ``LSTM``: unrolled (:mod:`quantize.model`), it becomes T steps of FULLY_CONNECTED, SPLIT,
  LOGISTIC/TANH and MUL/ADD, a dozen int8 intermediates per step (gate pre-activations, cell
  and hidden state) inside one Keras layer, which tfmot's registry has no config for (its RNN
  support is commented out) and a layer-level config cannot reach. So the LSTM is left
  *unannotated* (:func:`leave_float`) and its tensors are *calibrated* by the converter from the
  representative data — reported as such by :func:`qat_coverage`.

A BatchNormalization directly after Conv2D/DepthwiseConv2D/Dense is left to tfmot (it folds it);
giving it a custom config would stop the fold and model a graph TFLite never runs.
"""

from quantize.layers import FoldTime, UnfoldTime
from quantize.tf_compat import keras  # noqa: F401  (TF_USE_LEGACY_KERAS before tfmot)

import tensorflow_model_optimization as tfmot  # noqa: E402
from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve \
    import prune_preserve_quantize_registry as prune_preserve  # noqa: E402

layers = keras.layers
QuantizeConfig = tfmot.quantization.keras.QuantizeConfig
quantizers = tfmot.quantization.keras.quantizers

FOLDING_PARENTS = (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)


def _activation_quantizer():
    return quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                             narrow_range=False)


def _weight_quantizer(preserve_sparsity=False):
    """Per-tensor symmetric int8; with ``preserve_sparsity`` (prune-qat) the zeros pruning left
    stay zero through fine-tuning, as tfmot's prune-preserving scheme does for its own configs."""
    if preserve_sparsity:
        return prune_preserve.PrunePreserveDefault8BitWeightsQuantizer()
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


class QuantizedThenActivated:
    """``layer.activation`` of an SE conv with an unfused activation: fake-quantize the conv's
    output (``quantized``, tfmot's QuantizeAwareActivation of the identity), then apply
    ``activation``. Serializes as the bare activation, as tfmot's QuantizeAwareActivation does,
    so a wrapped layer's config rebuilds the float layer."""

    def __init__(self, quantized, activation):
        self.quantized = quantized
        self.activation = activation

    def __call__(self, inputs, *args, **kwargs):
        return self.activation(self.quantized(inputs), *args, **kwargs)

    def get_config(self):
        return {"activation": keras.activations.serialize(self.activation)}

    @classmethod
    def from_config(cls, config):
        return keras.activations.deserialize(config["activation"])


class SqueezeExciteConvQuantizeConfig(QuantizeConfig):
    """A squeeze-excitation conv: kernel per-tensor, activation fake-quantized where TFLite
    rounds it.

    Per-channel weight scales exist because a BatchNormalization folded into a conv multiplies
    each output channel by its own gamma / sigma, so channel ranges differ by orders of
    magnitude. The SE convs (1x1 convs on the pooled 1x1 map, with a bias, swish / sigmoid) have
    no BN folded into them: their output channels share one weight range and one scale loses
    nothing. Per-channel costs file size: every output channel carries a float32 scale and an
    int64 zero point for the weight *and* for the int32 bias, 24 B per channel, and
    EfficientNet-B3's SE convs have ~17,700 output channels.

    The converter keeps a QAT weight quantization only on an op whose output is fake-quantized
    too; an op whose output it has to calibrate is re-quantized the post-training way, per
    channel. tfmot's Conv2D config (``["kernel"], ["activation"]``) fake-quantizes before a
    sigmoid (TFLite's LOGISTIC has a fixed output scale) and after relu (fused into CONV_2D),
    which suits; but only after a swish, which TFLite does not fuse (CONV_2D, then LOGISTIC and
    MUL): the conv's own int8 output went unmodelled and test_tiny's SE reduce convs came out
    per channel. So for an unfused activation the conv's output is fake-quantized, then the
    activation, then the layer's output — the three tensors TFLite rounds.
    """

    UNFUSED = ("swish",)  # activations TFLite runs as separate ops after the conv

    def __init__(self, preserve_sparsity=False):
        # prune-qat: a custom config bypasses tfmot's prune-preserving scheme, which only swaps
        # the weight quantizer of its own registry's configs.
        self.preserve_sparsity = preserve_sparsity

    def _activation(self, layer):
        activation = layer.activation
        if isinstance(activation, QuantizedThenActivated):
            return activation.activation
        return activation

    def _unfused(self, layer):
        return getattr(self._activation(layer), "__name__", None) in self.UNFUSED

    def get_weights_and_quantizers(self, layer):
        return [(layer.kernel, _weight_quantizer(self.preserve_sparsity))]

    def get_activations_and_quantizers(self, layer):
        if self._unfused(layer):
            return [(keras.activations.linear, _activation_quantizer())]
        return [(layer.activation, _activation_quantizer())]

    def set_quantize_weights(self, layer, quantize_weights):
        layer.kernel = quantize_weights[0]

    def set_quantize_activations(self, layer, quantize_activations):
        if self._unfused(layer):
            layer.activation = QuantizedThenActivated(quantize_activations[0],
                                                      self._activation(layer))
        else:
            layer.activation = quantize_activations[0]

    def get_output_quantizers(self, layer):
        return [_activation_quantizer()] if self._unfused(layer) else []

    def get_config(self):
        return {"preserve_sparsity": self.preserve_sparsity}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


CUSTOM_OBJECTS = {
    "QuantizedThenActivated": QuantizedThenActivated,
    "SqueezeExciteConvQuantizeConfig": SqueezeExciteConvQuantizeConfig,
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
OUTPUT_TYPES = (layers.Multiply, layers.Rescaling, layers.Normalization, layers.Dot,
                layers.UnitNormalization)


def _inbound_layers(layer):
    nodes = getattr(layer, "_inbound_nodes", [])
    if not nodes:
        return []
    inbound = nodes[0].inbound_layers
    return list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]


def _outbound_layers(layer):
    return [node.layer for node in getattr(layer, "_outbound_nodes", [])]


def is_squeeze_excite_conv(layer):
    """True for a plain Conv2D on a 1x1 spatial map whose output feeds no BatchNormalization:
    the squeeze-excitation convs, which have no BN folded into their kernel (see
    :class:`SqueezeExciteConvQuantizeConfig`). A conv feeding a BN keeps tfmot's per-channel
    config: the fold gives its channels different ranges."""
    if type(layer) is not layers.Conv2D:  # not Conv2DTranspose or other subclasses
        return False
    nodes = getattr(layer, "_inbound_nodes", [])
    if not nodes:
        return False
    shape = nodes[0].input_shapes
    if not isinstance(shape, tuple) or len(shape) != 4 or tuple(shape[1:3]) != (1, 1):
        return False
    return not any(isinstance(child, layers.BatchNormalization)
                   for child in _outbound_layers(layer))


def leave_float(layer):
    """True for layers QAT must not wrap (see the module docstring: the LSTM)."""
    return isinstance(layer, LEFT_FLOAT_TYPES)


def custom_config(layer, preserve_sparsity=False):
    """The QuantizeConfig edgekit gives ``layer``, or None to leave it to tfmot's registry.

    ``preserve_sparsity`` (prune-qat) keeps pruned zeros in the kernels edgekit's configs
    quantize and tfmot's prune-preserving scheme would have (the SE convs)."""
    if isinstance(layer, NO_OP_TYPES):
        return NoOpQuantizeConfig()
    if isinstance(layer, layers.PReLU):
        return PReLUQuantizeConfig()
    if isinstance(layer, layers.SeparableConv2D):
        return SeparableConvQuantizeConfig()
    if isinstance(layer, OUTPUT_TYPES):
        return OutputQuantizeConfig()
    if is_squeeze_excite_conv(layer):
        return SqueezeExciteConvQuantizeConfig(preserve_sparsity)
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
            coverage[layer.name] = "calibrated (left unwrapped; the converter calibrates the LSTM's steps)"
        elif layer.name in calibrated:
            coverage[layer.name] = "calibrated (head: float and frozen during QAT)"
        elif config is None:
            coverage[layer.name] = "registry"
        else:
            coverage[layer.name] = "custom:" + type(config).__name__
    return coverage
