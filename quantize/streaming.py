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
  frames) and hands the head the mean (input ``spatial_mean``), not T maps; the ``lstm_inputs``
  of the last T frames are stacked oldest first.
* **per window** (the head, ``head.tflite``): only what needs the whole window: the LSTM's
  recurrence ``h_{t-1} R`` and gates (one FULLY_CONNECTED per step for all four gates), the
  self-attention, the spatial convolutions on the mean map, fusion and the task heads.

Which head input comes from which frame output, and how the window is made of it, is the
manifest's ``window`` list (:func:`window_inputs`): the device knows "stack" and "mean", not
LSTMs. The streaming models are built fresh with the clip model's layer names and take their
weights from the trained model by name (the LSTM's kernel and bias go to the frame model's
``stream_lstm_input``, its recurrent kernel to the head's :class:`LSTMRecurrence`), so training,
checkpoints and ``clip.tflite`` are unchanged; in float, frame + head compute what the clip model
computes (tests/test_streaming_split.py).
"""

from edge.manifest import WindowInput
from quantize.model import fusion_and_tasks, spatial_branch, temporal_window
from quantize.tf_compat import keras, tf

layers = keras.layers

FEATURES = "features"          # frame output: the backbone's feature map
LSTM_INPUTS = "lstm_inputs"    # frame output and head input: W_x x_t + b, all four gates
SPATIAL_MEAN = "spatial_mean"  # head input: the time mean of the window's feature maps


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
        links.append(WindowInput(input=LSTM_INPUTS, source=LSTM_INPUTS, reduce="stack"))
    return links


@keras.utils.register_keras_serializable(package="edgekit")
class LSTMRecurrence(layers.Layer):
    """The recurrent half of a Keras LSTM (gate order i, f, c, o; sigmoid and tanh) over inputs
    that already hold ``W_x x_t + b`` per step: (B, T, 4u) -> hidden states (B, T, u).

    Unrolled from a zero state, and written for the converter and XNNPACK (measured on the B3
    swim head, u = 256, T = 15: every node delegated, one partition, 0.08 ms for the whole
    recurrence; the Keras LSTM's unrolled graph left 15 slices, a PACK and the ADDs on the CPU):

    * one matmul per step for all four gates, none at the first step (``h_0 = 0``);
    * the steps are cut out of the window as 2-D slices of one flattened (B, T*4u) tensor: a
      slice with shrink_axis (``x[:, t]``) has no XNNPACK kernel;
    * sigmoid and tanh each run once over all 4u pre-activations and the gates are sliced out
      afterwards: no SPLIT, which the MLIR quantizer leaves in float when it reads a slice of the
      input (the int8 gate rejects it), and 2 nodes fewer per step than an activation per gate;
    * the hidden states are concatenated four at a time, then the groups: XNNPACK's
      CONCATENATION takes at most 4 inputs, a 15-input one stays on the CPU.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(self.units, 4 * self.units), initializer="zeros")
        super().build(input_shape)

    def call(self, projections):
        u, steps = self.units, projections.shape[1]
        flat = tf.reshape(projections, (-1, steps * 4 * u))
        hidden, cell, states = None, None, []
        for step in range(steps):
            z = flat[:, step * 4 * u:(step + 1) * 4 * u]
            if hidden is not None:
                z = z + tf.matmul(hidden, self.recurrent_kernel)
            sig, tanh = tf.sigmoid(z), tf.tanh(z)
            i, f, g, o = sig[:, :u], sig[:, u:2 * u], tanh[:, 2 * u:3 * u], sig[:, 3 * u:]
            cell = i * g if cell is None else f * cell + i * g
            hidden = o * tf.tanh(cell)
            states.append(tf.expand_dims(hidden, 1))
        return _concat(states)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([input_shape[0], input_shape[1], self.units])

    def get_config(self):
        return dict(super().get_config(), units=self.units)


def _concat(tensors, fan_in=4):
    """Concatenate along time, at most ``fan_in`` tensors per CONCATENATION node."""
    while len(tensors) > 1:
        tensors = [tensors[k] if len(tensors[k:k + fan_in]) == 1 else
                   tf.concat(tensors[k:k + fan_in], axis=1)
                   for k in range(0, len(tensors), fan_in)]
    return tensors[0]


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
        projections = keras.Input((config.clip_length, 4 * units), name=LSTM_INPUTS)
        inputs.append(projections)
        hidden = LSTMRecurrence(units, name="temporal_lstm")(projections)
        branches.append(temporal_window(hidden, widths))
    head = keras.Model(inputs, fusion_and_tasks(branches, config), name="head_stream")
    for layer in head.layers:
        if not layer.weights:
            continue
        weights = source.clip.get_layer(layer.name).get_weights()
        if isinstance(layer, LSTMRecurrence):
            weights = [weights[1]]  # the Keras LSTM's (kernel, recurrent_kernel, bias)
        layer.set_weights(weights)
    return head


def input_shapes(model):
    """[(input name, batch-1 shape)] of a Keras model, in its input order (for the converter)."""
    return [(name, (1,) + tuple(int(d) for d in tensor.shape[1:]))
            for name, tensor in zip(model.input_names, model.inputs)]
