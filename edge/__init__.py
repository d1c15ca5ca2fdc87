"""edgekit's device side: everything that runs on the camera.

Only numpy, OpenCV and a TFLite interpreter are allowed here, never TensorFlow, and the code stays
within Python 3.9 syntax so it runs on a Jetson's or a Coral board's system Python.
"""

__version__ = "0.1.0"
