"""``make_interpreter``: pycoral's one-call factory, over the backend registry.

``make_interpreter(path, device="cpu", delegate=None, threads=None)`` gives an allocated
interpreter for a model file on any backend of :mod:`edge.backends` (``cpu``, ``edgetpu[:usb|:pci|
:N]``, ``gpu``, or ``delegate=PATH`` for any delegate library). What each target needs lives in
its backend module; this module only keeps the familiar entry point and re-exports the LiteRT
helpers other modules use.
"""

from edge.backends import create, parse_device  # noqa: F401 - the public entry points
from edge.backends.litert import check_model_file, interpreter_module  # noqa: F401


def make_interpreter(model_path, device="cpu", delegate=None, threads=None):
    """An allocated interpreter for ``model_path`` on ``device``.

    ``delegate`` is the path of an external delegate library (with ``cpu``) or overrides the
    default library of ``device``; ``threads`` sets the CPU thread count (None: the
    interpreter's default).
    """
    return create(device, delegate=delegate).load(model_path, threads=threads)
