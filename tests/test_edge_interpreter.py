"""make_interpreter: targets, and clear errors (never a crash) for bad files and delegates."""

import os
import subprocess
import sys
import textwrap

import pytest

from edge.errors import EdgekitError
from edge.interpreter import make_interpreter, parse_device

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_cpu_with_threads(edge_model_dir):
    interpreter = make_interpreter(os.path.join(edge_model_dir, "frame.tflite"), threads=2)
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, 32, 32, 3]
    with pytest.raises(EdgekitError, match="threads must be >= 1"):
        make_interpreter(os.path.join(edge_model_dir, "frame.tflite"), threads=0)


def test_missing_file(tmp_path):
    with pytest.raises(EdgekitError, match="does not exist"):
        make_interpreter(str(tmp_path / "nope.tflite"))


def test_garbage_file(tmp_path):
    path = tmp_path / "garbage.tflite"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(EdgekitError, match="not a TFLite model"):
        make_interpreter(str(path))


@pytest.mark.parametrize("keep", [12, 0.3, 0.9, -1])
def test_truncated_file_is_an_error_not_a_crash(edge_model_dir, tmp_path, keep):
    """Run in a subprocess, so a native crash would show as a bad exit code, not kill pytest."""
    data = open(os.path.join(edge_model_dir, "head.tflite"), "rb").read()
    size = keep if isinstance(keep, int) and keep > 0 else (
        len(data) + keep if isinstance(keep, int) else int(len(data) * keep))
    path = tmp_path / "cut.tflite"
    path.write_bytes(data[:size])
    code = textwrap.dedent("""
        import sys
        from edge.errors import EdgekitError
        from edge.interpreter import make_interpreter
        try:
            make_interpreter(sys.argv[1])
        except EdgekitError as exc:
            print("ERROR", exc)
            sys.exit(3)
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "truncated" in proc.stdout or "corrupt" in proc.stdout


def test_missing_delegate_library(edge_model_dir):
    with pytest.raises(EdgekitError, match="cannot load delegate /nonexistent/libfoo.so"):
        make_interpreter(os.path.join(edge_model_dir, "frame.tflite"),
                         delegate="/nonexistent/libfoo.so")


def test_edgetpu_needs_a_compiled_model(edge_model_dir):
    with pytest.raises(EdgekitError, match="not compiled for the Edge TPU"):
        make_interpreter(os.path.join(edge_model_dir, "frame.tflite"), device="edgetpu:usb")


def test_edgetpu_without_runtime(edge_model_dir, tmp_path):
    import shutil
    path = tmp_path / "frame_edgetpu.tflite"
    shutil.copy(os.path.join(edge_model_dir, "frame.tflite"), path)
    with pytest.raises(EdgekitError, match="libedgetpu"):
        make_interpreter(str(path), device="coral", delegate="/nonexistent/libedgetpu.so.1")


def test_parse_device():
    assert parse_device("cpu") == ("litert", {})
    assert parse_device("edgetpu:usb") == ("edgetpu", {"device": "usb"})
    assert parse_device("coral:pci") == ("edgetpu", {"device": "pci"})
    assert parse_device("edgetpu:1") == ("edgetpu", {"device": ":1"})
    assert parse_device("gpu") == ("litert_gpu", {})
    with pytest.raises(EdgekitError, match="unknown device"):
        parse_device("tpu")
    with pytest.raises(EdgekitError, match="bad Coral device"):
        parse_device("edgetpu:x1")
