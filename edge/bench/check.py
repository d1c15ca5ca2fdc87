"""What ``edgekit devices check`` asks a target: ``python -m edge.bench.check '{...}'``.

Prints one JSON object: Python, numpy, OpenCV and interpreter runtime versions, every backend of
:mod:`edge.backends` with whether it can run there (and why not), whether the configured backend
loads, and whether the power sampler is present. Exit 0 when everything the target's
configuration needs is there, 2 otherwise (the JSON says what is missing). A backend the target
is not configured for may be unavailable without failing the check: it is listed, not required.
"""

import json
import platform
import shutil
import sys


def check(config):
    from edge import backends
    from edge.errors import EdgekitError

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
    try:
        from edge.bench.sysinfo import runtime_info
        report["runtime"] = runtime_info()
    except EdgekitError as exc:
        report["problems"].append(str(exc))
    report["backends"] = [{"key": key, "summary": summary, "available": reason is None,
                           "reason": reason} for key, summary, reason in backends.availability()]
    key = config.get("backend") or backends.DEFAULT
    try:
        backend = backends.create(key, **(config.get("backend_options") or {}))
        reason = backend.probe()
        report["backend"] = {"key": backend.key, "describe": backend.describe(),
                             "summary": backend.summary, "available": reason is None}
    except EdgekitError as exc:
        reason = str(exc)
        report["backend"] = {"key": key, "describe": key, "available": False}
    if reason is not None and reason not in report["problems"]:
        report["problems"].append(reason)
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
