"""Give the calling thread's Python name to the operating system (Linux), so ``top -H``,
``ps -L`` and ``/proc/PID/task/*/comm`` show ``worker-cam`` or ``capture-cam-1`` instead of
``python`` for every thread: on one core the daemon's threads compete for the CPU, and the
per-thread CPU time is how one tells decoding from inference from publishing
(``benchmarks/bench_serve.py`` prints it).

Python 3.11 does not do this itself. Linux keeps at most 15 bytes; elsewhere this does nothing.
"""

import ctypes
import ctypes.util
import sys
import threading

PR_SET_NAME = 15  # linux/prctl.h
MAX_BYTES = 15


def _prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def name_os_thread():
    """Set the OS name of the calling thread to its Python name (truncated); True if set."""
    if _PRCTL is None:
        return False
    name = threading.current_thread().name.encode("utf-8", "replace")[:MAX_BYTES]
    return _PRCTL(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0) == 0
