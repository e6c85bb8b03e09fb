"""hfstream: images and video frames over lossy networks with a dual-stream learned codec."""

__version__ = "0.1.0"
