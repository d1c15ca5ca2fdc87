"""Atomic file writes: a reader sees the old file or the whole new one, never half of one.

Why one module: every artifact edgekit writes (manifests, galleries, labels, weights, reports,
videos, spool checkpoints) is read by something that trusts it -- a camera, a later training
run, a scan of a data folder. A crash or a full disk in the middle of a plain ``open(path, "w")``
leaves a truncated file under the real name that parses as garbage or, worse, half-parses. So
every writer goes through here: write a temp file in the *same directory* (``os.replace`` is
only atomic within one file system), flush and fsync it, give it the usual umask-based mode
(``mkstemp`` makes 0600), rename it over the target, then fsync the directory so the rename
itself survives a power cut (best effort: some file systems refuse a directory fsync).

API: :func:`write_bytes`, :func:`write_text`, :func:`write_json` for data in hand;
:func:`atomic_path` (a context manager yielding a temp path) for writers that need a file name;
:class:`Pending` (``commit()``/``discard()``) for writers that outlive one block;
:func:`atomic_dir` for a directory of files that must appear (or be replaced) as one.

Temp names are ``.tmp-<name>-XXXX<suffix>``: hidden (folder scans skip dot files), recognisable
(tests check nothing starting with ``.tmp`` is left over) and ending in the target's own suffix,
because OpenCV and Keras pick the format from the file name.

Device side: standard library only, Python 3.9; ``quantize/`` imports it too.
"""

import contextlib
import json
import os
import shutil
import tempfile

TEMP_PREFIX = ".tmp-"


class Pending(object):
    """A temp file beside ``path`` that a long-running writer fills, then commits or discards.

    For writers whose life is not one ``with`` block: ``edgekit run --jsonl/--write`` streams for
    hours and *commits* what it has when interrupted (every line written is a finished window),
    which :func:`atomic_path` -- discard on any exception -- would not do.
    """

    def __init__(self, path, suffix=None):
        self.path = os.path.abspath(os.fspath(path))
        self.directory = os.path.dirname(self.path)
        os.makedirs(self.directory, exist_ok=True)
        if suffix is None:
            suffix = os.path.splitext(self.path)[1]
        fd, self.tmp = tempfile.mkstemp(
            prefix="%s%s-" % (TEMP_PREFIX, os.path.basename(self.path)), suffix=suffix,
            dir=self.directory)
        os.close(fd)

    def commit(self):
        """fsync the temp file, give it the umask mode and rename it onto ``path``."""
        if not os.path.isfile(self.tmp):
            raise OSError("writing %s produced no file at %s" % (self.path, self.tmp))
        _fsync_file(self.tmp)
        os.chmod(self.tmp, 0o666 & ~_umask())
        os.replace(self.tmp, self.path)
        _fsync_dir(self.directory)

    def discard(self):
        if os.path.exists(self.tmp):
            os.remove(self.tmp)


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temp path beside ``path`` for writers that need a file name (np.savez, cv2, h5).

    When the block finishes, the file the writer left there is fsynced and renamed onto ``path``;
    when it raises, the temp file is removed and ``path`` is untouched. ``suffix`` defaults to
    ``path``'s own extension (give e.g. ``".weights.h5"`` when a writer insists on a compound
    one). A writer that produced no file at all is an error, not a silent no-op.
    """
    pending = Pending(path, suffix)
    try:
        yield pending.tmp
        pending.commit()
    finally:
        pending.discard()


@contextlib.contextmanager
def atomic_dir(path, mode=0o755):
    """Yield a temp directory beside ``path``; on success it replaces ``path`` in one rename.

    For artifacts that are only valid together (a model directory: models + manifest.json
    pinning their sha256): a reader sees the whole old set or the whole new one. An existing
    ``path`` is first renamed aside, then removed once the new one is in place. ``mode``:
    ``mkdtemp`` makes 0700, a finished directory is meant to be shared.
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="%s%s-" % (TEMP_PREFIX, os.path.basename(path)), dir=parent)
    try:
        yield tmp
        os.chmod(tmp, mode)
        old = None
        if os.path.isdir(path):
            old = tempfile.mkdtemp(prefix=".old-%s-" % os.path.basename(path), dir=parent)
            os.rmdir(old)
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_dir(parent)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


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
