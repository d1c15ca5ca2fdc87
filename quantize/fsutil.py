"""Atomic file writing: a reader never sees a half-written file, an interrupted write leaves none."""

import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    ``suffix`` keeps a file extension some writers insist on (Keras picks the format from ".h5").
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp" + suffix,
                               dir=directory)
    os.close(fd)
    try:
        yield tmp
        if os.path.exists(tmp):
            # mkstemp creates 0600; a finished artifact gets the usual umask-based mode.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=False)
            handle.write("\n")


def write_text(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w") as handle:
            handle.write(text)
