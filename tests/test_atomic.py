"""edge.atomic: the one atomic-write helper, exercised on real files and real writers."""

import json
import os
import stat

import cv2
import numpy as np
import pytest

from edge import atomic


def _leftovers(folder):
    return [name for name in os.listdir(folder) if name.startswith(atomic.TEMP_PREFIX)]


def test_write_bytes_text_json_replace_the_file_whole(tmp_path):
    path = tmp_path / "sub" / "a.json"  # the directory is created
    atomic.write_json(path, {"b": [1, 2], "a": "x"})
    assert path.read_text() == json.dumps({"b": [1, 2], "a": "x"}, indent=2) + "\n"
    atomic.write_text(path, "héllo\n")
    assert path.read_bytes() == "héllo\n".encode("utf-8")
    atomic.write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert _leftovers(path.parent) == []


def test_finished_file_gets_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "m.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.txt").st_mode) == 0o644


def test_a_failing_writer_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(path) as tmp:
            with open(tmp, "w") as handle:
                handle.write("half of the new one")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_json_that_cannot_be_serialised_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        atomic.write_json(tmp_path / "x.json", {"bad": object()})
    assert os.listdir(tmp_path) == []


def test_streaming_writers_get_a_temp_name_with_the_real_suffix(tmp_path):
    """np.savez and cv2.imwrite pick the format from the name: the temp name must keep it."""
    npz = tmp_path / "g.npz"
    with atomic.atomic_path(npz) as tmp:
        assert tmp.endswith(".npz") and os.path.basename(tmp).startswith(".tmp-g.npz-")
        np.savez(tmp, embeddings=np.eye(3, dtype=np.float32))
    with np.load(npz) as data:
        assert data["embeddings"].shape == (3, 3)
    png = tmp_path / "f.png"
    with atomic.atomic_path(png) as tmp:
        assert cv2.imwrite(tmp, np.full((8, 8, 3), 200, np.uint8))
    assert cv2.imread(str(png)).shape == (8, 8, 3)
    with atomic.atomic_path(tmp_path / "w", suffix=".weights.h5") as tmp:
        assert tmp.endswith(".weights.h5")
        open(tmp, "wb").close()
    assert (tmp_path / "w").is_file() and _leftovers(tmp_path) == []


def test_a_writer_that_removed_its_file_is_an_error_not_a_silent_no_op(tmp_path):
    with pytest.raises(OSError, match="produced no file"):
        with atomic.atomic_path(tmp_path / "v.avi") as tmp:
            os.remove(tmp)
    assert os.listdir(tmp_path) == []


def test_pending_commits_a_long_write_or_discards_it(tmp_path):
    """Pending is for writers that outlive one block and commit on interrupt (edgekit run)."""
    pending = atomic.Pending(tmp_path / "out.jsonl")
    assert os.path.basename(pending.tmp).startswith(".tmp-out.jsonl-")
    assert pending.tmp.endswith(".jsonl")
    with open(pending.tmp, "w") as handle:
        handle.write('{"window": 1}\n')
    assert not (tmp_path / "out.jsonl").exists()  # nothing under the real name until commit
    pending.commit()
    assert (tmp_path / "out.jsonl").read_text() == '{"window": 1}\n'
    other = atomic.Pending(tmp_path / "video.avi")
    other.discard()
    assert sorted(os.listdir(tmp_path)) == ["out.jsonl"]


def test_atomic_dir_replaces_a_whole_directory_or_leaves_the_old_one(tmp_path):
    out = tmp_path / "model"
    with atomic.atomic_dir(out) as stage:
        assert not out.exists(), "visible before it was complete"
        open(os.path.join(stage, "frame.tflite"), "wb").write(b"v1")
    assert sorted(os.listdir(out)) == ["frame.tflite"]
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o755  # not mkdtemp's 0700
    with pytest.raises(KeyboardInterrupt):
        with atomic.atomic_dir(out) as stage:
            open(os.path.join(stage, "frame.tflite"), "wb").write(b"half of v2")
            raise KeyboardInterrupt
    assert (out / "frame.tflite").read_bytes() == b"v1"
    with atomic.atomic_dir(out) as stage:
        open(os.path.join(stage, "head.tflite"), "wb").write(b"v2")
    assert sorted(os.listdir(out)) == ["head.tflite"]  # replaced as a whole, not merged
    assert os.listdir(tmp_path) == ["model"]  # no temp or old directory left beside it
