"""A rich console that stays readable when output goes to a file or a pipe (rich assumes 80 columns)."""

import sys

from rich.console import Console


def make_console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 120)
