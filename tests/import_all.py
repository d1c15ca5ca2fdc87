"""Run on a board: compile every file of edge/ and import every edge module with this Python.

Prints one JSON line: the Python version, the modules imported, the ones skipped because an
optional dependency of the daemon (paho-mqtt, prometheus-client) is absent, and whether
TensorFlow got imported (it must not). Exit 1 on a syntax error or any other import failure.
Why: the device side promises Python 3.9; a 3.10+ construct in any module must fail here.
"""

import compileall
import importlib
import json
import os
import platform
import sys

OPTIONAL = ("paho", "prometheus_client")


def modules(root):
    for dirpath, _, files in os.walk(os.path.join(root, "edge")):
        if "__pycache__" in dirpath:
            continue
        package = os.path.relpath(dirpath, root).replace(os.sep, ".")
        for name in sorted(files):
            if name.endswith(".py"):
                yield package if name == "__init__.py" else package + "." + name[:-3]


def main():
    root = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, root)
    if not compileall.compile_dir(os.path.join(root, "edge"), quiet=1):
        return 1
    imported, skipped = [], {}
    for name in sorted(modules(root)):
        try:
            importlib.import_module(name)
            imported.append(name)
        except ImportError as exc:
            if (exc.name or "").split(".")[0] not in OPTIONAL:
                raise
            skipped[name] = str(exc)
    print(json.dumps({"python": platform.python_version(), "imported": imported,
                      "skipped": skipped, "tensorflow": "tensorflow" in sys.modules}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
