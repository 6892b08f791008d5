"""Command-line interface: one module per command, one place mapping errors to exit codes."""
