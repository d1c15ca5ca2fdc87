"""The two custom layers of the MTDNN: folding time into the batch and back.

Keras' Reshape cannot touch the batch axis, and TimeDistributed hides the backbone from tfmot, so
the clip (B, T, H, W, C) is folded to frames (B*T, H, W, C) before the backbone and the feature
maps are unfolded to (B, T, h, w, c) after it. Both are pure reshapes (TFLite RESHAPE, no
arithmetic), which is why quantization treats them as pass-through.
"""

from quantize.tf_compat import keras, tf


@keras.utils.register_keras_serializable(package="edgekit")
class FoldTime(keras.layers.Layer):
    """(B, T, H, W, C) -> (B*T, H, W, C)."""

    def call(self, inputs):
        return tf.reshape(inputs, [-1] + list(inputs.shape[2:]))

    def compute_output_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        batch = None if input_shape[0] is None else input_shape[0] * input_shape[1]
        return tf.TensorShape([batch] + input_shape[2:].as_list())


@keras.utils.register_keras_serializable(package="edgekit")
class UnfoldTime(keras.layers.Layer):
    """(B*T, h, w, c) -> (B, T, h, w, c) for a fixed clip length T."""

    def __init__(self, clip_length, **kwargs):
        super().__init__(**kwargs)
        self.clip_length = int(clip_length)

    def call(self, inputs):
        return tf.reshape(inputs, [-1, self.clip_length] + list(inputs.shape[1:]))

    def compute_output_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        return tf.TensorShape([None, self.clip_length] + input_shape[1:].as_list())

    def get_config(self):
        config = super().get_config()
        config["clip_length"] = self.clip_length
        return config


CUSTOM_OBJECTS = {"FoldTime": FoldTime, "UnfoldTime": UnfoldTime}
