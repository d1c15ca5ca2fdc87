"""Shared pytest configuration. Fixtures live in tests/fixtures/*, one module per area."""

import os

# Keras 2 for tfmot, quiet TensorFlow logs; must happen before any test imports TensorFlow.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

pytest_plugins = ["tests.fixtures.data", "tests.fixtures.runs", "tests.fixtures.mosquitto",
                  "tests.fixtures.bench", "tests.fixtures.edge", "tests.fixtures.quantize",
                  "tests.fixtures.sshd", "tests.fixtures.board", "tests.fixtures.onnx",
                  "tests.fixtures.face", "tests.fixtures.foreign"]
