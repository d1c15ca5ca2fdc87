"""quantize.data.synth: determinism, folder safety, and that the synthetic task has the intended
structure (action only in motion, identity in appearance, face looks following labels)."""

import json
import os

import numpy as np
import pytest

from edge.errors import EdgekitError
from edge.data.clips import load_clips, scan_clip_folder
from quantize.data.synth import synthesize_faces, synthesize_swimmers
from edge.data.utkface import load_faces, scan_utkface


def _load(folder, frames):
    return load_clips(scan_clip_folder(folder), length=frames)


def test_same_seed_same_frames_different_seed_different(tmp_path):
    kwargs = dict(clips_per_pair=1, frames=4, size=(16, 20), identities=2)
    summary = synthesize_swimmers(tmp_path / "a", seed=7, **kwargs)
    synthesize_swimmers(tmp_path / "b", seed=7, **kwargs)
    synthesize_swimmers(tmp_path / "c", seed=8, **kwargs)
    a, b, c = (_load(tmp_path / k, 4) for k in "abc")
    assert a.x.shape == (8, 4, 16, 20, 3)
    assert np.array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    assert summary["clips"] == 8 and summary["identities"] == ["swimmer1", "swimmer2"]
    labels = json.loads((tmp_path / "a" / "labels.json").read_text())
    assert labels == {"actions": ["breaststroke", "drowning", "freestyle", "safe"],
                      "identities": ["swimmer1", "swimmer2"]}


def test_mp4_format_and_bad_arguments(tmp_path):
    synthesize_swimmers(tmp_path / "m", clips_per_pair=1, frames=3, size=(16, 16), identities=1, fmt="mp4")
    assert sorted(os.listdir(tmp_path / "m"))[1:] == [
        "breaststroke_swimmer1_0.mp4", "drowning_swimmer1_0.mp4", "freestyle_swimmer1_0.mp4",
        "labels.json", "safe_swimmer1_0.mp4"]
    with pytest.raises(EdgekitError, match="avi or mp4"):
        synthesize_swimmers(tmp_path / "x", fmt="mkv")
    with pytest.raises(EdgekitError, match="at least 8x8"):
        synthesize_swimmers(tmp_path / "x", size=(4, 4))


def test_regenerating_replaces_own_data_but_never_foreign_data(tmp_path):
    out = tmp_path / "synth"
    synthesize_swimmers(out, clips_per_pair=2, frames=3, size=(16, 16), identities=1)
    synthesize_swimmers(out, clips_per_pair=1, frames=3, size=(16, 16), identities=1)
    assert len(scan_clip_folder(out).items) == 4  # stale clips n=1 removed

    real = tmp_path / "real"
    real.mkdir()
    (real / "freestyle_alice_0.avi").write_bytes(b"precious")
    with pytest.raises(EdgekitError, match="--overwrite"):
        synthesize_swimmers(real, clips_per_pair=1, frames=3, size=(16, 16), identities=1)
    assert (real / "freestyle_alice_0.avi").read_bytes() == b"precious"


def _swimmer_tracks(x):
    """Centroid (x, y as fractions) per frame of pixels far from their row's median colour.

    Lane-rope rows (top/bottom 15 %) are left out; in the pool rows the swimmer covers far less
    than half of a row, so the row median is the water.
    """
    height, width = x.shape[2:4]
    top, bottom = int(0.15 * height), height - int(0.15 * height)
    inner = x[:, :, top:bottom].astype(np.float32)
    mask = np.abs(inner - np.median(inner, axis=3, keepdims=True)).sum(-1) > 80
    count = np.maximum(mask.sum(axis=(2, 3)), 1)
    rows, cols = np.mgrid[top:bottom, 0:width]
    return (mask * cols).sum(axis=(2, 3)) / count / width, (mask * rows).sum(axis=(2, 3)) / count / height, mask


def _loo_nearest_centroid(features, labels):
    """Leave-one-out accuracy of a standardised nearest-class-mean classifier."""
    hits = 0
    for i in range(len(labels)):
        keep = np.arange(len(labels)) != i
        classes = np.unique(labels[keep])
        means = np.stack([features[keep][labels[keep] == k].mean(axis=0) for k in classes])
        scale = features[keep].std(axis=0) + 1e-6
        hits += classes[np.argmin((((features[i] - means) / scale) ** 2).sum(axis=1))] == labels[i]
    return hits / len(labels)


def test_action_signal_is_temporal(swim_clips_dir):
    clips = _load(swim_clips_dir, 8)
    cx, cy, _ = _swimmer_tracks(clips.x)
    horizontal = np.abs(cx[:, -1] - cx[:, 0])
    vertical = cy.max(axis=1) - cy.min(axis=1)
    names = ["breaststroke", "drowning", "freestyle", "safe"]
    h = {n: horizontal[clips.action == i].mean() for i, n in enumerate(names)}
    v = {n: vertical[clips.action == i].mean() for i, n in enumerate(names)}
    assert h["freestyle"] > 1.5 * h["breaststroke"] > 1.5 * 2 * h["safe"]
    assert h["freestyle"] > 0.2  # ~0.3 of the width in 8 frames
    assert h["drowning"] < 0.05 and h["safe"] < 0.05
    assert v["drowning"] > 2 * max(v["freestyle"], v["breaststroke"], v["safe"])
    # The motion features separate actions; single-frame colour statistics do not.
    motion = np.stack([horizontal, vertical], axis=1)
    assert _loo_nearest_centroid(motion, clips.action) > 0.85
    for t in (0, clips.x.shape[1] - 1):
        frame = clips.x[:, t].astype(np.float32)
        colour = np.concatenate([frame.mean(axis=(1, 2)), frame.std(axis=(1, 2))], axis=1)
        assert _loo_nearest_centroid(colour, clips.action) < 0.45


def test_identity_is_visible_in_appearance(swim_clips_dir):
    clips = _load(swim_clips_dir, 8)
    _, _, mask = _swimmer_tracks(clips.x)
    top = int(0.15 * clips.x.shape[2])
    inner = clips.x[:, :, top:clips.x.shape[2] - top].astype(np.float32)
    swimmer_colour = (inner * mask[..., None]).sum(axis=(1, 2, 3)) / mask.sum(axis=(1, 2, 3))[:, None]
    assert _loo_nearest_centroid(swimmer_colour, clips.identity) > 0.6
    assert _loo_nearest_centroid(swimmer_colour, clips.action) < 0.45


def test_faces_are_deterministic_and_follow_labels(tmp_path):
    summary = synthesize_faces(tmp_path / "a", count=60, size=(32, 32), seed=3)
    synthesize_faces(tmp_path / "b", count=60, size=(32, 32), seed=3)
    assert summary["images"] == 60 and sum(summary["races"].values()) == 60
    a, b = (load_faces(scan_utkface(tmp_path / k), size=(32, 32)) for k in "ab")
    assert len(a.paths) == 60 and np.array_equal(a.x, b.x)
    assert [os.path.basename(p) for p in a.paths] == [os.path.basename(p) for p in b.paths]
    cheeks = a.x[:, 0, 18:21, 9:13].astype(np.float32).mean(axis=(1, 2, 3))
    assert cheeks[a.race == 1].mean() + 40 < cheeks[a.race == 0].mean()  # darker skin for "black"
    assert a.age.min() >= 1 and a.age.max() <= 95
