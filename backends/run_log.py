"""A run's logs: ``metrics.jsonl`` for programs, TensorBoard event files for people, behind one interface.

Every epoch record goes to both: one JSON line in ``metrics.jsonl``, and its numbers as
TensorBoard scalars in ``tensorboard/`` at the optimizer step (``board_scalars`` names
them). Any numeric key the driver puts in a record is logged, so a new one (``val_*``,
``lr``) appears in both without a change here.

Events are written synchronously, through tensorboardX's ``EventsWriter`` (the file
writer its ``SummaryWriter`` wraps) and its ``summary.scalar``, and flushed after each
record, as ``metrics.jsonl`` is. ``SummaryWriter`` hands events to a background thread
through a queue and its ``flush()`` does not wait for that thread: three scalars added
and flushed, then the process killed, left an event file without them (measured here).
A killed run resumes after its checkpoint and never writes earlier records again, so an
event lost that way would be lost for good.

A resumed run appends a new event file that starts with a ``SessionLog.START`` event at
the checkpoint's step + 1 (``SummaryWriter``'s ``purge_step``): TensorBoard drops the
events of steps past the checkpoint that the stopped run wrote (``EventAccumulator``
purges them; TensorBoard's data server preempts a tag's later steps when an earlier one
comes), so no epoch shows twice, as ``metrics.jsonl`` keeps only the checkpoint's epochs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from .checkpoint import Position

METRICS_FILE = "metrics.jsonl"
BOARD_FOLDER = "tensorboard"
SPLITS = ("train", "val", "test")
_RENAMED = {"train_samples_per_sec": "speed/train_samples_per_sec"}  # a rate, not a train metric: its own group
_NOT_LOGGED = ("steps",)  # the event's step itself


class RunLog:
    """Where a run's epoch records go; ``writes=False`` (a data-parallel rank other than 0) writes nothing.

    Use it as a context manager: the event file is closed when the run ends, fails or is interrupted.
    """

    def __init__(self, out: Path, writes: bool = True, resumed: Position | None = None):
        """Starts ``out``'s logs: empty for a new run; for one resumed at ``resumed``, without the records
        past its checkpoint."""
        self.metrics_path, self.writes = Path(out) / METRICS_FILE, writes
        self._board = None
        if not writes:
            return
        if resumed is None:
            self.metrics_path.write_text("")
        else:
            _keep_epochs(self.metrics_path, resumed.epochs_done)
        self._board = _Board(Path(out) / BOARD_FOLDER, None if resumed is None else resumed.step + 1)

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def epoch(self, record: dict) -> None:
        """An epoch's record: a line of ``metrics.jsonl``, and its numbers as scalars at ``record['steps']``."""
        if not self.writes:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        self._board.scalars(board_scalars(record), record["steps"])

    def running(self, step: int, train_means: dict) -> None:
        """The epoch's running train means at a mid-epoch ``step`` (a checkpoint, where the sums are on the host
        anyway), as ``train/running_<name>``: the training loss more often than once an epoch."""
        if self.writes:
            self._board.scalars({f"train/running_{k}": v for k, v in train_means.items()}, step)

    def close(self) -> None:
        if self._board is not None:
            self._board.close()
            self._board = None


def board_scalars(record: dict) -> dict[str, float]:
    """A record's numbers by TensorBoard tag: ``train_loss`` -> ``train/loss`` (likewise ``val_``, ``test_``),
    so each split is a group; ``train_samples_per_sec`` -> ``speed/train_samples_per_sec``; other keys
    (``epoch``, ``seconds``, ``lr``) keep their name. None (a rate not measured) and non-numbers are left out."""
    return {_tag(k): float(v) for k, v in record.items()
            if k not in _NOT_LOGGED and isinstance(v, int | float) and not isinstance(v, bool)}


def _tag(key: str) -> str:
    split, _, name = key.partition("_")
    return _RENAMED.get(key) or (f"{split}/{name}" if split in SPLITS and name else key)


def _keep_epochs(path: Path, done: int) -> None:
    """Drops the lines of epochs after ``done`` (the checkpoint's), and a line torn by a kill in mid-write."""
    from .weights import write_atomic

    lines = path.read_text().splitlines() if path.exists() else []
    kept = [line for line in lines if (_epoch_of(line) or done + 1) <= done]
    write_atomic(path, "".join(line + "\n" for line in kept).encode())


def _epoch_of(line: str) -> int | None:
    """The epoch of a metrics line; None for a line torn by a kill in mid-write."""
    try:
        return int(json.loads(line)["epoch"])
    except (ValueError, KeyError, TypeError):
        return None


class _Board:
    """One TensorBoard event file of this process, written and flushed record by record."""

    def __init__(self, folder: Path, purge_step: int | None):
        writer_class, self._scalar, self._event_pb2 = _tensorboardx()
        folder.mkdir(parents=True, exist_ok=True)
        # tensorboardX names the file by the second it was opened in and opens it "wb": a run resumed within the
        # second replaced the stopped run's file (measured: the first epoch's events were gone). The nanoseconds
        # keep the names apart, and in the order TensorBoard must read them (it reads a folder's files sorted).
        self._writer = writer_class(str(folder / "events"), f".{time.time_ns()}.{os.getpid()}")
        if purge_step is not None:
            start = self._event_pb2.SessionLog(status=self._event_pb2.SessionLog.START)
            self._write(self._event_pb2.Event(wall_time=time.time(), step=purge_step, session_log=start))

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self._write(self._event_pb2.Event(wall_time=time.time(), step=step, summary=self._scalar(tag, value)))
        self._writer.flush()

    def _write(self, event) -> None:
        self._writer.write_event(event)

    def close(self) -> None:
        self._writer.close()


def _tensorboardx():
    """tensorboardX's ``EventsWriter``, ``summary.scalar`` and ``event_pb2``, imported without torch.

    tensorboardX's package imports torch where it is installed (for ``SummaryWriter``'s tensor
    inputs, which dslc never passes): 2.0 s of a JAX run's start on this machine, against 0.17 s
    without it. Where torch is not loaded yet (the JAX target) it is hidden for that import
    only (a ``None`` in ``sys.modules`` makes ``import torch`` raise ImportError, which
    tensorboardX expects), then forgotten so a later ``import torch`` works.
    """
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None
    try:
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto import event_pb2
        from tensorboardX.summary import scalar
    finally:
        if hide:
            del sys.modules["torch"]
    return EventsWriter, scalar, event_pb2
