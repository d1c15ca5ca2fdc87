"""Squeeze-excitation convs are quantized per-tensor, every other conv per-channel.

Per-channel scales pay for themselves only where a folded BatchNormalization spreads the channel
ranges apart; the SE convs have no BN, and each output channel of theirs costs 24 B of scale and
zero-point metadata in the file (see quantize.quantization.configs). These tests look at what the
TFLite converter actually wrote: the weight and bias quantization of every CONV_2D of a QAT
frame model, found by structure (an SE conv reads a 1x1 map), not by tensor name.
"""

import os

import numpy as np
import pytest


SIZE = 32


def _conv_quantization(blob_or_path):
    """[(input is a 1x1 map, output channels, weight scale count, bias scale count)] per CONV_2D."""
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(blob_or_path, (bytes, bytearray)):
        interpreter = Interpreter(model_content=bytes(blob_or_path))
    else:
        interpreter = Interpreter(model_path=blob_or_path)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    convs = []
    for op in interpreter._get_ops_details():
        if op["op_name"] != "CONV_2D":
            continue
        data, weight, bias = (tensors[i] for i in op["inputs"][:3])
        scales = lambda t: len(t["quantization_parameters"]["scales"])  # noqa: E731
        convs.append((tuple(data["shape"][1:3]) == (1, 1), int(weight["shape"][0]),
                      scales(weight), scales(bias)))
    return convs


def _assert_se_per_tensor_others_per_channel(convs):
    se = [c for c in convs if c[0]]
    others = [c for c in convs if not c[0]]
    assert se and others, convs
    assert all(weights == 1 and bias == 1 for _, _, weights, bias in se), se
    assert all(weights == channels and bias == channels
               for _, channels, weights, bias in others), others


def _tiny_frame():
    from quantize.backbones import build_backbone
    from quantize.tf_compat import keras

    inputs = keras.Input((SIZE, SIZE, 3))
    return keras.Model(inputs, build_backbone("test_tiny", inputs, None))


def test_qat_frame_converts_se_convs_per_tensor():
    """The QAT path of a test_tiny frame (annotate, quantize_apply, calibrated ranges, qat
    conversion): SE weights and biases get one scale, the BN-folded convs one per channel, and
    the SE convs keep their activation fake-quant (before sigmoid; before and after swish)."""
    from quantize.quantization import qat
    from quantize.quantization.convert import convert

    frame = _tiny_frame()
    with qat.quantize_scope():
        qat_frame = qat.qkeras.quantize_apply(qat.annotate(frame))
    rng = np.random.default_rng(0)
    samples = rng.uniform(0, 255, (4, SIZE, SIZE, 3)).astype(np.float32)
    qat.calibrate_ranges(qat_frame, samples)

    ranges = {w.name.split("/")[-1].split(":")[0]: w.shape
              for w in qat_frame.get_layer("quant_tiny_block1_se_expand").weights}
    assert ranges["kernel_min"] == () and ranges["kernel_max"] == ()
    assert "pre_activation_min" in ranges  # sigmoid: fake-quant on its input
    reduce = {w.name.split("/")[-1].split(":")[0]
              for w in qat_frame.get_layer("quant_tiny_block1_se_reduce").weights}
    # swish is not fused into CONV_2D: the conv's output and the swish's output are both int8
    assert {"post_activation_min", "output_min"} <= reduce

    blob = convert(qat_frame, (1, SIZE, SIZE, 3), "frame", "qat", list(samples), "uint8", "int8",
                   "features")
    _assert_se_per_tensor_others_per_channel(_conv_quantization(blob))


def test_only_convs_on_a_1x1_map_without_batchnorm_are_se_convs():
    from quantize.quantization import configs
    from quantize.tf_compat import keras

    layers = keras.layers
    pooled = keras.Input((1, 1, 8))
    se = layers.Conv2D(4, 1, activation="swish", name="se")(pooled)
    folded = layers.Conv2D(4, 1, use_bias=False, name="folded")(pooled)
    bn = layers.BatchNormalization(name="bn")(folded)
    grid = keras.Input((4, 4, 8))
    spatial = layers.Conv2D(4, 1, name="spatial")(grid)
    model = keras.Model([pooled, grid], [se, bn, spatial])
    assert isinstance(configs.custom_config(model.get_layer("se")),
                      configs.SqueezeExciteConvQuantizeConfig)
    assert configs.custom_config(model.get_layer("folded")) is None  # tfmot folds the BN
    assert configs.custom_config(model.get_layer("spatial")) is None
    assert configs.qat_coverage(model)["se"] == "custom:SqueezeExciteConvQuantizeConfig"


@pytest.mark.slow
def test_pipeline_qat_frame_has_per_tensor_se_convs(quantized):
    """The frame.tflite ``edgekit quantize --method qat`` writes (the run shared with
    tests/test_quantize_methods.py)."""
    out, report = quantized("qat", target="coral", interrupted=True)
    _assert_se_per_tensor_others_per_channel(_conv_quantization(os.path.join(out, "frame.tflite")))
    assert report["qat_coverage"]["tiny_block2_se_expand"] == "custom:SqueezeExciteConvQuantizeConfig"
