"""The streaming split of an MTDNN: what the camera computes once per frame, and once per window.

The clip model (:mod:`quantize.model`) is what is trained and what ``clip.tflite`` is. On the
camera every frame passes the frame model once, a ring keeps what the window head needs of the
last T frames, and the head runs once per decision. The split puts each piece of the network
where its work belongs:

* **per frame** (the frame model, ``frame.tflite``): the backbone, and the first steps of the
  temporal branch, which see one frame at a time: the frame's spatial mean and the LSTM's input
  projections ``W_x x_t + b`` of all four gates, one FULLY_CONNECTED (output ``lstm_inputs``).
  In the clip model's head these were recomputed for each of the T frames of every window: on
  the EfficientNet-B3 swim head, 5.9 M of its 19.3 M multiply-accumulates per window; here they
  cost 0.39 M once per frame (0.2 % of the B3 frame model). The frame model also outputs the
  feature map (``features``), which only the spatial branch reads.
* **in the ring** (:mod:`edge.window_inputs`): the spatial branch reads only the time mean of the
  feature maps, so the ring keeps their running sum in integers (exact: no drift over hours of
  frames) and hands the head the mean (input ``spatial_mean``), not T maps.
* **per frame, for every window** (the step model, ``step.tflite``, run by
  :mod:`edge.recurrence`): the LSTM's recurrence ``h_{t-1} R`` and gates. Every frame belongs to
  T windows (at stride 1), which all take its ``lstm_inputs``, so one step advances the states of
  all T at once, as one [T x u] x [u x 4u] FULLY_CONNECTED. Unrolled inside the head, the same
  recurrence was T-1 matmuls per window, each with its own XNNPACK-packed copy of R; that was
  3.7 MB of the B3 head's 6.26 MB of packed weights read per window.
* **per window** (the head, ``head.tflite``): only what needs the whole window: the
  self-attention over the window's T hidden states (input ``hidden_states``), the spatial
  convolutions on the mean map, fusion and the task heads.

Which head input comes from which frame output, and how the window is made of it, is the
manifest's ``window`` list (:func:`window_inputs`): the device knows "mean" and "recurrent" (and
"stack", for older directories), not LSTMs. The streaming models are built fresh with the clip
model's layer names and take their weights from the trained model by name (the LSTM's kernel and
bias go to the frame model's ``stream_lstm_input``, its recurrent kernel to the step model's
:class:`LSTMStep`), so training, checkpoints and ``clip.tflite`` are unchanged; in float,
frame + step + head compute what the clip model computes (tests/test_streaming_split.py).
"""

import numpy as np

from edge.manifest import WindowInput
from edge.recurrence import CELL, HIDDEN, NEXT_CELL, NEXT_HIDDEN, STEP_INPUT
from quantize.model import fusion_and_tasks, spatial_branch, temporal_window
from quantize.tf_compat import keras, tf

layers = keras.layers

FEATURES = "features"          # frame output: the backbone's feature map
LSTM_INPUTS = STEP_INPUT       # frame output and step input: W_x x_t + b, all four gates
SPATIAL_MEAN = "spatial_mean"  # head input: the time mean of the window's feature maps
HIDDEN_STATES = "hidden_states"  # head input: the LSTM's hidden states over the window


def has_spatial(config):
    return config.branches in ("fused", "spatial")


def has_temporal(config):
    return config.branches in ("fused", "temporal")


def window_inputs(config):
    """The manifest's ``window``: each head input, the frame output it is made of, and how."""
    links = []
    if has_spatial(config):
        links.append(WindowInput(input=SPATIAL_MEAN, source=FEATURES, reduce="mean"))
    if has_temporal(config):
        links.append(WindowInput(input=HIDDEN_STATES, source=LSTM_INPUTS, reduce="recurrent"))
    return links


@keras.utils.register_keras_serializable(package="edgekit")
class LSTMStep(layers.Layer):
    """One step of a Keras LSTM (gate order i, f, c, o; sigmoid and tanh) for T windows at once:
    ``[cell, hidden, projections]`` ((B, T, u), (B, T, u), (B, 4u): this frame's
    ``W_x x_t + b``, the same for all T rows) -> ``(next_hidden, next_cell)``, (B, T, u) each.

    Written for the converter and XNNPACK: the rows are flattened for one 2-D matmul (a
    FULLY_CONNECTED; a 3-D matmul would be a BATCH_MATMUL, which XNNPACK does not take in
    int8), and sigmoid and tanh each run once over all 4u pre-activations before the gates are
    sliced out (no SPLIT, which the MLIR quantizer can leave in float).
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(self.units, 4 * self.units), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        cell, hidden, projections = inputs
        u, rows = self.units, hidden.shape[1]
        z = tf.reshape(tf.matmul(tf.reshape(hidden, (-1, u)), self.recurrent_kernel),
                       (-1, rows, 4 * u)) + tf.expand_dims(projections, 1)
        sig, tanh = tf.sigmoid(z), tf.tanh(z)
        i, f, g, o = sig[..., :u], sig[..., u:2 * u], tanh[..., 2 * u:3 * u], sig[..., 3 * u:]
        cell = f * cell + i * g
        return o * tf.tanh(cell), cell

    def get_config(self):
        return dict(super().get_config(), units=self.units)


def frame_model(frame, source):
    """The streaming frame model: ``frame`` (the backbone cut of a float or QAT clip model)
    plus the per-frame part of the temporal branch, weights from ``source`` (the float MTDNN).

    Outputs (a dict, so they are the TFLite signature's names): ``features`` when the network
    has a spatial branch, ``lstm_inputs`` when it has a temporal one. The added layers are float;
    for QAT frames the converter calibrates them on the representative frames like any tensor
    QAT does not model.
    """
    config = source.config
    features = frame.output
    outputs = {}
    if has_spatial(config):
        outputs[FEATURES] = features
    if has_temporal(config):
        lstm = source.clip.get_layer("temporal_lstm")
        pooled = layers.GlobalAveragePooling2D(name="stream_frame_pool")(features)
        projection = layers.Dense(4 * lstm.units, name="stream_lstm_input")
        outputs[LSTM_INPUTS] = projection(pooled)
        kernel, _, bias = lstm.get_weights()
        projection.set_weights([kernel, bias])
    return keras.Model(frame.input, outputs, name="frame_stream")


def step_model(source):
    """The step model of ``source`` (a float MTDNN with a temporal branch): inputs (in name
    order, as the converter orders them) ``cell``, ``hidden`` (T, u) and ``lstm_inputs`` (4u),
    outputs ``next_hidden`` and ``next_cell``; the LSTM's recurrent kernel by value."""
    T = source.config.clip_length
    lstm = source.clip.get_layer("temporal_lstm")
    u = lstm.units
    cell = keras.Input((T, u), name=CELL)
    hidden = keras.Input((T, u), name=HIDDEN)
    projections = keras.Input((4 * u,), name=LSTM_INPUTS)
    step = LSTMStep(u, name="temporal_lstm")
    next_hidden, next_cell = step([cell, hidden, projections])
    model = keras.Model([cell, hidden, projections],
                        {NEXT_HIDDEN: next_hidden, NEXT_CELL: next_cell}, name="step_stream")
    step.set_weights([lstm.get_weights()[1]])  # the Keras LSTM's (kernel, recurrent, bias)
    return model


def head_model(source):
    """The streaming head of ``source`` (a float MTDNN): inputs in :func:`window_inputs` order,
    the task outputs of the clip model, weights shared by value (copied by layer name)."""
    config = source.config
    widths = config.widths
    inputs, branches = [], []
    if has_spatial(config):
        mean = keras.Input(tuple(source.feature_shape), name=SPATIAL_MEAN)
        inputs.append(mean)
        branches.append(spatial_branch(mean, widths))
    if has_temporal(config):
        units = source.clip.get_layer("temporal_lstm").units
        hidden = keras.Input((config.clip_length, units), name=HIDDEN_STATES)
        inputs.append(hidden)
        branches.append(temporal_window(hidden, widths))
    head = keras.Model(inputs, fusion_and_tasks(branches, config), name="head_stream")
    for layer in head.layers:
        if layer.weights:
            layer.set_weights(source.clip.get_layer(layer.name).get_weights())
    return head


def recurrent_windows(step, clips, length):
    """Run the float ``step`` model (:func:`step_model`) over each clip's ``lstm_inputs``
    ((T, 4u) floats, the frame model's outputs) as the device runs it (a window starting at
    every frame): (the step's calibration samples, one per frame in its input order; each
    clip's hidden states of the window starting at its first frame, (T, u))."""
    samples, windows = [], []
    for projections in clips:
        units = step.inputs[0].shape[-1]
        hidden = np.zeros((1, length, units), np.float32)
        cell = np.zeros((1, length, units), np.float32)
        first = []
        for t, x in enumerate(np.asarray(projections, np.float32)):
            hidden[0, t % length] = 0.0  # the window starting at this frame
            cell[0, t % length] = 0.0
            samples.append([cell[0].copy(), hidden[0].copy(), x])
            out = step([cell, hidden, x[None]], training=False)
            hidden, cell = np.array(out[NEXT_HIDDEN]), np.array(out[NEXT_CELL])
            first.append(hidden[0, 0].copy())
        windows.append(np.stack(first[:length]))
    return samples, windows


def input_shapes(model):
    """[(input name, batch-1 shape)] of a Keras model, in its input order (for the converter)."""
    return [(name, (1,) + tuple(int(d) for d in tensor.shape[1:]))
            for name, tensor in zip(model.input_names, model.inputs)]
