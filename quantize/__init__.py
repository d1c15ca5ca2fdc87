"""edgekit's host side: the multi-task network, its data, training and int8 conversion.

Importing this package is cheap; modules that need TensorFlow import it through
:mod:`quantize.tf_compat`, which selects Keras 2 (tf_keras) first, as tfmot requires.
"""
