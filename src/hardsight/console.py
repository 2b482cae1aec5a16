"""The one rich console hardsight talks through (stderr, so --json output on stdout stays clean)."""

from rich.console import Console

console = Console(stderr=True, highlight=False)
