"""Standalone BatchNormalization layers rewritten as 1x1 depthwise convolutions for calibration.

A BatchNormalization that follows a convolution or a Dense layer is folded into its weights by
the converter. One that follows anything else (the MTDNN's ``spatial_bn`` after the CBAM
multiply, the task heads' BNs after PReLU) is lowered by the MLIR quantizer into a MUL and an
ADD after calibration, and the tensor *feeding* the BN then gets the range of the scaled
intermediate instead of its own. Measured on the quickstart run: ``spatial_attention2_apply``
holds values in [0, 0.089] on the calibration clips, but head.tflite quantized it to [0, 2.47]
(the range of that tensor times the BN's multiplier 31.6, 1/sqrt(eps) of a channel whose moving
variance is ~0), so it had 7 int8 levels; one level of difference between two conversions moved
the BN output by 28 levels, and the identity of one test clip moved by 0.74 between head.tflite
and clip.tflite.

As a 1x1 ``DepthwiseConv2D`` (per-channel scale as its kernel, shift as its bias) the same
affine map is calibrated like any convolution: its input keeps its own range and the multiplier
gets per-channel int8 scales. On the quickstart QAT run this cut the int8 head's largest action
probability error from 0.23 to 0.08 (mean 0.015 -> 0.004) and the identity error from 0.037 to
0.006; on an earlier run it put back the one clip the int8 head had flipped.

Used only on the float graphs that are converted by calibration (the head, and the whole clip
model for ptq); QAT graphs carry their own fake-quant ranges. The rewrite computes the same
function as the BN in inference mode (checked by :func:`rewrite`'s caller in tests).
"""

import numpy as np

from quantize.tf_compat import keras

layers = keras.layers

# Layers a following BatchNormalization is folded into by the converter: leave those BNs alone.
_FOLDS_INTO = (layers.Conv1D, layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D,
               layers.Conv2DTranspose, layers.Dense)


def standalone_batchnorms(model):
    """Names of the BatchNormalization layers of ``model`` whose input is not a conv or Dense."""
    names = []
    for layer in model.layers:
        if not isinstance(layer, layers.BatchNormalization):
            continue
        inbound = [node.inbound_layers for node in layer._inbound_nodes]
        sources = [source for group in inbound
                   for source in (group if isinstance(group, (list, tuple)) else [group])]
        if sources and not any(isinstance(source, _FOLDS_INTO) for source in sources):
            names.append(layer.name)
    return names


def affine(bn):
    """The inference-mode BN as per-channel (scale, shift): y = x * scale + shift."""
    config = bn.get_config()
    weights = {w.name.split("/")[-1].split(":")[0]: w.numpy() for w in bn.weights}
    mean, variance = weights["moving_mean"], weights["moving_variance"]
    channels = mean.shape[0]
    gamma = weights.get("gamma", np.ones(channels, np.float32)) if config["scale"] else np.ones(channels, np.float32)
    beta = weights.get("beta", np.zeros(channels, np.float32)) if config["center"] else np.zeros(channels, np.float32)
    scale = gamma / np.sqrt(variance + config["epsilon"])
    return scale.astype(np.float32), (beta - mean * scale).astype(np.float32)


def _replacement(bn):
    """A layer computing ``bn``'s affine map as a 1x1 depthwise conv (through a 1x1 image for a
    vector input), under the BN's name."""
    shape = bn.input_shape
    axis = bn.get_config()["axis"]
    axis = axis[0] if isinstance(axis, (list, tuple)) else axis
    if axis not in (-1, len(shape) - 1):
        return None
    if len(shape) == 4:
        return layers.DepthwiseConv2D(1, name=bn.name)
    if len(shape) == 2:
        channels = shape[-1]
        return keras.Sequential([layers.Reshape((1, 1, channels)), layers.DepthwiseConv2D(1),
                                 layers.Reshape((channels,))], name=bn.name)
    return None


def rewrite(model):
    """A copy of ``model`` with each standalone BN as a 1x1 depthwise conv, same weights
    elsewhere; ``model`` itself when it has none (or only ones of a shape left as they are)."""
    targets = {}
    for name in standalone_batchnorms(model):
        replacement = _replacement(model.get_layer(name))
        if replacement is not None:
            targets[name] = replacement
    if not targets:
        return model

    def clone(layer):
        if layer.name in targets:
            return targets[layer.name]
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in copy.layers:
        source = model.get_layer(layer.name)
        if layer.name in targets:
            scale, shift = affine(source)
            kernel = scale.reshape(1, 1, -1, 1)
            depthwise = layer if isinstance(layer, layers.DepthwiseConv2D) else layer.layers[1]
            depthwise.set_weights([kernel, shift])
        elif layer.weights:
            layer.set_weights(source.get_weights())
    return copy
