"""frugalcv: learning-with-less computer vision methods on one small training core."""

__version__ = "0.1.0"
