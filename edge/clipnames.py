"""Labelled clip file names: ``<action>_<identity>_<n>.<suffix>``, the one definition.

Training (``quantize.data.clips``), ``edgekit data synth`` and ``edgekit enroll`` all read labels
from file names; when each parsed them itself they disagreed (enroll took ``.mkv``/``.mov`` and
``a_b_c_1.avi`` that training rejected), so a folder that enrolled fine failed to train. Here is
the only parser and the only suffix list.

Why these suffixes: :data:`VIDEO_SUFFIXES` are the containers OpenCV's FFmpeg backend (the
``opencv-python-headless`` wheel edgekit installs) both writes and decodes back frame-exact with
the codecs edgekit uses, MJPG and mp4v: ``.avi``, ``.mp4``, ``.mkv``, ``.mov`` (checked with
real files by ``tests/test_clipnames.py``). ``.webm`` needs VP8/VP9 and ``.mpg``/``.ts`` drop
MJPG, so they are not accepted as clips even where a particular OpenCV build might read them.
Which suffixes edgekit *writes* is a separate, smaller choice (``edge.video.FOURCC_BY_SUFFIX``).

Device side: standard library only, Python 3.9.
"""

import os
import re
from collections import namedtuple

from edge.errors import EdgekitError

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov")
PATTERN = "<action>_<identity>_<n>%s" % "|".join(VIDEO_SUFFIXES).replace("|.", "|")
EXAMPLE = "freestyle_swimmer1_0.avi"
_NAME_RE = re.compile(r"^([^_]+)_([^_]+)_(\d+)(%s)$"
                      % "|".join(re.escape(s) for s in VIDEO_SUFFIXES), re.IGNORECASE)

ClipName = namedtuple("ClipName", ["action", "identity", "number"])


def is_video_file(filename):
    """True when the name ends in an accepted video suffix (any case); says nothing of the rest."""
    return os.path.basename(os.fspath(filename)).lower().endswith(VIDEO_SUFFIXES)


def parse_clip_name(filename):
    """``freestyle_swimmer2_7.avi`` -> ClipName("freestyle", "swimmer2", 7); EdgekitError else.

    The directory part is ignored; the suffix is matched case-insensitively (cameras write
    ``.MP4``). Class names cannot contain ``_``, which separates the fields.
    """
    base = os.path.basename(os.fspath(filename))
    match = _NAME_RE.match(base)
    if not match:
        raise EdgekitError("clip file name %r is not %s (e.g. %s)" % (base, PATTERN, EXAMPLE))
    return ClipName(match.group(1), match.group(2), int(match.group(3)))


def format_clip_name(action, identity, number, suffix=".avi"):
    """The file name for one clip; refuses what :func:`parse_clip_name` could not read back."""
    name = "%s_%s_%d%s" % (action, identity, int(number), suffix)
    parse_clip_name(name)  # raises for '_' in a class name, an empty one or a foreign suffix
    return name


def scan_clip_names(folder, ignore=()):
    """Parse every file name in ``folder``, sorted so the order is reproducible.

    Returns ``(clips, skipped)``: ``clips`` is a list of ``(path, ClipName)``, ``skipped`` a list
    of ``(path, reason)`` for visible files whose names do not parse. Hidden files (temp files of
    an unfinished write, ``.synthetic.json``), sub-folders and names in ``ignore`` (e.g.
    ``labels.json``) are passed over silently. Nothing is decoded here.
    """
    folder = os.fspath(folder)
    clips, skipped = [], []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.startswith(".") or name in ignore or not os.path.isfile(path):
            continue
        try:
            clips.append((path, parse_clip_name(name)))
        except EdgekitError as exc:
            skipped.append((path, str(exc)))
    return clips, skipped
