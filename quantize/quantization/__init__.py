"""``edgekit quantize``: from a trained MTDNN run to int8 TFLite models the camera runs.

One concept per module: ``configs`` (tfmot QuantizeConfigs for layers the default registry
rejects), ``qat`` (quantization-aware fine-tuning), ``prune`` (magnitude pruning + pruning-
preserving QAT), ``convert`` (TFLite conversion, fixed-batch signatures), ``gate`` (the
int8-only gate and op lists), ``layer_error`` (per-layer float vs int8 error), ``edgetpu``
(Coral compatibility), ``artifacts`` (manifest, report), ``methods`` (the method names, no
TensorFlow) and ``cli`` (the command).
"""
