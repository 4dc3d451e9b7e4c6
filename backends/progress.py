"""Training progress: a rich bar on a terminal, one plain line per epoch otherwise.

The bar's text columns read ``task.fields`` through ``_Field``, never through a
format string: rich's ``Progress.reset(**fields)`` *replaces* a task's fields, and a
``TextColumn("{task.fields[rate]}")`` then raised ``KeyError: 'rate'`` on the next
refresh, which killed the quickstart after epoch 1 in every terminal (pipes never
showed it, because the bar is off there). ``tests/test_terminal.py`` runs
``dslc train`` inside a pseudo-terminal to keep it fixed.
"""

from __future__ import annotations

import sys
import time

from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.text import Text


class _Field(ProgressColumn):
    """A column showing one task field, empty while the field is not set."""

    def __init__(self, key: str, template: str = "{}"):
        super().__init__()
        self.key, self.template = key, template

    def render(self, task) -> Text:
        value = task.fields.get(self.key)
        return Text("" if value is None else self.template.format(value))


def format_rate(samples_per_sec: float | None) -> str:
    """``12,345 samples/s``, or ``n/a`` where nothing was timed (a run of one step is all warm-up)."""
    return f"{samples_per_sec:,.0f} samples/s" if samples_per_sec else "n/a samples/s"


class Progress:
    """Reports steps as they are dispatched and a summary line per epoch.

    ``chunk`` is how many steps the driver runs between reports; the rate shown is
    measured (it forces a host sync at most every ``refresh`` seconds).
    """

    chunk = 25
    refresh = 0.5

    def __init__(self, epochs: int, steps_per_epoch: int, enabled: bool | None = None, shown: bool = True):
        """``shown`` False: nothing at all, neither bar nor lines (a data-parallel run's ranks but 0)."""
        self.epochs, self.steps_per_epoch, self.shown = epochs, steps_per_epoch, shown
        self.enabled = shown and (sys.stdout.isatty() if enabled is None else enabled)
        self.bar = None
        self.last = 0.0

    def __enter__(self) -> Progress:
        if self.enabled:
            self.bar = RichProgress(_Field("epoch", "epoch {}"), BarColumn(), MofNCompleteColumn(), _Field("rate"),
                                    TimeRemainingColumn())
            self.bar.start()
            self.task = self.bar.add_task("train", total=self.steps_per_epoch, start=False)
        return self

    def __exit__(self, *exc) -> None:
        if self.bar:
            self.bar.stop()

    def start_epoch(self, epoch: int, steps: int) -> None:
        """Resets the bar for an epoch of ``steps`` steps (fewer than a full epoch under ``--max-steps``)."""
        if self.bar:
            self.bar.reset(self.task, total=steps, epoch=f"{epoch}/{self.epochs}", rate=None)

    def advance(self, steps: int, samples: int, rate=None) -> None:
        if not self.bar:
            return
        now = time.perf_counter()
        if rate is not None and now - self.last > self.refresh:
            self.bar.update(self.task, rate=format_rate(rate()))
            self.last = now
        self.bar.update(self.task, advance=steps)

    def epoch_done(self, record: dict) -> None:
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in record.items()
                            if k.startswith(("train_", "val_", "test_")) and k != "train_samples_per_sec")
        line = (f"epoch {record['epoch']}/{self.epochs}  {metrics}  "
                f"{format_rate(record['train_samples_per_sec'])}  {record['seconds']:.1f}s")
        if self.bar:
            self.bar.console.print(line, highlight=False, soft_wrap=True)
        elif self.shown:
            print(line, flush=True)
