"""The `forecaster` command line."""

from forecaster.cli.app import app, main

__all__ = ["app", "main"]
