"""Quantization-aware training of the whole flat clip model, and cutting frame/head out of it.

The MTDNN clip model is one flat functional graph (no nested models), so the whole network is
annotated at once: layers tfmot's registry knows get its configs, the rest get edgekit's
(:mod:`quantize.quantization.configs`). ``quantize_apply`` clones the model, so the frame and head
models that share layers with the float clip model do not exist in the QAT clone; they are cut
out of the QAT clip model again by position: the frame model runs from FoldTime's output to
UnfoldTime's input, the head from UnfoldTime's output to the task outputs — exactly the same cut
as :func:`quantize.model.build_mtdnn` makes on the float graph.

Two things decide whether the int8 export tracks the fake-quant model (see
:func:`calibrate_ranges` and :func:`head_layer_names`): the quantizer ranges start from the
float activations, not tfmot's [-6, 6]; and the head, exported as calibrated int8, is kept
float and frozen during QAT.
"""

import contextlib
from dataclasses import dataclass

import numpy as np

from edge.errors import EdgekitError
from quantize.quantization import configs
from quantize.tf_compat import keras, tf

import tensorflow_model_optimization as tfmot  # noqa: E402  (after tf_compat)
from tensorflow_model_optimization.python.core.quantization.keras import quant_ops  # noqa: E402

qkeras = tfmot.quantization.keras


@dataclass
class QATModels:
    clip: "keras.Model"
    frame: "keras.Model"
    head: "keras.Model"


def annotate(model, keep_float=(), preserve_sparsity=False):
    """A clone of ``model`` with every layer annotated for QAT (edgekit's configs where needed),
    except the LSTM and the layers named in ``keep_float``. ``preserve_sparsity`` for prune-qat
    (see :func:`configs.custom_config`)."""

    def clone(layer):
        config = configs.custom_config(layer, preserve_sparsity)
        fresh = layer.__class__.from_config(layer.get_config())
        if (isinstance(layer, keras.layers.InputLayer) or configs.leave_float(layer)
                or layer.name in keep_float):
            return fresh
        return qkeras.quantize_annotate_layer(fresh, quantize_config=config)

    try:
        annotated = keras.models.clone_model(model, clone_function=clone)
    except ValueError as exc:  # pragma: no cover - a layer type the builder never emits
        raise EdgekitError("cannot annotate the model for QAT: %s" % exc)
    annotated.set_weights(model.get_weights())
    return annotated


def quantize_scope():
    """The scope in which edgekit's configs and layers deserialize (clone, load, apply)."""
    return qkeras.quantize_scope(configs.CUSTOM_OBJECTS)


def apply_qat(clip_model, scheme=None, frozen_float=()):
    """The QAT clip model of a float clip model (weights carried over), and its frame/head cuts.

    ``scheme`` is tfmot's default 8-bit scheme, or the prune-preserving one for prune-qat.
    Layers named in ``frozen_float`` (the head, see :func:`head_layer_names`) get no fake-quant
    and are not trained: they are exported as calibrated int8 from their float weights.
    """
    frozen_float = set(frozen_float)
    preserve_sparsity = isinstance(
        scheme, tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme)
    with quantize_scope():
        annotated = annotate(clip_model, frozen_float, preserve_sparsity)
        try:
            if scheme is None:
                qat = qkeras.quantize_apply(annotated)
            else:
                qat = qkeras.quantize_apply(annotated, scheme)
        except (ValueError, RuntimeError) as exc:
            raise EdgekitError("quantization-aware training cannot wrap this network (%s); use "
                               "--method ptq for it" % str(exc).splitlines()[0])
    for name in frozen_float:
        qat.get_layer(name).trainable = False
    return cut(qat)


def head_layer_names(mtdnn):
    """Names of the layers of an MTDNN's head (everything after the frame/head cut).

    The head cannot be QAT-exported whole (its LSTM converts to the fused int8 op only from a
    float graph), so it is exported as calibrated int8. Fine-tuning it with fake-quant nodes the
    export does not have makes its weights depend on them: measured on a trained mbconv_micro
    run, the QAT head scored 0.94 action accuracy with its fake-quant nodes and 0.42 as the
    float copy that gets calibrated. So the head stays float and frozen during QAT (its BNs run
    on their moving statistics), and the frame is trained to feed it.
    """
    return [layer.name for layer in mtdnn.head.layers
            if not isinstance(layer, keras.layers.InputLayer)]


@contextlib.contextmanager
def _observing_ranges(record):
    """While active, tfmot's activation fake-quant ops pass their input through unchanged and
    record its min/max per range variable (keyed by the min variable); weight fake-quant ops
    set their ranges from the weights."""
    originals = {name: getattr(quant_ops, name) for name in ("MovingAvgQuantize", "AllValuesQuantize")}

    def observe(inputs, min_var, max_var, *args, **kwargs):
        if not tf.executing_eagerly():  # pragma: no cover - calibration always runs eagerly
            raise RuntimeError("range calibration must run eagerly")
        low, high = float(tf.reduce_min(inputs)), float(tf.reduce_max(inputs))
        key = min_var.ref()
        if key in record:
            _, _, old_low, old_high = record[key]
            low, high = min(low, old_low), max(high, old_high)
        record[key] = (min_var, max_var, low, high)
        return tf.identity(inputs)

    last_value = quant_ops.LastValueQuantize

    def weights_as_in_training(*args, **kwargs):
        # Weight ranges start at [-6, 6] too and are only set by a training step: set them from
        # the weights now (what a training step does), so the calibration sees real weights.
        kwargs["is_training"] = True
        return last_value(*args, **kwargs)

    for name in originals:
        setattr(quant_ops, name, observe)
    quant_ops.LastValueQuantize = weights_as_in_training
    try:
        yield record
    finally:
        for name, function in originals.items():
            setattr(quant_ops, name, function)
        quant_ops.LastValueQuantize = last_value


def calibrate_ranges(qat_clip, clips, batch_size=4):
    """Set every activation quantizer's range to the float min/max seen on ``clips``.

    tfmot starts each activation range at [-6, 6] and moves it by an EMA with decay 0.999 per
    training step, so a fine-tuning of a few hundred steps ends with ranges still near [-6, 6]:
    a tensor whose values stay within +-0.02 (the MTDNN's spatial-attention maps, SE squeezes)
    is fake-quantized to all zeros, the weights adapt to that broken graph and the float copy
    of them (what the calibrated head is made of) no longer works. Calibrating the ranges from
    the float activations first (as post-training quantization would) makes fine-tuning start
    from the PTQ graph. Returns the number of ranges set.
    """
    record = {}
    with _observing_ranges(record):
        for start in range(0, len(clips), batch_size):
            qat_clip(np.asarray(clips[start:start + batch_size], dtype=np.float32), training=False)
    for min_var, max_var, low, high in record.values():
        low, high = min(low, 0.0), max(high, 0.0)
        if high - low < 1e-6:
            high = low + 1e-6
        min_var.assign(tf.cast(tf.fill(tf.shape(min_var), low), min_var.dtype))
        max_var.assign(tf.cast(tf.fill(tf.shape(max_var), high), max_var.dtype))
    return len(record)


def _find(model, original_name):
    for name in ("quant_" + original_name, original_name):
        try:
            return model.get_layer(name)
        except ValueError:
            continue
    raise EdgekitError("the QAT model has no layer %r; the run's network is not an MTDNN"
                       % original_name)


def cut(qat_clip):
    """Frame and head models out of a (QAT) clip model, sharing its layers."""
    fold = _find(qat_clip, "fold_time")
    unfold = _find(qat_clip, "unfold_time")
    frame = keras.Model(fold.output, unfold.input, name="frame")
    head = keras.Model(unfold.output, qat_clip.output, name="head")
    return QATModels(qat_clip, frame, head)


def copy_to_float(qat_clip, float_clip):
    """Copy the fine-tuned weights of a QAT clip model into a float clip model, layer by name.

    Used for the parts exported as calibrated int8 (the head with its LSTM): they keep what QAT
    fine-tuning learned, only without fake-quant nodes.
    """
    for layer in float_clip.layers:
        if not layer.weights:
            continue
        source = _find(qat_clip, layer.name)
        # A QuantizeWrapper owns the wrapped layer's variables (the layer's kernel attribute is
        # swapped for its fake-quantized tensor), next to quantizer ranges such as kernel_min:
        # match each float weight by its own last name component.
        by_suffix = {w.name.split("/")[-1]: w for w in source.weights}
        values = []
        for weight in layer.weights:
            key = weight.name.split("/")[-1]
            if key not in by_suffix:
                raise EdgekitError("QAT layer %s has no weight %s" % (source.name, key))
            values.append(by_suffix[key].numpy())
        layer.set_weights(values)
    return float_clip


def compose_clip(frame, head, config):
    """A clip model (B, T, H, W, 3) -> outputs from a (QAT) frame model and a head model."""
    from quantize.layers import FoldTime, UnfoldTime

    clip_input = keras.Input((config.clip_length, config.height, config.width, 3), name="clip")
    features = frame(FoldTime(name="export_fold_time")(clip_input))
    outputs = head(UnfoldTime(config.clip_length, name="export_unfold_time")(features))
    return keras.Model(clip_input, outputs, name="clip_export")
