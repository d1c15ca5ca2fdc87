"""The on-device half of ``edgekit bench``: what runs on the target and measures.

Copied to remote targets by the host (``quantize.benchmark``) together with the rest of ``edge/``,
so it is TensorFlow-free, Python 3.9, and needs only the standard library, numpy, OpenCV and a
TFLite interpreter. Entry points: ``python -m edge.bench.device JOB.json OUT.json`` (one artifact)
and ``python -m edge.bench.check`` (what ``edgekit devices check`` asks the target).
"""
