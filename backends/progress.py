"""Training progress: a rich bar on a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import sys
import time

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


class Progress:
    """Reports steps as they are dispatched and a summary line per epoch.

    ``chunk`` is how many steps the driver runs between reports; the rate shown is
    measured (it forces a host sync at most every ``refresh`` seconds).
    """

    chunk = 25
    refresh = 0.5

    def __init__(self, epochs: int, steps_per_epoch: int, enabled: bool | None = None):
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.enabled = sys.stdout.isatty() if enabled is None else enabled
        self.bar = None
        self.epoch = 1
        self.last = 0.0

    def __enter__(self) -> Progress:
        if self.enabled:
            self.bar = RichProgress(TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                                    MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
            self.bar.start()
            self.task = self.bar.add_task("train", total=self.steps_per_epoch, epoch=1, epochs=self.epochs, rate="")
        return self

    def __exit__(self, *exc) -> None:
        if self.bar:
            self.bar.stop()

    def advance(self, steps: int, samples: int, rate=None) -> None:
        if not self.bar:
            return
        fields = {}
        now = time.perf_counter()
        if rate is not None and now - self.last > self.refresh:
            fields["rate"] = f"{rate():,.0f} samples/s"
            self.last = now
        self.bar.update(self.task, advance=steps, **fields)

    def epoch_done(self, record: dict) -> None:
        line = (f"epoch {record['epoch']}/{self.epochs}  train_loss {record['train_loss']:.4f}  "
                f"test_loss {record['test_loss']:.4f}  test_accuracy {record['test_accuracy']:.4f}  "
                f"{record['train_samples_per_sec']:,.0f} samples/s  {record['seconds']:.1f}s")
        if self.bar:
            self.bar.console.print(line)
            self.epoch += 1
            self.bar.reset(self.task, total=self.steps_per_epoch, epoch=self.epoch, epochs=self.epochs)
        else:
            print(line, flush=True)
