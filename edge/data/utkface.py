"""UTKFace images: labels live in the file name ``[age]_[gender]_[race]_[datetime].jpg``.

The real archive contains a handful of badly named files (missing fields), so a scan collects
malformed names instead of failing, and fails only when nothing usable is left. Images become
one-frame clips (N, 1, H, W, 3) so the face model is the same temporal network with N = 1.
"""

import os
from dataclasses import dataclass, field
from typing import List

import cv2
import numpy as np

from edge.errors import EdgekitError

GENDERS = ["male", "female"]
RACES = ["white", "black", "asian", "indian", "others"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MAX_AGE = 120


def parse_utkface_name(name):
    """``"25_1_2_20170116174525125.jpg"`` -> (25, 1, 2); raise EdgekitError with the reason otherwise.

    Suffixes such as ``.jpg.chip.jpg`` (the aligned-crop variant) are accepted: only the first
    three underscore fields carry labels.
    """
    base = os.path.basename(os.fspath(name))
    if not base.lower().endswith(IMAGE_SUFFIXES):
        raise EdgekitError("%r is not an image name (.jpg/.jpeg/.png)" % base)
    parts = base.split(".")[0].split("_")
    if len(parts) < 4 or not parts[3]:
        raise EdgekitError("%r is not [age]_[gender]_[race]_[datetime].jpg (needs 4 fields)" % base)
    try:
        age, gender, race = int(parts[0]), int(parts[1]), int(parts[2])
    except ValueError:
        raise EdgekitError("%r: age, gender and race must be integers" % base)
    if not 0 <= age <= MAX_AGE:
        raise EdgekitError("%r: age %d is outside 0..%d" % (base, age, MAX_AGE))
    if gender not in (0, 1):
        raise EdgekitError("%r: gender %d must be 0 (male) or 1 (female)" % (base, gender))
    if not 0 <= race < len(RACES):
        raise EdgekitError("%r: race %d must be 0..4 (%s)" % (base, race, ", ".join(RACES)))
    return age, gender, race


@dataclass
class FaceItem:
    path: str
    age: int
    gender: int
    race: int


@dataclass
class FaceIndex:
    items: List[FaceItem] = field(default_factory=list)
    malformed: List[str] = field(default_factory=list)


@dataclass
class FaceArrays:
    x: np.ndarray
    age: np.ndarray
    gender: np.ndarray
    race: np.ndarray
    paths: list
    skipped: list


def scan_utkface(folder):
    """Index the correctly named images of ``folder`` (sorted, so runs are reproducible)."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise EdgekitError("UTKFace folder %s does not exist; point to the extracted images or "
                           "generate stand-ins with 'edgekit data synth --kind face --out %s'"
                           % (folder, folder))
    index = FaceIndex()
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        if not name.lower().endswith(IMAGE_SUFFIXES):
            continue
        try:
            age, gender, race = parse_utkface_name(name)
        except EdgekitError:
            index.malformed.append(name)
            continue
        index.items.append(FaceItem(path, age, gender, race))
    if not index.items:
        if index.malformed:
            raise EdgekitError("no correctly named UTKFace images in %s: %d malformed names, e.g. "
                               "%r; expected [age]_[gender]_[race]_[datetime].jpg"
                               % (folder, len(index.malformed), index.malformed[0]))
        raise EdgekitError("no images (.jpg/.jpeg/.png) in %s; expected UTKFace files named "
                           "[age]_[gender]_[race]_[datetime].jpg" % folder)
    return index


def load_faces(index, size):
    """Decode and resize (height, width) every indexed image to uint8 RGB (N, 1, H, W, 3)."""
    height, width = int(size[0]), int(size[1])
    xs, ages, genders, races, paths, skipped = [], [], [], [], [], []
    for item in index.items:
        image = cv2.imread(item.path, cv2.IMREAD_COLOR)
        if image is None:
            skipped.append((item.path, "cannot decode image (corrupt or not an image)"))
            continue
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if image.shape[:2] != (height, width):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        xs.append(image[None])
        ages.append(item.age)
        genders.append(item.gender)
        races.append(item.race)
        paths.append(item.path)
    if not xs:
        raise EdgekitError("none of the %d UTKFace images could be decoded; first problem: %s: %s"
                           % (len(index.items), skipped[0][0], skipped[0][1]))
    return FaceArrays(x=np.stack(xs).astype(np.uint8), age=np.asarray(ages, dtype=np.float32),
                      gender=np.asarray(genders, dtype=np.int32),
                      race=np.asarray(races, dtype=np.int32), paths=paths, skipped=skipped)
