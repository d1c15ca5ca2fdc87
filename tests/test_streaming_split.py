"""The streaming split (quantize.streaming): in float, frame model + ring (the running mean, the
step model's recurrence a step per frame) + head compute the clip model, for each branch
configuration; the weights come from the clip model by name."""

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
    """Frame model per frame, the window made as the device makes it, head once per clip."""
    frame = streaming.frame_model(model.frame, model)
    head = streaming.head_model(model)
    outputs = frame(clips.reshape((-1,) + clips.shape[2:]), training=False)
    per_frame = {name: value.numpy().reshape((len(clips), T) + tuple(value.shape[1:]))
                 for name, value in outputs.items()}
    inputs = []
    for link in streaming.window_inputs(model.config):
        if link.reduce == "recurrent":
            _, hidden = streaming.recurrent_windows(streaming.step_model(model),
                                                    per_frame[link.source], T)
            inputs.append(np.stack(hidden))
        else:
            inputs.append(per_frame[link.source].mean(axis=1))
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
        ("spatial_mean", "features", "mean"), ("hidden_states", "lstm_inputs", "recurrent")]
    head = streaming.head_model(model)
    assert streaming.input_shapes(head) == [("spatial_mean", (1,) + model.feature_shape),
                                            ("hidden_states", (1, T, units))]
    step = streaming.step_model(model)
    assert streaming.input_shapes(step) == [("cell", (1, T, units)), ("hidden", (1, T, units)),
                                            ("lstm_inputs", (1, 4 * units))]
    zeros = [np.zeros((1,) + shape[1:], np.float32) for _, shape in streaming.input_shapes(step)]
    assert sorted(step(zeros, training=False)) == ["next_cell", "next_hidden"]
    # The per-window work lost the T input projections and the recurrence: the head has fewer
    # weights than before, the step model only the recurrent kernel.
    assert head.count_params() + step.count_params() < model.head.count_params()
    assert step.count_params() == units * 4 * units
    assert frame.count_params() == model.frame.count_params() + (model.feature_shape[-1] + 1) * 4 * units


def test_staggered_steps_give_every_window_the_keras_lstm_of_its_own_frames():
    """Row k of the step model starts from zero at frame k (mod T) and advances with every
    frame: each window's hidden states are the Keras LSTM's over just its T frames."""
    rng = np.random.default_rng(2)
    units, length, dims = 5, 6, 3
    lstm = keras.layers.LSTM(units, return_sequences=True)
    x = rng.normal(0, 1, (1, 3 * length, dims)).astype(np.float32)
    lstm(x)
    kernel, recurrent, bias = lstm.get_weights()
    step = streaming.LSTMStep(units)
    projections = x[0] @ kernel + bias
    hidden = np.zeros((1, length, units), np.float32)
    cell = np.zeros((1, length, units), np.float32)
    history = []
    for t, p in enumerate(projections):
        hidden[0, t % length] = 0.0
        cell[0, t % length] = 0.0
        if not step.built:
            step([cell, hidden, p[None]])
            step.set_weights([recurrent])
        hidden, cell = [v.numpy() for v in step([cell, hidden, p[None]])]
        history.append(hidden[0].copy())
    for start in range(len(projections) - length + 1):
        expected = lstm(x[:, start:start + length]).numpy()[0]
        got = np.stack([history[start + j][start % length] for j in range(length)])
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
