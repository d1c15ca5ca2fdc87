"""Any LiteRT delegate library, loaded by path (a vendor NPU, a custom build of XNNPACK).

The escape hatch for accelerators edgekit has no backend for: ``library`` names the ``.so``; the
model runs in LiteRT with that delegate taking the nodes it supports.
"""

from edge.backends.base import Option
from edge.backends.litert import LiteRTBackend, load_delegate, probe_library
from edge.errors import EdgekitError

WHAT = "the delegate library at that path"
NO_LIBRARY = ("backend delegate needs its library: --delegate PATH, or backend_options = "
              "{ library = \"/path/libdelegate.so\" }")


class DelegateBackend(LiteRTBackend):
    key = "delegate"
    summary = "LiteRT with an external delegate library (option library = PATH)"
    placement_label = "delegate"
    options = {"library": Option("str", "the path of a LiteRT delegate library (.so)")}

    def _library(self):
        if "library" not in self.config:
            raise EdgekitError(NO_LIBRARY)
        return self.config["library"]

    def probe(self):
        if "library" not in self.config:
            return NO_LIBRARY
        return super().probe() or probe_library(self.config["library"], WHAT)

    def delegates(self, module, path):
        return [load_delegate(module, self._library(), {}, WHAT)]


BACKEND = DelegateBackend
