"""The backend registry: discovery by module, aliases, options, and a missing runtime library
disabling only its own backend."""

import os
import textwrap

import pytest

from edge import backends
from edge.errors import EdgekitError
from edge.interpreter import make_interpreter


def test_every_module_is_a_backend_found_by_name():
    assert backends.backend_keys() == ["delegate", "edgetpu", "litert", "litert_gpu",
                                      "onnxruntime", "tensorrt"]
    for key in backends.backend_keys():
        cls = backends.backend_class(key)
        assert cls.key == key and cls.summary
    assert backends.backend_class("cpu").key == "litert"
    assert backends.backend_class("coral").variant == "edgetpu"
    assert backends.backend_class("gpu").key == "litert_gpu"


def test_options_are_checked_by_the_backend():
    assert backends.create("edgetpu:usb").describe() == "edgetpu device=usb"
    assert backends.create("coral", device="pci:1").config == {"device": "pci:1"}
    with pytest.raises(EdgekitError, match="backend litert has no option device; its options: "
                                           "kernels"):
        backends.create("cpu", device="usb")
    with pytest.raises(EdgekitError, match=r"option device = 'firewire' is not allowed; allowed: "
                                           r"usb \| pci"):
        backends.create("edgetpu", device="firewire")
    with pytest.raises(EdgekitError, match="device cpu:x is unknown; use cpu, cpu:xnnpack or "
                                           "cpu:builtin"):
        backends.create("cpu:x")
    with pytest.raises(EdgekitError, match="device litert_gpu takes no ':builtin'"):
        backends.create("litert_gpu:builtin")
    # the older delegate= spelling: a library for cpu selects the delegate backend
    assert backends.create("cpu", delegate="/opt/libx.so").describe() == \
        "delegate library=/opt/libx.so"
    assert backends.create("edgetpu", delegate="/opt/libedgetpu.so.1").library == \
        "/opt/libedgetpu.so.1"


def test_this_machine_runs_litert_and_says_why_not_the_others():
    rows = {key: reason for key, _, reason in backends.availability()}
    assert rows["litert"] is None
    assert "libedgetpu" in rows["edgetpu"] and "cannot load delegate" in rows["edgetpu"]
    assert "libtensorflowlite_gpu_delegate" in rows["litert_gpu"]
    assert "needs its library" in rows["delegate"]


@pytest.fixture()
def broken_backend(tmp_path, monkeypatch):
    """A backend module whose runtime library is not installed, on the package's search path."""
    (tmp_path / "npu_vendor.py").write_text(textwrap.dedent("""
        import vendor_npu_runtime_that_is_not_installed  # noqa: F401
    """))
    monkeypatch.setattr(backends, "__path__", list(backends.__path__) + [str(tmp_path)])
    return "npu_vendor"


def test_a_backend_whose_library_is_missing_disables_only_itself(broken_backend, edge_model_dir):
    assert broken_backend in backends.backend_keys()
    rows = {key: reason for key, _, reason in backends.availability()}
    assert "No module named 'vendor_npu_runtime_that_is_not_installed'" in rows[broken_backend]
    assert rows["litert"] is None
    with pytest.raises(EdgekitError, match="backend npu_vendor is unavailable here: No module "
                                           "named"):
        backends.create(broken_backend)
    interpreter = make_interpreter(os.path.join(edge_model_dir, "frame.tflite"), device="cpu")
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, 32, 32, 3]


def test_placement_is_reported_by_the_backend(edge_model_dir):
    backend = backends.create("cpu")
    interpreter = backend.load(os.path.join(edge_model_dir, "frame.tflite"), threads=1)
    where = backend.placement(interpreter)
    assert where["available"] and where["delegate"] == "XNNPACK"
    assert where["nodes"] == where["delegated"] + where["cpu"] and where["partitions"] >= 1


def test_builtin_kernels_run_without_xnnpack(edge_model_dir):
    """cpu:builtin is LiteRT without its default delegate: every node on the reference kernels."""
    from edge.backends.litert import head_kernels

    backend = backends.create("cpu:builtin")
    interpreter = backend.load(os.path.join(edge_model_dir, "head.tflite"), threads=1)
    where = backend.placement(interpreter)
    assert where["available"] and where["delegated"] == 0 and where["partitions"] == 0
    assert head_kernels() == "xnnpack"  # ai-edge-litert 2.3.0 here: no known XNNPACK defect


@pytest.mark.parametrize("kernels", ["xnnpack", "builtin"])
@pytest.mark.parametrize("role", ["frame", "step", "head"])
def test_views_held_across_invokes_see_every_invoke(edge_model_dir, role, kernels):
    """A LiteRT interpreter from a backend keeps the arrays tensor(i)() gave valid across
    invoke() (edge.backends.litert.hold_views): written inputs are what the model reads, and
    held outputs show each invoke's results, as get_tensor's copies do."""
    import numpy as np

    backend = backends.create("cpu:%s" % kernels)
    interpreter = backend.load(os.path.join(edge_model_dir, "%s.tflite" % role), threads=1)
    inputs = [(d, interpreter.tensor(d["index"])()) for d in interpreter.get_input_details()]
    outputs = [(d, interpreter.tensor(d["index"])()) for d in interpreter.get_output_details()]
    rng = np.random.default_rng(3)
    seen = []
    for _ in range(4):
        for detail, held in inputs:
            if np.dtype(detail["dtype"]).kind == "f":
                held[...] = rng.normal(0.0, 1.0, held.shape)
            else:
                info = np.iinfo(detail["dtype"])
                held[...] = rng.integers(info.min, info.max + 1, held.shape)
        interpreter.invoke()  # raises in LiteRT's checked invoke() while views are alive
        for detail, held in outputs:
            np.testing.assert_array_equal(held, interpreter.get_tensor(detail["index"]))
        seen.append(outputs[0][1].copy())
    assert any(not np.array_equal(seen[0], other) for other in seen[1:])  # inputs did change it


def test_an_interpreter_without_the_native_invoke_is_refused():
    from edge.backends.litert import hold_views

    class Foreign(object):
        def invoke(self):
            pass

    with pytest.raises(EdgekitError, match="has no native Invoke behind its Python API.*"
                                           "install ai-edge-litert"):
        hold_views(Foreign())
