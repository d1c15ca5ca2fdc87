"""Moved to :mod:`edge.data.clips` (the bench on a board reads clip folders too).

Kept as a re-export for ``quantize.data.synth``, which imports it from here; new code imports
``edge.data.clips``.
"""

from edge.data.clips import (  # noqa: F401
    LABELS_FILE, PATTERN, VIDEO_SUFFIXES, ClipArrays, ClipIndex, ClipItem, ClipLabels,
    load_clips, parse_clip_name, scan_clip_folder, scan_clip_names)
