"""The streaming split (quantize.streaming): in float, frame model + ring + head compute the clip
model, for each branch configuration; the weights come from the clip model by name."""

import numpy as np
import pytest

from quantize import streaming
from quantize.config import swim_config
from quantize.model import build_mtdnn
from quantize.tf_compat import keras

T = 4


def _model(branches="fused", seed=0):
    keras.utils.set_random_seed(seed)
    config = swim_config(backbone="test_tiny", size=(32, 32), clip_length=T, head_size="tiny")
    config.branches = branches
    model = build_mtdnn(config)
    rng = np.random.default_rng(seed)
    # non-trivial BN statistics and LSTM weights, so every path carries signal
    for layer in model.clip.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape))
        if isinstance(layer, keras.layers.LSTM):
            layer.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32)
                               for w in layer.get_weights()])
    return model


def _streamed(model, clips):
    """Frame model per frame, the window made as the ring makes it, head once per clip."""
    frame = streaming.frame_model(model.frame, model)
    head = streaming.head_model(model)
    outputs = frame(clips.reshape((-1,) + clips.shape[2:]), training=False)
    inputs = []
    for link in streaming.window_inputs(model.config):
        per_frame = outputs[link.source].numpy().reshape((len(clips), T) + tuple(
            outputs[link.source].shape[1:]))
        inputs.append(per_frame.mean(axis=1) if link.reduce == "mean" else per_frame)
    return head(inputs if len(inputs) > 1 else inputs[0], training=False)


@pytest.mark.parametrize("branches", ["fused", "spatial", "temporal"])
def test_frame_plus_head_equals_the_clip_model_in_float(branches):
    model = _model(branches)
    clips = np.random.default_rng(1).uniform(0, 255, (3, T, 32, 32, 3)).astype(np.float32)
    whole = model.clip(clips, training=False)
    split = _streamed(model, clips)
    assert sorted(split) == sorted(whole)
    for name in whole:
        np.testing.assert_allclose(split[name].numpy(), whole[name].numpy(), rtol=1e-4, atol=1e-5)


def test_frame_outputs_and_window_follow_the_branches():
    model = _model()
    frame = streaming.frame_model(model.frame, model)
    outputs = frame(np.zeros((1, 32, 32, 3), np.float32), training=False)
    assert sorted(outputs) == ["features", "lstm_inputs"]
    units = model.clip.get_layer("temporal_lstm").units
    assert tuple(outputs["lstm_inputs"].shape) == (1, 4 * units)
    assert [(w.input, w.source, w.reduce) for w in streaming.window_inputs(model.config)] == [
        ("spatial_mean", "features", "mean"), ("lstm_inputs", "lstm_inputs", "stack")]
    head = streaming.head_model(model)
    assert streaming.input_shapes(head) == [("spatial_mean", (1,) + model.feature_shape),
                                            ("lstm_inputs", (1, T, 4 * units))]
    # The per-window work lost the T input projections: the head has fewer weights than before.
    assert head.count_params() < model.head.count_params()
    assert frame.count_params() == model.frame.count_params() + (model.feature_shape[-1] + 1) * 4 * units


def test_recurrence_matches_keras_lstm_on_projected_inputs():
    rng = np.random.default_rng(2)
    units, steps, dims = 5, 6, 3
    lstm = keras.layers.LSTM(units, return_sequences=True)
    x = rng.normal(0, 1, (2, steps, dims)).astype(np.float32)
    expected = lstm(x).numpy()
    kernel, recurrent, bias = lstm.get_weights()
    recurrence = streaming.LSTMRecurrence(units)
    recurrence.build((None, steps, 4 * units))
    recurrence.set_weights([recurrent])
    got = recurrence(x @ kernel + bias).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
