"""quantize.data.pipeline: batch shapes/dtypes, seeded shuffling and per-clip augmentation."""

import numpy as np
import pytest

from edge.errors import EdgekitError
from quantize.data.pipeline import make_dataset, representative_frames


def _marker_clips(count=24, frames=4, height=20, width=20):
    """Dark clips with one bright vertical bar at column 3 in every frame (left side)."""
    x = np.full((count, frames, height, width, 3), 30, np.uint8)
    x[:, :, :, 3] = 250
    return x


def test_eval_dataset_keeps_order_values_and_dtypes():
    x = np.random.default_rng(0).integers(0, 256, (5, 3, 8, 10, 3), dtype=np.uint8)
    targets = {"action": np.arange(5, dtype=np.int32), "age": np.linspace(1, 5, 5).astype(np.float32)}
    batches = list(make_dataset(x, targets, batch_size=2, training=False))
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]
    xb, yb = batches[0]
    assert xb.dtype.name == "float32" and tuple(xb.shape) == (2, 3, 8, 10, 3)
    assert np.array_equal(xb.numpy(), x[:2].astype(np.float32))  # raw 0..255, no normalisation
    assert yb["action"].numpy().tolist() == [0, 1] and yb["age"].dtype.name == "float32"


def test_training_shuffle_is_seeded_and_targets_follow_their_clips():
    x = np.zeros((12, 2, 4, 4, 3), np.uint8)
    x[:, :, 0, 0, 0] = np.arange(12)[:, None] * 10  # clip id written into a pixel
    targets = {"action": np.arange(12, dtype=np.int32)}

    def order(seed):
        ids = []
        for xb, yb in make_dataset(x, targets, 4, training=True, seed=seed, augment=False):
            assert np.array_equal(xb.numpy()[:, 0, 0, 0, 0] / 10, yb["action"].numpy())
            ids.extend(yb["action"].numpy().tolist())
        return ids

    assert sorted(order(0)) == list(range(12))
    assert order(0) == order(0) and order(0) != order(1) and order(0) != list(range(12))


def test_augmentation_is_shared_by_all_frames_of_a_clip():
    x = _marker_clips()
    dataset = make_dataset(x, {"action": np.zeros(24, np.int32)}, 8, training=True, seed=2)
    columns, changed = [], False
    for xb, _ in dataset:
        clips = xb.numpy()
        assert clips.min() >= 0 and clips.max() <= 255
        changed |= not np.array_equal(clips, x[: len(clips)].astype(np.float32))
        bar = clips[..., 0].mean(axis=2).argmax(axis=-1)  # (B, T): column of the bright bar
        assert np.all(bar == bar[:, :1]), "frames of one clip were flipped/shifted differently"
        columns.extend(bar[:, 0].tolist())
    assert changed
    columns = np.array(columns)
    assert np.any(columns < 10) and np.any(columns >= 10)  # some clips flipped, some not
    assert len(set(columns[columns < 10].tolist())) > 1  # translations vary between clips
    # Same seed, same augmented data; a new epoch draws new augmentations.
    def epochs(seed):
        dataset = make_dataset(x, {"a": np.zeros(24)}, 8, True, seed=seed)
        return [np.concatenate([b[0].numpy() for b in dataset]) for _ in range(2)]

    first, again = epochs(5), epochs(5)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(np.sort(first[0], axis=None), np.sort(first[1], axis=None))


def test_representative_frames_and_input_checks():
    x = np.random.default_rng(1).integers(0, 256, (3, 4, 6, 6, 3), dtype=np.uint8)
    frames = representative_frames(x, count=12, seed=0)
    assert frames.shape == (12, 6, 6, 3) and frames.dtype == np.float32
    pool = x.reshape(12, 6, 6, 3).astype(np.float32)
    # Without replacement when there are enough frames: every frame exactly once.
    assert sorted(int(np.flatnonzero((pool == f).all(axis=(1, 2, 3)))[0]) for f in frames) == list(range(12))
    assert np.array_equal(frames, representative_frames(x, count=12, seed=0))
    assert representative_frames(x, count=30, seed=0).shape == (30, 6, 6, 3)
    with pytest.raises(EdgekitError, match="uint8"):
        make_dataset(x.astype(np.float32), {}, 2, False)
    with pytest.raises(EdgekitError, match="rows"):
        make_dataset(x, {"action": np.zeros(2)}, 2, False)
