"""The command line: one module per command group; each turns flags into calls on the layers below."""

from runner.cli.main import main

__all__ = ["main"]
