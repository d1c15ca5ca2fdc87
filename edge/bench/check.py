"""What ``edgekit devices check`` asks a target: ``python -m edge.bench.check '{...}'``.

Prints one JSON object: Python, numpy, OpenCV and interpreter runtime versions, whether the
configured delegate loads, and whether the power sampler is present. Exit 0 when everything the
target needs is there, 2 otherwise (the JSON says what is missing).
"""

import json
import platform
import shutil
import sys


def check(config):
    from edge.errors import EdgekitError
    from edge.interpreter import (EDGETPU_LIBRARY, GPU_LIBRARY, _load_delegate,
                                  interpreter_module)

    report = {"python": platform.python_version(), "machine": platform.machine(), "problems": []}
    try:
        import numpy
        report["numpy"] = numpy.__version__
    except ImportError:
        report["problems"].append("numpy is not installed (pip install numpy)")
    try:
        import cv2
        report["opencv"] = cv2.__version__
    except ImportError:
        report["problems"].append("OpenCV is not installed (pip install opencv-python-headless)")
    module = None
    try:
        module = interpreter_module()
        from edge.bench.sysinfo import runtime_info
        report["runtime"] = runtime_info()
    except EdgekitError as exc:
        report["problems"].append(str(exc))
    delegate = config.get("delegate") or "xnnpack"
    path = config.get("delegate_path")
    system = platform.system()
    library = None
    if delegate == "edgetpu":
        library = path or EDGETPU_LIBRARY.get(system, "libedgetpu.so.1")
        what = "the Edge TPU runtime (libedgetpu); install it from https://coral.ai/software/"
    elif delegate == "gpu":
        library = path or GPU_LIBRARY.get(system, "")
        what = "the TFLite GPU delegate"
    elif delegate != "xnnpack":
        library, what = delegate, "the delegate library at that path"
    report["delegate"] = {"name": delegate, "library": library, "loaded": library is None}
    if library is not None and module is not None:
        options = {}
        if delegate == "edgetpu" and config.get("edgetpu_device"):
            options["device"] = config["edgetpu_device"]
        try:
            _load_delegate(module, library, options, what)
            report["delegate"]["loaded"] = True
        except EdgekitError as exc:
            report["problems"].append(str(exc))
    power = config.get("power") or "none"
    if power == "tegrastats":
        report["power"] = {"sampler": power, "path": shutil.which("tegrastats")}
        if report["power"]["path"] is None:
            report["problems"].append("power = \"tegrastats\" but tegrastats is not on PATH")
    return report


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    config = json.loads(argv[0]) if argv else {}
    report = check(config)
    sys.stdout.write(json.dumps(report) + "\n")
    return 0 if not report["problems"] else 2


if __name__ == "__main__":
    sys.exit(main())
