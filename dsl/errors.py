"""The errors a user can cause, and how they read.

Every failure that is the user's to fix (a malformed spec, a weights file that does
not fit the model, a dataset that is not on disk) is a ``DslcError``. The CLI prints
it as one line and exits with status 2; anything else is a bug in dslc and keeps its
traceback. ``SpecError`` adds the place in the YAML file, so messages read like a
compiler's: ``specs/cnn.yaml:7:25: message``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass


class DslcError(Exception):
    """A problem in the user's input, shown as one line without a traceback."""

    exit_status = 2  # the CLI's: the input was wrong

    def __str__(self) -> str:
        return one_line(super().__str__())


_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with control characters and line breaks escaped (a newline as ``\\n``).

    Messages quote what the user wrote, and a quoted key may hold a newline; escaping
    it keeps every error on one line, as editors and ``grep`` expect.
    """
    return _BREAKS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


@dataclass(frozen=True)
class Location:
    """A 1-based line and column in a spec file."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class SpecError(DslcError):
    """A spec that cannot be turned into a model; knows where in the file it went wrong."""

    def __init__(self, message: str, location: Location | None = None):
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        return one_line(f"{self.location}: {self.message}" if self.location else self.message)


class SpecSyntaxError(SpecError):
    """The file is not a safe, well-formed YAML document of sensible size."""


class SpecSchemaError(SpecError):
    """A key, type or value the spec language does not accept."""


class SpecShapeError(SpecError):
    """Layers whose shapes do not fit together."""


class SpecWarning(UserWarning):
    """A spec that is valid but almost certainly not what its author meant, located like a ``SpecError``.

    It is a warning, not an error, because the model still trains (a softmax before
    ``cross_entropy`` trains, only far worse); ``str()`` is one line, as a compiler's
    ``file:line:col: warning: message``.
    """

    def __init__(self, message: str, location: Location | None = None):
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        return one_line(f"{self.location}: warning: {self.message}" if self.location else f"warning: {self.message}")


class WeightsError(DslcError):
    """A weights file whose names or shapes do not match the model."""


class DataError(DslcError):
    """A dataset that cannot be loaded, or that does not fit the model."""


class UsageError(DslcError):
    """A command-line value that cannot work: a path, a flag, an array given to ``predict``."""


class DivergedError(DslcError):
    """A training run whose loss, gradients or weights turned NaN or Inf (``backends/guard.py``).

    Exit status 1, not 2: the spec and the command were valid, the numbers they led to
    were not (a learning rate too high, no clipping), as a failed ``dslc check`` exits 1.
    """

    exit_status = 1


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A '; did you mean ...?' suffix for a misspelt name, or '' when nothing is close."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return f"; did you mean '{lowered[word.lower()]}'?"
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.7)
    return f"; did you mean '{close[0]}'?" if close else ""
