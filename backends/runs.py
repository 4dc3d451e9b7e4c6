"""Run folders: where ``dslc train`` writes, decided before anything is compiled.

A run folder is never overwritten silently. The default ``runs/<name>-<target>``
moves on to ``-2``, ``-3``, ... when it already holds a run; an explicit ``--out``
that holds one is refused unless ``--overwrite`` is given. Every check here runs
before the dataset is loaded and the model compiled, so a bad ``--out`` costs
nothing (it used to fail after 5 s of compiling, with a traceback).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dsl.errors import UsageError

RUN_FILES = ("summary.json", "metrics.jsonl", "weights.safetensors", "checkpoint.safetensors", "vocab.json",
             "best.safetensors", "tensorboard")
"""The files a run writes (``vocab.json``: a vocabulary its dataset built; ``best.safetensors``: the best epoch's
weights, where it has a validation split; ``tensorboard``: a folder of event files); a folder holding any of them
holds a run."""


def holds_run(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).exists() for name in RUN_FILES)


def run_file(folder: Path, name: str, label: str, missing: str) -> Path:
    """``folder/name``, a file a run wrote; ``UsageError`` where ``folder`` (called ``label`` in the message) is
    missing or a file, or lacks it (``missing`` says why that may be and what to do)."""
    if not folder.exists():
        raise UsageError(f"{label}: no such folder")
    if not folder.is_dir():
        raise UsageError(f"{label} is a file; give the run folder dslc train wrote")
    if not (folder / name).is_file():
        raise UsageError(f"{label} holds no {name}: {missing}")
    return folder / name


def plan_run_dir(out: Path | None, default: Path, overwrite: bool = False) -> Path:
    """The folder this run will write to; raises ``UsageError`` for one it must not or cannot use."""
    if out is None:
        return _next_free(default)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder; give a folder for the run's files")
    if holds_run(out) and not overwrite:
        raise UsageError(f"--out {out} already holds a run ({', '.join(n for n in RUN_FILES if (out / n).exists())});"
                         f" pass --overwrite to replace it, or choose another folder")
    _check_writable(out)
    return out


def start_run_dir(folder: Path) -> None:
    """Creates the folder and clears the files of a run it replaces (``--overwrite``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in (folder / name for name in RUN_FILES):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _next_free(default: Path) -> Path:
    candidate, k = default, 1
    while holds_run(candidate) or (candidate.exists() and not candidate.is_dir()):
        k += 1
        candidate = default.with_name(f"{default.name}-{k}")
    _check_writable(candidate)
    return candidate


def _check_writable(folder: Path) -> None:
    """The folder, or its nearest existing parent (where it will be made), must be a writable folder."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"cannot make the run folder {folder}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write the run folder {folder}: {existing} is not writable")
