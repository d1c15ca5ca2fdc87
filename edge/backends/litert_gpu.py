"""LiteRT's GPU delegate (OpenCL/OpenGL ES; phones and Mali/Adreno boards).

Not the Jetson's path: NVIDIA boards run TensorRT. The delegate library is not part of the LiteRT
wheel; give its path with the ``library`` option when it is not on the loader's path.
"""

import platform

from edge.backends.base import Option
from edge.backends.litert import LiteRTBackend, load_delegate, probe_library

LIBRARY = {
    "Linux": "libtensorflowlite_gpu_delegate.so",
    "Darwin": "libtensorflowlite_gpu_delegate.dylib",
    "Windows": "tensorflowlite_gpu_delegate.dll",
}
WHAT = "the TFLite GPU delegate; pass its path with --delegate or backend option library"


class LiteRTGPUBackend(LiteRTBackend):
    key = "litert_gpu"
    summary = "LiteRT GPU delegate (libtensorflowlite_gpu_delegate)"
    placement_label = "GPU"
    options = {"library": Option("str", "the path of the GPU delegate library")}

    @property
    def library(self):
        return self.config.get("library") or LIBRARY.get(platform.system(), "")

    def probe(self):
        return super().probe() or probe_library(self.library, WHAT)

    def delegates(self, module, path):
        return [load_delegate(module, self.library, {}, WHAT)]


BACKEND = LiteRTGPUBackend
