"""Keras's EarlyStopping rule and the best epoch it keeps, as state a checkpoint carries.

The rule (``keras.callbacks.EarlyStopping``, Keras 3), applied after each epoch's
evaluation to the monitored validation metric: a value improves on the best so far
when ``value + min_delta < best`` (mode ``min``) or ``value - min_delta > best``
(``max``), and the first value always does. An improvement becomes the best and
resets ``wait``, the count of epochs since the last one; any other epoch adds one to
it, and when ``wait`` reaches ``patience`` (on an epoch after the first) training
stops after that epoch. So patience 0 stops at the first epoch that does not improve,
patience 3 after three such epochs in a row. One departure: a NaN never improves
(Keras takes a first-epoch NaN as its best and then never improves on it).

Without ``train.early_stopping`` the same rule, with no patience, only keeps the best
epoch (``Watch.patience`` None: it never stops). The state is a few numbers
(``state``), saved in every checkpoint so a resumed run stops where the whole run would.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from dsl.monitor import Watch


@dataclass
class EarlyStopping:
    """The monitor's best value and epoch so far, the epochs since, and the epoch training stopped at."""

    watch: Watch
    best: float | None = None
    best_epoch: int | None = None
    wait: int = 0
    stopped_epoch: int | None = None

    @classmethod
    def resumed(cls, watch: Watch, state: dict | None) -> EarlyStopping:
        """The rule for ``watch`` continuing from a checkpoint's ``state`` (None or empty: from the start)."""
        return cls(watch, **(state or {}))

    def state(self) -> dict:
        """What a checkpoint keeps: everything but the watch, which the spec gives again."""
        return {k: v for k, v in asdict(self).items() if k != "watch"}

    def improves(self, value: float) -> bool:
        """Whether ``value`` beats the best by more than ``min_delta`` (Keras's ``_is_improvement``)."""
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        delta = self.watch.min_delta
        return value + delta < self.best if self.watch.mode == "min" else value - delta > self.best

    def update(self, epoch: int, value: float) -> bool:
        """Takes ``epoch``'s monitored value; True when it is the new best (its weights are the best ones)."""
        if self.improves(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return True
        self.wait += 1
        patience = self.watch.patience
        if patience is not None and self.wait >= patience and epoch > 1:
            self.stopped_epoch = epoch
        return False

    @property
    def stopped(self) -> bool:
        return self.stopped_epoch is not None

    def summary(self) -> dict:
        """summary.json's account of it: what was watched, the best epoch and value, and whether it stopped."""
        found = {"monitor": self.watch.monitor, "mode": self.watch.mode, "best_epoch": self.best_epoch,
                 "best_value": self.best, "stopped_early": self.stopped}
        return found | ({"stopped_epoch": self.stopped_epoch} if self.stopped else {})
