"""Open-set gallery: cosine matching, unknown below threshold, files."""

import json
import os

import numpy as np
import pytest

from edge.errors import EdgekitError
from edge.gallery import Gallery


def _unit(*values):
    v = np.array(values, np.float32)
    return v / np.linalg.norm(v)


def test_match_and_unknown():
    gallery = Gallery.from_samples([("ana", _unit(1, 0, 0)), ("ana", _unit(1, 0.2, 0)),
                                    ("ben", _unit(0, 1, 0))], threshold=0.8)
    assert gallery.names == ["ana", "ben"]
    match = gallery.match(_unit(0.9, 0.1, 0))
    assert match.name == "ana" and match.similarity > 0.95
    assert gallery.match(_unit(0.1, 1, 0)).name == "ben"
    stranger = gallery.match(_unit(0, 0, 1))
    assert stranger.name == "unknown" and stranger.nearest in ("ana", "ben")
    assert gallery.match(3.0 * _unit(1, 0, 0)).similarity == pytest.approx(1.0, abs=1e-6)
    assert gallery.match(_unit(0.7, 0.7, 0.1), threshold=0.99).name == "unknown"
    with pytest.raises(EdgekitError, match="3-dim"):
        gallery.match(np.ones(4))


def test_save_load(tmp_path):
    gallery = Gallery.from_samples([("ana", _unit(1, 0)), ("ben", _unit(0, 1))], 0.7, "swim")
    path = gallery.save(tmp_path / "g.npz")
    loaded = Gallery.load(path)
    assert loaded.names == ["ana", "ben"] and loaded.threshold == 0.7 and loaded.model == "swim"
    np.testing.assert_array_equal(loaded.embeddings, gallery.embeddings)
    (tmp_path / "g.npz").write_bytes(b"garbage")
    with pytest.raises(EdgekitError, match="corrupt"):
        Gallery.load(path)
    with pytest.raises(EdgekitError, match="does not exist"):
        Gallery.load(tmp_path / "none.npz")
    with pytest.raises(EdgekitError, match=".npz"):
        gallery.save(tmp_path / "g.bin")


def _saved(tmp_path):
    gallery = Gallery.from_samples([("ana", _unit(1, 0, 0)), ("ben", _unit(0, 1, 0))], 0.6)
    return gallery.save(tmp_path / "g.npz")


def _one_line_error(path, *needles):
    with pytest.raises(EdgekitError) as info:
        Gallery.load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    assert ".json does not exist" not in message, message  # the old, misleading report
    for needle in needles:
        assert needle in message, message
    return message


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "zeroed_middle"])
def test_a_corrupt_npz_is_named_as_corrupt_even_without_its_sidecar(tmp_path, damage):
    """`edgekit run --gallery FILE.npz` used to say FILE.json did not exist for a broken .npz."""
    path = _saved(tmp_path)
    data = open(path, "rb").read()
    broken = {"truncated": data[: len(data) // 2], "garbage": b"not a zip at all" * 10,
              "empty": b"", "zeroed_middle": data[:40] + b"\0" * (len(data) - 80) + data[-40:]}
    with open(path, "wb") as handle:
        handle.write(broken[damage])
    os.remove(Gallery.sidecar(path))  # a user who copied only the .npz
    _one_line_error(path, "corrupt", "edgekit enroll")


def test_an_npz_that_is_not_a_gallery_says_what_it_holds(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.zeros(3))
    _one_line_error(path, "not an edgekit gallery", "weights", "edgekit enroll")


def test_a_missing_or_corrupt_sidecar_is_named(tmp_path):
    path = _saved(tmp_path)
    sidecar = Gallery.sidecar(path)
    with open(sidecar, "w") as handle:
        handle.write('{"names": ["ana", ')
    with pytest.raises(EdgekitError, match=r"sidecar .*g\.json is corrupt"):
        Gallery.load(path)
    with open(sidecar, "w") as handle:
        json.dump({"names": ["ana"], "threshold": "high"}, handle)
    with pytest.raises(EdgekitError, match="numeric threshold"):
        Gallery.load(path)
    with open(sidecar, "w") as handle:
        json.dump({"names": ["ana"], "threshold": 0.5}, handle)  # ben's label points outside
    with pytest.raises(EdgekitError, match="does not hold together.*outside its 1 names"):
        Gallery.load(path)
    os.remove(sidecar)
    with pytest.raises(EdgekitError, match=r"no .*g\.json beside it"):
        Gallery.load(path)
