"""tf.data input pipelines for clips (N, T, H, W, 3) and single-frame calibration samples.

Pixels stay in [0, 255] float32: normalisation is a layer inside the model, so the exported TFLite
model takes the same raw frames the camera produces. Training augmentation draws one set of
parameters per *clip* and applies it to every frame (flipping or shifting frames independently
would create motion that never happened and destroy the action signal). Horizontal flips are safe
because swimming direction is not a class.
"""

import numpy as np

from edge.errors import EdgekitError
from quantize.tf_compat import tf

# Above this size the array is not embedded in the dataset graph (2 GB GraphDef limit) but gathered
# from numpy by index.
_MAX_EMBEDDED_BYTES = 1 << 30
MAX_SHIFT_FRACTION = 0.08
BRIGHTNESS_DELTA = 20.0
CONTRAST_RANGE = (0.8, 1.2)


def _check(x_uint8, targets):
    x = np.asarray(x_uint8)
    if x.ndim != 5 or x.shape[-1] != 3:
        raise EdgekitError("make_dataset expects clips shaped (N, T, H, W, 3), got %s" % (x.shape,))
    if x.dtype != np.uint8:
        raise EdgekitError("make_dataset expects uint8 pixels, got %s" % x.dtype)
    targets = {name: np.asarray(value) for name, value in dict(targets).items()}
    for name, value in targets.items():
        if value.shape[:1] != x.shape[:1]:
            raise EdgekitError("target %r has %d rows but there are %d clips"
                               % (name, value.shape[0] if value.ndim else 0, x.shape[0]))
    return x, targets


def _augment(clip, key, seed):
    """Random brightness/contrast, horizontal flip and translation shared by all frames of a clip.

    The draws are stateless, keyed by (``key`` from a seeded random stream, ``seed``): no random
    state variable lives in the input graph, so a distribution strategy can copy the dataset, and
    parallel mapping stays deterministic.
    """
    shape = tf.shape(clip)
    height, width = shape[1], shape[2]
    params = tf.random.stateless_uniform([5], tf.stack([key, tf.constant(seed, tf.int64)]))
    contrast = CONTRAST_RANGE[0] + (CONTRAST_RANGE[1] - CONTRAST_RANGE[0]) * params[0]
    brightness = BRIGHTNESS_DELTA * (2.0 * params[1] - 1.0)
    mean = tf.reduce_mean(clip)
    clip = tf.clip_by_value((clip - mean) * contrast + mean + brightness, 0.0, 255.0)
    clip = tf.cond(params[2] < 0.5, lambda: tf.reverse(clip, axis=[2]), lambda: clip)
    max_dy = tf.cast(tf.round(MAX_SHIFT_FRACTION * tf.cast(height, tf.float32)), tf.int32)
    max_dx = tf.cast(tf.round(MAX_SHIFT_FRACTION * tf.cast(width, tf.float32)), tf.int32)
    # Shift by padding with the border pixels (pool water continues) and cropping back.
    padded = tf.pad(clip, [[0, 0], [max_dy, max_dy], [max_dx, max_dx], [0, 0]], mode="SYMMETRIC")
    off_y = tf.cast(tf.floor(params[3] * tf.cast(2 * max_dy + 1, tf.float32)), tf.int32)
    off_x = tf.cast(tf.floor(params[4] * tf.cast(2 * max_dx + 1, tf.float32)), tf.int32)
    off_y = tf.minimum(off_y, 2 * max_dy)
    off_x = tf.minimum(off_x, 2 * max_dx)
    return tf.slice(padded, [0, off_y, off_x, 0], shape)


def make_dataset(x_uint8, targets, batch_size, training, seed=0, augment=True):
    """Batches of ``(x float32 (B, T, H, W, 3) in [0, 255], {name: target})``.

    ``training`` shuffles (seeded, reshuffled every epoch) and, with ``augment``, applies
    per-clip augmentation that differs every epoch but is reproducible for a given seed. Evaluation datasets
    keep the input order.
    """
    x, targets = _check(x_uint8, targets)
    if int(batch_size) < 1:
        raise EdgekitError("batch size must be >= 1, got %s" % batch_size)
    count = x.shape[0]
    if x.nbytes <= _MAX_EMBEDDED_BYTES:
        data = tf.data.Dataset.from_tensor_slices((x, targets)).cache()
    else:
        clip_shape = x.shape[1:]
        target_specs = {name: (value.shape[1:], tf.as_dtype(value.dtype)) for name, value in targets.items()}

        def gather(i):
            clip = tf.numpy_function(lambda j: x[j], [i], tf.uint8)
            clip.set_shape(clip_shape)
            ys = {}
            for name, (shape, dtype) in target_specs.items():
                ys[name] = tf.numpy_function(lambda j, n=name: targets[n][j], [i], dtype)
                ys[name].set_shape(shape)
            return clip, ys

        data = tf.data.Dataset.range(count).map(gather)
    if training:
        data = data.shuffle(min(count, 4096), seed=seed, reshuffle_each_iteration=True)
    if training and augment:
        # One random key per clip, a new stream every epoch, the same streams for the same seed.
        keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        data = tf.data.Dataset.zip((data, keys)).map(
            lambda sample, key: (_augment(tf.cast(sample[0], tf.float32), key, int(seed)), sample[1]),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        data = data.map(lambda clip, ys: (tf.cast(clip, tf.float32), ys),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)


def representative_frames(x_uint8, count, seed=0):
    """Draw ``count`` single frames (float32 (count, H, W, 3), raw 0..255) for int8 calibration.

    Frames are sampled uniformly over all (clip, time) pairs, without replacement when there are
    enough, so the calibration sees every action phase and every swimmer.
    """
    x = np.asarray(x_uint8)
    if x.ndim == 4:
        x = x[:, None]
    if x.ndim != 5 or x.shape[0] * x.shape[1] == 0:
        raise EdgekitError("representative_frames expects clips (N, T, H, W, 3), got %s" % (x.shape,))
    if int(count) < 1:
        raise EdgekitError("representative frame count must be >= 1, got %s" % count)
    total = x.shape[0] * x.shape[1]
    rng = np.random.default_rng(seed)
    flat = rng.choice(total, size=int(count), replace=int(count) > total)
    return x.reshape((total,) + x.shape[2:])[flat].astype(np.float32)
