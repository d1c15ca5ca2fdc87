"""Data sets: swimmer clips, UTKFace images and the synthetic swimmer generator (no TensorFlow at import)."""
