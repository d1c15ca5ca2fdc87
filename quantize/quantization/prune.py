"""Magnitude pruning to a target sparsity, then pruning-preserving QAT (tfmot combine).

Only layers whose weights dominate the size and that TFLite stores as dense int8 tensors are
pruned: Conv2D (incl. the 1x1 projections and SE convs), Dense, SeparableConv2D. Depthwise
kernels are tiny and sensitive, the LSTM's gates and the BN/PReLU vectors likewise; they stay
dense; Dense kernels are pruned in blocks that stay contiguous in the TFLite file
(:func:`block_size`). The sparsity ramps with a PolynomialDecay from 0 to ``--sparsity`` over
the first two thirds of the pruning steps and then holds, so the network trains at its final
sparsity before it is stripped (quickstart run, int8 action accuracy: 0.938 with the hold vs
0.917 without at ``--epochs 2``; 0.958, the float model's, at ``--epochs 4``),
``strip_pruning`` leaves plain layers with zeros in their kernels, and
``Default8BitPrunePreserveQuantizeScheme`` keeps those zeros through QAT, so the int8 file
compresses (gzip) by roughly the sparsity.
"""

import numpy as np

from edge.errors import EdgekitError
from quantize.tf_compat import keras

import tensorflow_model_optimization as tfmot  # noqa: E402

sparsity_api = tfmot.sparsity.keras
PRUNED_TYPES = (keras.layers.Conv2D, keras.layers.Dense, keras.layers.SeparableConv2D)


def check_sparsity(sparsity):
    """A target sparsity must leave some weights and remove some: 0 < s < 1."""
    if sparsity is None:
        raise EdgekitError("--method prune-qat needs --sparsity (e.g. 0.5)")
    sparsity = float(sparsity)
    if not 0.0 < sparsity < 1.0:
        raise EdgekitError("--sparsity must be between 0 and 1 (exclusive), e.g. 0.5 for half "
                           "the weights zero; got %s" % sparsity)
    return sparsity


def prunable(layer):
    return isinstance(layer, PRUNED_TYPES) and not isinstance(layer, keras.layers.DepthwiseConv2D)


DENSE_BLOCK = 16


def block_size(layer):
    """Pruning block of ``layer``: Dense kernels are pruned in blocks of 16 input weights of one
    output unit, the others weight by weight.

    TFLite stores a FULLY_CONNECTED kernel as (outputs, inputs), so a Keras (inputs, outputs)
    block of (16, 1) is 16 consecutive zero bytes in the file, which gzip encodes as a short
    match; scattered single zeros are not much cheaper than the int8 values they replace
    (measured on int8 normal weights at 50 % sparsity: gzip size 0.70x of dense for single
    weights, 0.55x for blocks of 16). tfmot prunes blocks in 2-D kernels only, so Conv kernels
    stay weight by weight. The Dense layers hold most of the MTDNN's parameters.
    """
    if isinstance(layer, keras.layers.Dense):
        inputs, outputs = (int(v) for v in layer.kernel.shape)
        # tfmot squeezes the pooled block grid: a grid dimension of 1 breaks it (rank error).
        if inputs > DENSE_BLOCK and outputs > 1:
            return (DENSE_BLOCK, 1)
    return (1, 1)


RAMP_FRACTION = 2.0 / 3.0


def wrap_for_pruning(clip_model, sparsity, total_steps, ramp_fraction=RAMP_FRACTION):
    """A clone of ``clip_model`` with prunable layers wrapped (weights carried over).

    The sparsity ramps up over the first ``ramp_fraction`` of the steps and then holds, so the
    pruned network trains at its final sparsity (with its mask fixed) before it is stripped.
    """
    end = max(1, int(round(int(total_steps) * ramp_fraction)) - 1)
    schedule = sparsity_api.PolynomialDecay(initial_sparsity=0.0, final_sparsity=float(sparsity),
                                            begin_step=0, end_step=end, frequency=1)

    def clone(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        if prunable(layer):
            return sparsity_api.prune_low_magnitude(fresh, pruning_schedule=schedule,
                                                    block_size=block_size(layer))
        return fresh

    with sparsity_api.prune_scope():
        wrapped = keras.models.clone_model(clip_model, clone_function=clone)
    copy_by_name(clip_model, wrapped)
    return wrapped


def copy_by_name(source, target):
    """Copy layer weights by layer name: a pruning wrapper adds mask/threshold variables, so
    whole-model weight lists do not line up between wrapped and plain models."""
    for layer in target.layers:
        if not layer.weights:
            continue
        inner = getattr(layer, "layer", layer)
        src = source.get_layer(inner.name if inner is not layer else layer.name)
        src = getattr(src, "layer", src)
        inner.set_weights(src.get_weights())


def callbacks():
    return [sparsity_api.UpdatePruningStep()]


def strip(wrapped, float_template):
    """Strip pruning wrappers; the weights go back into ``float_template`` (a fresh float clip
    model with the run's architecture), which keeps the frame/head cut-outs of build_mtdnn."""
    stripped = sparsity_api.strip_pruning(wrapped)
    copy_by_name(stripped, float_template)
    return float_template


def _kernel(layer):
    inner = getattr(layer, "layer", layer)  # QuantizeWrapper / PruneLowMagnitude
    for attr in ("kernel", "pointwise_kernel"):
        value = getattr(inner, attr, None)
        if value is not None:
            return np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    return None


def layer_sparsity(model):
    """{layer name: fraction of zero weights in its main kernel} for the prunable layers."""
    result = {}
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if not prunable(inner):
            continue
        kernel = _kernel(layer)
        if kernel is not None and kernel.size:
            result[inner.name] = round(float(np.mean(kernel == 0)), 4)
    return result


def overall_sparsity(model):
    zeros = total = 0
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if prunable(inner):
            kernel = _kernel(layer)
            if kernel is not None:
                zeros += int(np.sum(kernel == 0))
                total += int(kernel.size)
    return zeros / total if total else 0.0
