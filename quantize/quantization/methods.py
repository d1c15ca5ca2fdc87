"""The quantization methods by name, without TensorFlow.

Kept apart from :mod:`quantize.quantization.convert` (which imports TensorFlow) because the
``edgekit quantize`` command needs the names for its ``--method`` choices before anything runs:
``edgekit quantize --help`` and a typo'd ``--method`` must answer in a blink, not after loading
TensorFlow.
"""

FLOAT_METHODS = ("fp32", "fp16", "dynamic")
INTEGER_METHODS = ("ptq", "qat", "prune-qat")
METHODS = FLOAT_METHODS + INTEGER_METHODS
