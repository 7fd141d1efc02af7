"""The imagefit command line: one module per group of commands, each command a thin shell."""

from imagefit.cli.root import cli, main

__all__ = ["cli", "main"]
