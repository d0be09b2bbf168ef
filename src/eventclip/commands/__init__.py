"""Subcommands of the `eventclip` CLI: one module each, discovered by eventclip.cli."""
