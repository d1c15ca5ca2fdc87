"""edge.data.utkface: file-name labels, scanning with malformed names, loading images."""

import numpy as np
import pytest

from edge.errors import EdgekitError
from edge.data.utkface import GENDERS, RACES, load_faces, parse_utkface_name, scan_utkface


def test_parse_good_names():
    assert parse_utkface_name("25_1_2_20170116174525125.jpg") == (25, 1, 2)
    assert parse_utkface_name("/x/0_0_4_20170116174525125.jpg.chip.jpg") == (0, 0, 4)
    assert parse_utkface_name("120_0_0_1.png") == (120, 0, 0)
    assert len(GENDERS) == 2 and len(RACES) == 5


@pytest.mark.parametrize("name, message", [
    ("25_1_2.jpg", "4 fields"),
    ("25_1_2_.jpg", "4 fields"),
    ("x_1_2_2017.jpg", "integers"),
    ("121_1_2_2017.jpg", "age 121"),
    ("25_2_2_2017.jpg", "gender 2"),
    ("25_1_5_2017.jpg", "race 5"),
    ("25_1_2_2017.txt", "not an image"),
])
def test_parse_bad_names(name, message):
    with pytest.raises(EdgekitError, match=message):
        parse_utkface_name(name)


def test_scan_reports_malformed_and_loads(face_dir):
    index = scan_utkface(face_dir)
    assert len(index.items) == 30
    assert sorted(index.malformed) == sorted(["120_3_0_20170116174525125.jpg", "25_1_20170116174525125.jpg"])
    faces = load_faces(index, size=(20, 24))
    assert faces.x.shape == (30, 1, 20, 24, 3) and faces.x.dtype == np.uint8
    assert faces.age.dtype == np.float32 and faces.gender.dtype == np.int32 and faces.race.dtype == np.int32
    assert faces.skipped == []
    first = index.items[0]
    assert (faces.age[0], faces.gender[0], faces.race[0]) == (first.age, first.gender, first.race)


def test_scan_errors(tmp_path):
    with pytest.raises(EdgekitError, match="does not exist"):
        scan_utkface(tmp_path / "nope")
    with pytest.raises(EdgekitError, match="no images"):
        scan_utkface(tmp_path)
    (tmp_path / "a_b.jpg").write_bytes(b"x")
    (tmp_path / "1_2.jpg").write_bytes(b"x")
    with pytest.raises(EdgekitError, match="2 malformed names, e.g. '1_2.jpg'"):
        scan_utkface(tmp_path)


def test_undecodable_image_is_skipped(tmp_path, face_dir):
    import shutil
    good = scan_utkface(face_dir).items[0].path
    shutil.copy(good, tmp_path / "30_0_1_20170116000000000.jpg")
    (tmp_path / "31_1_2_20170116000000001.jpg").write_bytes(b"not a jpeg")
    faces = load_faces(scan_utkface(tmp_path), size=(16, 16))
    assert faces.x.shape[0] == 1
    assert len(faces.skipped) == 1 and "31_1_2" in faces.skipped[0][0]
