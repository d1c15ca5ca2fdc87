"""The MTDNN builder: one configurable function for both of the seed's instances.

:func:`build_mtdnn` returns three Keras models that share their layers (and so their weights):

* ``clip``: (T, H, W, 3) pixels -> task outputs, the model that is trained;
* ``frame``: (H, W, 3) pixels -> (h, w, c) feature map, what the camera runs on every frame;
* ``head``: (T, h, w, c) feature maps -> task outputs, what the camera runs once per window.

``clip`` is built flat: the clip is folded into a batch of frames, the backbone's layers are
created directly on that tensor and the feature maps are unfolded again, so tfmot sees every layer
(no TimeDistributed, no nested Model). ``frame`` and ``head`` are cut out of that same graph.
Everything uses stock Keras layers QAT knows (no Lambda): the time mean and per-frame pooling are
pooling layers over a reshape, the CBAM channel mean/max are channels-first 1-D global pools, and
the self-attention is Dense/Add/tanh/Softmax/Dot — a softmax instead of keras_self_attention's
division, since TFLite has no int8 DIV.
"""

from dataclasses import dataclass

from edge.errors import EdgekitError
from quantize.backbones import build_backbone, get_backbone
from quantize.config import ModelConfig
from quantize.layers import FoldTime, UnfoldTime
from quantize.tf_compat import keras

layers = keras.layers

BLOCKS = ("backbone", "spatial", "temporal", "fusion")


@dataclass
class MTDNN:
    config: ModelConfig
    clip: "keras.Model"
    frame: "keras.Model"
    head: "keras.Model"

    @property
    def feature_shape(self):
        return tuple(self.frame.output_shape[1:])

    @property
    def output_names(self):
        return list(self.head.output_names)

    def parameter_counts(self):
        """Parameters per block (backbone, spatial, temporal, fusion, one entry per task) and total."""
        counts = {"backbone": _count(self.frame.layers)}
        backbone_ids = {id(layer) for layer in self.frame.layers}
        for block in BLOCKS[1:]:
            counts[block] = 0
        for task in self.config.tasks:
            counts["head:" + task.name] = 0
        for layer in self.clip.layers:
            if id(layer) in backbone_ids:
                continue
            counts[_block_of(layer.name, self.config)] = counts.get(_block_of(layer.name, self.config), 0) + _count([layer])
        counts["total"] = self.clip.count_params()
        return counts


def _count(layer_list):
    return int(sum(keras.backend.count_params(w) for layer in layer_list for w in layer.weights))


def _block_of(layer_name, config):
    for task in config.tasks:
        if layer_name == task.name or layer_name.startswith(task.name + "_"):
            return "head:" + task.name
    for block in BLOCKS[1:]:
        if layer_name.startswith(block + "_"):
            return block
    return "fusion"  # the clip input, fold/unfold and reshapes carry no weights


def spatial_attention(x, name):
    """CBAM's spatial attention: channel mean and max per pixel -> 3x3 conv -> sigmoid -> multiply."""
    h, w, c = x.shape[1:]
    flat = layers.Reshape((h * w, c), name=name + "_flatten")(x)
    mean = layers.GlobalAveragePooling1D(data_format="channels_first", name=name + "_channel_mean")(flat)
    peak = layers.GlobalMaxPooling1D(data_format="channels_first", name=name + "_channel_max")(flat)
    mean = layers.Reshape((h, w, 1), name=name + "_mean_map")(mean)
    peak = layers.Reshape((h, w, 1), name=name + "_max_map")(peak)
    pooled = layers.Concatenate(name=name + "_concat")([mean, peak])
    attention = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name=name + "_conv")(pooled)
    return layers.Multiply(name=name + "_apply")([x, attention])


def additive_self_attention(sequence, units, name):
    """Additive self-attention over time (as keras_self_attention's, sigmoid scores), softmax-normalised.

    e[t, s] = sigmoid(w_a . tanh(W_t h_t + W_x h_s + b_h) + b_a);  a = softmax_s(e);  out_t = sum_s a[t, s] h_s
    """
    steps = sequence.shape[1]
    query = layers.Dense(units, use_bias=False, name=name + "_query")(sequence)
    key = layers.Dense(units, name=name + "_key")(sequence)
    query = layers.Reshape((steps, 1, units), name=name + "_query_grid")(query)
    key = layers.Reshape((1, steps, units), name=name + "_key_grid")(key)
    hidden = layers.Add(name=name + "_add")([query, key])
    hidden = layers.Activation("tanh", name=name + "_tanh")(hidden)
    scores = layers.Dense(1, name=name + "_score")(hidden)
    scores = layers.Reshape((steps, steps), name=name + "_scores")(scores)
    scores = layers.Activation("sigmoid", name=name + "_sigmoid")(scores)
    weights = layers.Softmax(axis=-1, name=name + "_softmax")(scores)
    return layers.Dot(axes=(2, 1), name=name + "_context")([weights, sequence])


def spatial_time_mean(grid, steps, h, w, c):
    """The time mean of the feature maps (B, T, h*w, c) -> (B, h, w, c), what the spatial branch reads."""
    mean = layers.AveragePooling2D(pool_size=(steps, 1), name="spatial_time_mean")(grid)
    return layers.Reshape((h, w, c), name="spatial_time_mean_map")(mean)


def spatial_branch(mean_map, widths):
    """The spatial branch on the time mean (B, h, w, c): two separable convs with CBAM spatial
    attention, BN, global pooling. Also the streaming head's spatial part (quantize.streaming)."""
    x = mean_map
    for i in (1, 2):
        x = layers.SeparableConv2D(widths.spatial_filters, 3, padding="same", activation="relu",
                                   name="spatial_sepconv%d" % i)(x)
        x = spatial_attention(x, "spatial_attention%d" % i)
    x = layers.BatchNormalization(name="spatial_bn")(x)
    x = layers.GlobalAveragePooling2D(name="spatial_pool")(x)
    return layers.Dropout(widths.dropout, name="spatial_dropout")(x)


def temporal_frame_features(grid, steps, h, w, c):
    """Each frame's spatial mean (B, T, h*w, c) -> (B, T, c): the LSTM's input."""
    x = layers.AveragePooling2D(pool_size=(1, h * w), name="temporal_frame_pool")(grid)
    return layers.Reshape((steps, c), name="temporal_frame_features")(x)


def temporal_lstm(sequence, widths):
    # unroll: T is static and small, so the LSTM is built as T explicit steps. It computes the
    # same numbers, but the converter then emits plain FULLY_CONNECTED/LOGISTIC/TANH/MUL ops that
    # XNNPACK runs instead of the fused int8 UNIDIRECTIONAL_SEQUENCE_LSTM, whose kernel made the
    # EfficientNet-B3 head cost 2.0 ms per window. implementation=1: each gate is its own matmul
    # (the kernel is split, a constant), where implementation 2 SPLITs one matmul's output: the
    # MLIR quantizer left the first step's SPLIT in float in about one conversion in four, run to
    # run, which the int8 gate rejects. Same weights, same speed. The camera does not run this
    # graph: quantize.streaming moves the input projections into the frame model.
    return layers.LSTM(widths.lstm_units, return_sequences=True, unroll=True, implementation=1,
                       name="temporal_lstm")(sequence)


def temporal_window(hidden, widths):
    """What the temporal branch does with the LSTM's hidden states (B, T, u): self-attention
    over time, then time mean and max. Also the streaming head's temporal part."""
    x = additive_self_attention(hidden, widths.attention_units, "temporal_attention")
    mean = layers.GlobalAveragePooling1D(name="temporal_mean")(x)
    peak = layers.GlobalMaxPooling1D(name="temporal_max")(x)
    x = layers.Concatenate(name="temporal_concat")([mean, peak])
    return layers.Dropout(widths.dropout, name="temporal_dropout")(x)


def fusion_and_tasks(branches, config):
    """Concatenated branch outputs -> {output name: tensor} of every task head."""
    fused = layers.Concatenate(name="fusion_concat")(branches) if len(branches) > 1 else branches[0]
    fused = layers.Dropout(config.widths.dropout, name="fusion_dropout")(fused)
    outputs = {}
    for task in config.tasks:
        outputs.update(_task_head(fused, task, config.widths))
    return outputs


def _task_head(x, task, widths):
    n = task.name
    x = layers.Dense(widths.head_units, name=n + "_dense")(x)
    x = layers.PReLU(name=n + "_prelu")(x)
    hidden = layers.BatchNormalization(name=n + "_bn")(x)
    x = layers.Dropout(widths.head_dropout, name=n + "_dropout")(hidden)
    if task.kind == "regression":
        activation = "linear"
    else:
        activation = "softmax" if task.loss == "crossentropy" else "linear"
    outputs = {n: layers.Dense(task.num_outputs, activation=activation, name=n)(x)}
    if task.embedding:
        outputs[task.embedding_output] = layers.UnitNormalization(name=task.embedding_output)(hidden)
    return outputs


def build_mtdnn(config):
    """Build the clip, frame and head models of ``config`` (see the module docstring)."""
    config.validate()
    spec = get_backbone(config.backbone)
    steps = config.clip_length
    clip_input = keras.Input((steps, config.height, config.width, 3), name="clip")
    frames = FoldTime(name="fold_time")(clip_input)
    imagenet = "imagenet" if config.weights == "imagenet" else None
    features = build_backbone(spec.name, frames, imagenet, **config.backbone_options)
    h, w, c = features.shape[1:]
    if h is None or h < 1:
        raise EdgekitError("input %dx%d is too small for backbone %s"
                           % (config.height, config.width, spec.name))
    feature_maps = UnfoldTime(steps, name="unfold_time")(features)

    grid = layers.Reshape((steps, h * w, c), name="spatial_temporal_grid")(feature_maps)
    widths = config.widths
    branches = []
    if config.branches in ("fused", "spatial"):
        branches.append(spatial_branch(spatial_time_mean(grid, steps, h, w, c), widths))
    if config.branches in ("fused", "temporal"):
        frames_seq = temporal_frame_features(grid, steps, h, w, c)
        branches.append(temporal_window(temporal_lstm(frames_seq, widths), widths))
    outputs = fusion_and_tasks(branches, config)

    clip = keras.Model(clip_input, outputs, name="mtdnn_" + config.name)
    for layer in clip.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = config.widths.bn_momentum
    # Cut out of the same graph: these share every layer (and weight) with ``clip``.
    frame = keras.Model(frames, features, name="frame")
    head = keras.Model(feature_maps, outputs, name="head")
    model = MTDNN(config, clip, frame, head)
    if config.weights not in (None, "imagenet"):
        load_backbone_weights(model, config.weights)
    return model


def load_backbone_weights(model, path):
    """Load a Keras .h5 weights file into the backbone by layer name (e.g. a notop ImageNet file)."""
    import os

    if not os.path.isfile(path):
        raise EdgekitError("weights file %s does not exist; pass a Keras .h5 weights file, "
                           "'imagenet' or nothing" % path)
    try:
        model.frame.load_weights(path, by_name=True, skip_mismatch=True)
    except Exception as exc:  # h5py/keras raise many types for a bad file
        raise EdgekitError("could not load weights from %s: %s" % (path, exc))


def estimate_batchnorm_statistics(model, clips):
    """Set every BatchNormalization's moving mean/variance to its batch statistics on ``clips``
    (one forward pass in training mode, momentum 0, dropout off); the weights stay as they are.

    For networks that were never trained on real data (random weights in a benchmark, a 2-epoch
    test run): their BNs hold initial statistics, so activations are far from unit scale and
    int8 ranges (which decide, e.g., which ops XNNPACK accepts) are nothing like a trained
    network's. Afterwards every layer's output is unit-scale on ``clips``.
    """
    saved = []
    for layer in model.clip.layers:
        if isinstance(layer, layers.BatchNormalization):
            saved.append((layer, "momentum", layer.momentum))
            layer.momentum = 0.0
        elif isinstance(layer, layers.Dropout):
            saved.append((layer, "rate", layer.rate))
            layer.rate = 0.0
    try:
        model.clip(clips, training=True)
    finally:
        for layer, attr, value in saved:
            setattr(layer, attr, value)
    return model
