"""Open-set gallery: cosine matching, unknown below threshold, files."""

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
