"""Every optimizer step's learning rate (and one_cycle's momentum), computed once per run for both targets.

The schedulers of ``torch.optim.lr_scheduler`` are replayed here in Python floats on
one param group, line for line: the same recursive formulas (CosineAnnealingLR's
ratio of cosines, LinearLR's ratio of factors, StepLR's repeated multiplication), the
same initial step, and SequentialLR's composition with its quirks (the learning rate
reset to ``initial_lr``, the undone initial steps, the closed form at the milestone).
So the tables equal what torch's schedulers set, bit for bit (``tests/test_schedules.py``
compares them with torch's driving a real optimizer), and the lr is a function of the
step: a resumed run continues the schedule exactly, with no scheduler state saved.

The value of interval ``i`` is the one in effect before the scheduler's ``i``-th
``step()``: a per-step schedule changes after each optimizer step, a per-epoch one
after each epoch (``steps_per_epoch`` optimizer steps). The torch target sets each
param group's lr from the table before each step; the JAX target builds its optax
optimizers with lr 1 and multiplies the updates by the table (every update dslc has
is linear in lr). numpy only: neither framework is imported.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass

import numpy as np

from dsl.errors import SpecSchemaError, UsageError
from dsl.schedules import WarmupParams, schedule_interval
from dsl.schema import ChoiceSpec, Spec, TrainSpec


@dataclass(frozen=True)
class StepSchedule:
    """The learning rate of every optimizer step of a run (float64, indexed by the 0-based step), and the momentum
    where one_cycle cycles it (SGD's ``momentum``, Adam's ``betas[0]``), else None."""

    lr: np.ndarray
    momentum: np.ndarray | None = None


class _Scheduler:
    """``torch.optim.lr_scheduler.LRScheduler`` on one param group (a dict): its attributes and its steps."""

    def __init__(self, group: dict):
        self.group = group
        group.setdefault("initial_lr", group["lr"])
        self.base_lr = group["initial_lr"]
        self.last_epoch = -1
        self.is_initial = False
        self.initial_step()

    def initial_step(self) -> None:
        self.step_count = 0
        self.is_initial = True
        self.step()
        self.is_initial = False

    def step(self) -> None:
        self.step_count += 1
        self.update()

    def update(self, epoch: int | None = None) -> None:
        """torch's ``_update_lr``: the next lr, or with ``epoch`` the closed form where the scheduler has one."""
        if epoch is None:
            self.last_epoch += 1
            lr = self.get_lr()
        else:
            self.last_epoch = epoch
            lr = self.closed_form() if hasattr(self, "closed_form") else self.get_lr()
        self.group["lr"] = lr


class _StepLR(_Scheduler):
    def __init__(self, group, step_size, gamma, interval=None):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(group)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self.group["lr"]
        return self.group["lr"] * self.gamma

    def closed_form(self):
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class _MultiStepLR(_Scheduler):
    def __init__(self, group, milestones, gamma, interval=None):
        self.milestones, self.gamma = Counter(milestones), gamma
        super().__init__(group)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return self.group["lr"]
        return self.group["lr"] * self.gamma ** self.milestones[self.last_epoch]

    def closed_form(self):
        return self.base_lr * self.gamma ** bisect_right(sorted(self.milestones.elements()), self.last_epoch)


class _ExponentialLR(_Scheduler):
    def __init__(self, group, gamma, interval=None):
        self.gamma = gamma
        super().__init__(group)

    def get_lr(self):
        return self.group["lr"] if self.is_initial else self.group["lr"] * self.gamma

    def closed_form(self):
        return self.base_lr * self.gamma ** self.last_epoch


class _CosineAnnealingLR(_Scheduler):
    def __init__(self, group, T_max, eta_min, interval=None):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(group)

    def get_lr(self):
        lr, e, t, eta_min = self.group["lr"], self.last_epoch, self.T_max, self.eta_min
        if self.is_initial:
            return lr
        if self.step_count == 1 and e > 0:
            return eta_min + (self.base_lr - eta_min) * (1 + math.cos(e * math.pi / t)) / 2
        if (e - 1 - t) % (2 * t) == 0:
            return lr + (self.base_lr - eta_min) * (1 - math.cos(math.pi / t)) / 2
        return (1 + math.cos(math.pi * e / t)) / (1 + math.cos(math.pi * (e - 1) / t)) * (lr - eta_min) + eta_min

    def closed_form(self):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2


class _LinearLR(_Scheduler):
    def __init__(self, group, start_factor, total_iters, end_factor=1.0):
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(group)

    def get_lr(self):
        lr, start, end = self.group["lr"], self.start_factor, self.end_factor
        if self.last_epoch == 0:
            return lr * start
        if self.is_initial or self.last_epoch > self.total_iters:
            return lr
        return lr * (1.0 + (end - start) / (self.total_iters * start + (self.last_epoch - 1) * (end - start)))

    def closed_form(self):
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor)
                               * min(self.total_iters, self.last_epoch) / self.total_iters)


class _OneCycleLR(_Scheduler):
    """torch's OneCycleLR; ``group['momentum']`` stands for SGD's momentum or Adam's beta1 alike."""

    def __init__(self, group, max_lr, total_steps, pct_start, anneal_strategy, cycle_momentum, base_momentum,
                 max_momentum, div_factor, final_div_factor, three_phase, interval=None):
        self.total_steps, self.cycle_momentum = total_steps, cycle_momentum
        self.anneal = _cos if anneal_strategy == "cos" else _linear
        self.phases = _one_cycle_phases(pct_start, total_steps, three_phase)
        group["initial_lr"] = max_lr / div_factor
        group["max_lr"] = max_lr
        group["min_lr"] = group["initial_lr"] / final_div_factor
        if cycle_momentum:
            group["momentum"] = max_momentum
            group["max_momentum"], group["base_momentum"] = max_momentum, base_momentum
        super().__init__(group)

    def get_lr(self):
        step_num, start_step, group = self.last_epoch, 0.0, self.group
        for i, (end_step, start_lr, end_lr, start_momentum, end_momentum) in enumerate(self.phases):
            if step_num <= end_step or i == len(self.phases) - 1:
                pct = (step_num - start_step) / (end_step - start_step)
                lr = self.anneal(group[start_lr], group[end_lr], pct)
                if self.cycle_momentum:
                    group["momentum"] = self.anneal(group[start_momentum], group[end_momentum], pct)
                return lr
            start_step = end_step
        raise AssertionError("the last phase always matches")


def _one_cycle_phases(pct_start: float, total_steps: int, three_phase: bool) -> list[tuple]:
    """torch's ``_schedule_phases``: (end_step, start_lr, end_lr, start_momentum, end_momentum) keys."""
    if three_phase:
        return [(float(pct_start * total_steps) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * pct_start * total_steps) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
    return [(float(pct_start * total_steps) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
            (total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]


def _cos(start, end, pct):
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _linear(start, end, pct):
    return (end - start) * pct + start


class _SequentialLR:
    """torch's SequentialLR over schedulers already built on the same group."""

    def __init__(self, group: dict, schedulers: list, milestones: list[int]):
        self.schedulers, self.milestones, self.last_epoch = schedulers, milestones, 0
        group["lr"] = group["initial_lr"]
        for scheduler in schedulers:
            scheduler.last_epoch -= 1
        schedulers[bisect_right(milestones, 0)].initial_step()

    def step(self) -> None:
        self.last_epoch += 1
        index = bisect_right(self.milestones, self.last_epoch)
        scheduler = self.schedulers[index]
        if index > 0 and self.milestones[index - 1] == self.last_epoch:
            scheduler.update(0)
        else:
            scheduler.step()


SCHEDULERS = {"step": _StepLR, "multistep": _MultiStepLR, "exponential": _ExponentialLR,
              "cosine": _CosineAnnealingLR, "one_cycle": _OneCycleLR}
"""Schedule name -> its replay, taking the spec's arguments by name (``dsl/schedules.py``)."""


def replay(lr: float, momentum: float, schedule: ChoiceSpec | None, warmup: WarmupParams | None,
           intervals: int) -> tuple[np.ndarray, np.ndarray]:
    """The lr and momentum in effect during each of ``intervals`` intervals, as torch's scheduler sets them on an
    optimizer of this lr and momentum. ``schedule``'s arguments must be complete (``_complete``)."""
    group = {"lr": lr, "momentum": momentum}
    scheduler = None
    if warmup is not None:
        scheduler = _LinearLR(group, warmup.start_factor, warmup.length)
    if schedule is not None:
        main = SCHEDULERS[schedule.name](group, **schedule.params.model_dump())
        scheduler = main if scheduler is None else _SequentialLR(group, [scheduler, main], [warmup.length])
    lrs, momenta = np.empty(intervals), np.empty(intervals)
    for i in range(intervals):
        lrs[i], momenta[i] = group["lr"], group["momentum"]
        if i + 1 < intervals:
            scheduler.step()
    return lrs, momenta


def schedule_tables(spec: Spec, train: TrainSpec, models, steps: int, steps_per_epoch: int
                    ) -> dict[str, StepSchedule]:
    """Each model's ``StepSchedule`` over a run of ``steps`` optimizer steps, for the models with a schedule or a
    warmup (the others keep their optimizer's constant lr); ``models`` are the trained models ('' for the one).
    Raises a located ``SpecSchemaError`` for what only the run's length reveals (one_cycle's ``total_steps``)."""
    tables = {}
    for model in dict.fromkeys(models):
        schedule, warmup = train.schedule_for(model), train.warmup_for(model)
        if schedule is None and warmup is None:
            continue
        per = 1 if schedule_interval(schedule, warmup) == "step" else steps_per_epoch
        intervals = -(-steps // per)
        optimizer = train.optimizer_for(model).params
        if schedule is not None and schedule.name == "one_cycle" and "lr" in optimizer.model_fields_set:
            raise UsageError("--lr: one_cycle sets the learning rate from its max_lr (torch's OneCycleLR overwrites "
                             "the optimizer's lr); drop --lr")
        schedule = _complete(spec, model, schedule, warmup, intervals)
        try:
            lrs, momenta = replay(optimizer.lr, _momentum(optimizer), schedule, warmup, intervals)
        except ZeroDivisionError:
            raise SpecSchemaError(f"{schedule.name}: its arguments make one of torch's phases zero intervals long "
                                  "(torch raises ZeroDivisionError); change pct_start or total_steps",
                                  _locate(spec, model, schedule.name)) from None
        cycled = getattr(schedule.params, "cycle_momentum", False) if schedule is not None else False
        index = np.arange(steps) // per
        tables[model] = StepSchedule(lrs[index], momenta[index] if cycled else None)
    return tables


def check_scheduled(train: TrainSpec, models, schedules: dict[str, StepSchedule]) -> None:
    """Refuses to train a scheduled model without its table (a target built without ``schedules``): it would
    train at a constant lr instead."""
    for model in models:
        if (train.schedule_for(model) or train.warmup_for(model)) and model not in schedules:
            raise ValueError(f"model {model or '(the one)'} has a schedule: build the target with "
                             "schedules=schedule_tables(...) (backends/schedules.py)")


def constant_hyperparameters(optimizer: ChoiceSpec) -> dict[str, float]:
    """An unscheduled optimizer's lr, the same every step."""
    return {"lr": optimizer.params.lr}


def _momentum(optimizer) -> float:
    """The optimizer's momentum as OneCycleLR cycles it: Adam's beta1, or SGD's momentum."""
    return optimizer.betas[0] if hasattr(optimizer, "betas") else getattr(optimizer, "momentum", 0.0)


def _complete(spec: Spec, model: str, schedule: ChoiceSpec | None, warmup: WarmupParams | None,
              intervals: int) -> ChoiceSpec | None:
    """The schedule with its run-length defaults filled (cosine's ``T_max``, one_cycle's ``total_steps``), and
    one_cycle refused where the run is longer than its cycle (torch raises past ``total_steps``)."""
    if schedule is None:
        return None
    params, after_warmup = schedule.params, max(intervals - (warmup.length if warmup else 0), 1)
    if schedule.name == "cosine" and params.T_max is None:
        params = params.model_copy(update={"T_max": after_warmup})
    if schedule.name == "one_cycle":
        if params.total_steps is None:
            params = params.model_copy(update={"total_steps": after_warmup})
        elif params.total_steps < after_warmup:
            unit = "steps" if params.interval == "step" else "epochs"
            raise SpecSchemaError(f"one_cycle's total_steps is {params.total_steps}, and the run takes "
                                  f"{after_warmup} {unit} of it (torch raises past total_steps); raise total_steps, "
                                  f"or leave it out (default: the run's {unit})",
                                  _locate(spec, model, "one_cycle", "total_steps"))
    return ChoiceSpec(schedule.name, params)


def _locate(spec: Spec, model: str, *path):
    by_model = (model,) if isinstance(spec.train.schedule, dict) else ()
    return spec.source.locate(("train", "schedule") + by_model + path)
