"""The serve config's own checks on top of :mod:`edge.schema` (the engine every edgekit config
file uses): its established wording, and the values only a camera daemon has -- names of
cameras, rules and regions, video sources, region boxes, paths relative to the config file.

Why separate from :mod:`edge.serve.config`: that module is the schema as data and the rules
between keys; these are the reusable pieces its Keys are built from.

Device side: standard library only, Python 3.9.
"""

import os
import re

from edge.schema import Invalid, Key, Wording

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NAMES_RULE = "letters, digits, _ and - (1-64 chars)"

# This file's established messages ("model.threads: must be between 1 and 64, got 0"), kept on
# the shared engine so --check-config output and its tests stay as users know them.
WORDING = Wording(
    unknown="{path}: unknown key (allowed: {allowed})",
    wrong_type="{path}: must be {expected}, got {value}",
    out_of_range="{path}: must be between {low} and {high}, got {value}",
    not_allowed="{path}: must be one of {choices}, got {value}",
    missing="{path}: required key missing{help_paren}",
    invalid="{path}: {message}",
    bad_name="{path}: {allowed}",
    one="{where}: 1 problem(s) in the config:\n  {problem}",
    many="{where}: {count} problem(s) in the config:\n  {problems}",
)


def _name(value):
    if not NAME_RE.match(value):
        raise Invalid("must be a name of %s, got %r" % (NAMES_RULE, value))
    return value


def source(value):
    """A camera index (TOML int or "0"), a file or a URL, as the string capture opens."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        raise Invalid("must be a camera index (0), a file path or an rtsp:// / http:// URL, got "
                      "%r" % (value,))
    return str(value)


def region_box(box):
    """``[x, y, w, h]`` in source pixels, as the tuple the worker crops with."""
    ok = (isinstance(box, list) and len(box) == 4
          and all(isinstance(v, int) and not isinstance(v, bool) for v in box))
    if not ok or box[0] < 0 or box[1] < 0 or box[2] < 1 or box[3] < 1:
        raise Invalid("must be [x, y, w, h] integers with x, y >= 0 and w, h >= 1, got %r"
                      % (box,))
    return tuple(box)


def some_regions(regions):
    """A regions table that is given must name at least one region (else: leave it out)."""
    if not regions:
        raise Invalid("must be a table of name = [x, y, w, h], got {}")
    return regions


def named(default=None, **kw):
    """A name key: a non-empty string of NAME_RE (rule, task and camera names)."""
    return Key("text", default, check=_name, **kw)


def resolve_path(base, path):
    """Relative paths in the config are relative to the config file, not the working dir."""
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))
