"""The version of imagefit."""

__version__ = "0.1.0"
