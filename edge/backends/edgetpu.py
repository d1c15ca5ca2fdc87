"""The Coral Edge TPU through libedgetpu (a LiteRT delegate).

The Edge TPU runs only models compiled by ``edgetpu_compiler`` (``*_edgetpu.tflite``, the
manifest's ``edgetpu`` variant, written by ``edgekit quantize --target coral``): a plain int8 model
would run silently on the CPU, which is never what the user meant, so it is refused. Only the
compiled frame model runs here; the head (LSTM, attention) does not map to the Edge TPU and stays
on LiteRT's CPU kernels.

Options: ``device`` = usb | pci | usb:N | pci:N | :N (libedgetpu's own spelling; the first Edge
TPU by default), ``library`` = the libedgetpu file to load instead of the platform's default.
"""

import os
import platform

from edge.backends.base import Option
from edge.backends.litert import LiteRTBackend, load_delegate, probe_library
from edge.errors import EdgekitError

LIBRARY = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}
WHAT = "the Edge TPU runtime (libedgetpu) from https://coral.ai/software/"
COMPILED_SUFFIX = "_edgetpu.tflite"


class EdgeTPUBackend(LiteRTBackend):
    key = "edgetpu"
    summary = "Coral Edge TPU (libedgetpu delegate); runs the compiled frame model"
    variant = "edgetpu"
    placement_label = "EdgeTPU"
    options = {
        "device": Option("str", "usb | pci | usb:N | pci:N | :N (N = index)",
                         r"(usb|pci)(:\d+)?|:\d+"),
        "library": Option("str", "the path of libedgetpu to load"),
    }

    @classmethod
    def parse_option(cls, text):
        option = text if text in ("usb", "pci") or text.startswith(("usb:", "pci:")) \
            else ":" + text
        if not cls.options["device"].pattern.fullmatch(option):
            raise EdgekitError("bad Coral device 'edgetpu:%s'; use edgetpu:usb, edgetpu:pci or "
                               "edgetpu:N (N = index)" % text)
        return {"device": option}

    @property
    def library(self):
        return self.config.get("library") or LIBRARY.get(platform.system(), LIBRARY["Linux"])

    def probe(self):
        return super().probe() or probe_library(self.library, WHAT)

    def delegates(self, module, path):
        if not os.path.basename(path).endswith(COMPILED_SUFFIX):
            raise EdgekitError("%s is not compiled for the Edge TPU; run edgetpu_compiler on it "
                               "and use the *%s it writes (or run with --device cpu)"
                               % (path, COMPILED_SUFFIX))
        options = {"device": self.config["device"]} if "device" in self.config else {}
        return [load_delegate(module, self.library, options, WHAT)]


BACKEND = EdgeTPUBackend
