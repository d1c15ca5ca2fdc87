"""Moved to :mod:`edge.data.utkface` (the bench on a board reads face folders too).

Kept as a re-export for ``quantize.data.synth``, which imports it from here; new code imports
``edge.data.utkface``.
"""

from edge.data.utkface import (  # noqa: F401
    GENDERS, IMAGE_SUFFIXES, MAX_AGE, RACES, FaceArrays, FaceIndex, FaceItem, load_faces,
    parse_utkface_name, scan_utkface)
