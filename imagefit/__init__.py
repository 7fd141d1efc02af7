"""imagefit: transfer learning on images, offline first, fast on a CPU."""

__version__ = "0.1.0"
