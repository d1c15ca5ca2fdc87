"""Atomic file writes: a reader sees the old file or the whole new one, never half of one.

Why one module: every artifact edgekit writes (manifests, galleries, labels, weights, reports,
videos, spool checkpoints) is read by something that trusts it -- a camera, a later training
run, a scan of a data folder. A crash or a full disk in the middle of a plain ``open(path, "w")``
leaves a truncated file under the real name that parses as garbage or, worse, half-parses. So
every writer goes through here: write a temp file in the *same directory* (``os.replace`` is
only atomic within one file system), flush and fsync it, give it the usual umask-based mode
(``mkstemp`` makes 0600), rename it over the target, then fsync the directory so the rename
itself survives a power cut (best effort: some file systems refuse a directory fsync).

Temp names are ``.tmp-<name>-XXXX<suffix>``: hidden (folder scans skip dot files), recognisable
(tests check nothing starting with ``.tmp`` is left over) and ending in the target's own suffix,
because OpenCV and Keras pick the format from the file name.

Device side: standard library only, Python 3.9; ``quantize/`` imports it too.
"""

import contextlib
import json
import os
import tempfile

TEMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temp path beside ``path`` for writers that need a file name (np.savez, cv2, h5).

    When the block finishes, the file the writer left there is fsynced and renamed onto ``path``;
    when it raises, the temp file is removed and ``path`` is untouched. ``suffix`` defaults to
    ``path``'s own extension (give e.g. ``".weights.h5"`` when a writer insists on a compound
    one). A writer that produced no file at all is an error, not a silent no-op.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix="%s%s-" % (TEMP_PREFIX, os.path.basename(path)),
                               suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        if not os.path.isfile(tmp):
            raise OSError("writing %s produced no file at %s" % (path, tmp))
        _fsync_file(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        _fsync_dir(directory)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
    return os.fspath(path)


def write_text(path, text, encoding="utf-8"):
    """Write ``text`` to ``path`` atomically (UTF-8 by default); returns ``path``."""
    return write_bytes(path, text.encode(encoding))


def write_json(path, obj, indent=2, sort_keys=False):
    """Write ``obj`` as indented JSON plus a final newline, atomically; returns ``path``."""
    return write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n")


def _fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory):
    """Persist the rename; not every platform/file system can open or fsync a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some network/FUSE file systems
        pass
    finally:
        os.close(fd)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
