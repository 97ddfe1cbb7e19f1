"""edgeseg: medical image segmentation from a laptop to a Jetson/ARM board."""

__version__ = "0.1.0"
