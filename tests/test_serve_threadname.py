"""The daemon's threads carry their names to the OS, so per-thread CPU time can be told apart."""

import sys
import threading

import pytest

from edge.serve.threadname import MAX_BYTES, name_os_thread

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="thread names reach the OS through prctl on Linux only")


def os_name_in_thread(name):
    seen = {}

    def body():
        seen["set"] = name_os_thread()
        with open("/proc/self/task/%d/comm" % threading.get_native_id()) as handle:
            seen["comm"] = handle.read().strip()

    thread = threading.Thread(target=body, name=name)
    thread.start()
    thread.join()
    return seen


def test_the_python_name_reaches_the_os():
    assert os_name_in_thread("worker-pool") == {"set": True, "comm": "worker-pool"}


def test_a_long_name_is_cut_to_what_linux_keeps():
    seen = os_name_in_thread("capture-entrance-north-17")
    assert seen["comm"] == "capture-entrance-north-17"[:MAX_BYTES]
