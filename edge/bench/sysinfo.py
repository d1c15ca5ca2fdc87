"""What the target is: machine, OS, CPU, memory, Python, numpy, interpreter runtime, versions."""

import os
import platform
import resource
import sys


def peak_rss_mb():
    """Peak resident set size of this process in MiB.

    Linux: VmHWM of /proc/self/status, the high-water mark of this program's own address space.
    ru_maxrss is not used there because Linux carries it across execve: a bench process started
    from a large parent (e.g. the quickstart, with TensorFlow loaded) would report the parent's
    size. Elsewhere ru_maxrss (KiB on Linux, bytes on macOS).
    """
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _read(path):
    try:
        with open(path, "r") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return ""


def cpu_model():
    text = _read("/proc/cpuinfo")
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in text.splitlines():
            if line.split(":")[0].strip() == key:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_mb():
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024.0
    return None


def runtime_info():
    """Which TFLite runtime the device side loads, and its version."""
    from edge.backends.litert import interpreter_module
    module = interpreter_module()
    name = getattr(module, "__name__", type(module).__name__)
    package = name.split(".")[0]
    version = None
    try:
        top = __import__(package)
        version = getattr(top, "__version__", None)
    except ImportError:  # pragma: no cover
        pass
    if version is None:
        try:
            from importlib import metadata
            version = metadata.version(package.replace("_", "-"))
        except Exception:  # noqa: BLE001 - metadata can fail in many ways on odd installs
            version = None
    return {"module": name, "package": package, "version": version}


def machine_info():
    import numpy
    import edge

    info = {
        "hostname": platform.node(),
        "machine": platform.machine(),
        "system": platform.system(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_mb": memory_mb(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "numpy": numpy.__version__,
        "edgekit": edge.__version__,
        "edge_package": os.path.dirname(os.path.abspath(edge.__file__)),
        "runtime": runtime_info(),
    }
    try:
        import cv2
        info["opencv"] = cv2.__version__
    except ImportError:  # pragma: no cover
        info["opencv"] = None
    tegra = _read("/etc/nv_tegra_release").strip()
    if tegra:
        info["l4t"] = tegra.splitlines()[0]
    model = _read("/proc/device-tree/model").strip("\x00\n ")
    if model:
        info["board"] = model
    return info
