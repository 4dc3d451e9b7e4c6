"""Learning-rate schedules and warmup: torch.optim.lr_scheduler's, in the spec's ``name: {args}`` form.

``train.schedule`` names one of ``SCHEDULES`` (or one per model, as ``train.optimizer``
does); ``train.warmup`` is torch's ``LinearLR`` composed in front of it the way
``SequentialLR([LinearLR, schedule], milestones=[N])`` composes them. Arguments and
defaults are torch's, with two additions torch leaves to the training loop:

- ``interval``: whether the scheduler steps after every optimizer step (``step``) or
  after every epoch (``epoch``). The defaults are torch users' conventions: ``epoch``
  for ``step``, ``multistep``, ``exponential`` and ``cosine`` (torch's docs step them
  per epoch), ``step`` for ``one_cycle`` (torch's docs step it per batch).
- run-length defaults where torch has none: ``cosine``'s ``T_max`` and ``one_cycle``'s
  ``total_steps`` default to the run's length in the schedule's interval (less the
  warmup, for ``T_max``), so ``schedule: cosine`` anneals over the whole run.

The warmup counts the schedule's intervals, as SequentialLR's milestones do: it takes
``steps: N`` when the schedule steps per optimizer step and ``epochs: N`` when per
epoch, so the unit is on the page. ``backends/schedules.py`` computes every step's
learning rate from these, replicating torch's own formulas.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import Field, Strict, model_validator

from .types import Bool, NonNegativeFloat, Params, PositiveFloat, PositiveInt, Probability

Interval = Literal["step", "epoch"]
Momentum = Annotated[float, Strict(), Field(ge=0, lt=1)]
Factor = Annotated[float, Strict(), Field(gt=0, le=1)]


class StepLRParams(Params):
    """torch's ``StepLR``: the learning rate times ``gamma`` every ``step_size`` intervals."""

    step_size: PositiveInt
    gamma: PositiveFloat = 0.1
    interval: Interval = "epoch"


class MultiStepLRParams(Params):
    """torch's ``MultiStepLR``: the learning rate times ``gamma`` at each of ``milestones`` (intervals counted from
    0; a milestone listed twice decays twice, as torch's Counter does)."""

    milestones: Annotated[list[PositiveInt], Field(min_length=1)]
    gamma: PositiveFloat = 0.1
    interval: Interval = "epoch"

    @model_validator(mode="after")
    def _increasing(self) -> MultiStepLRParams:
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"milestones must be increasing (torch's MultiStepLR), got {list(self.milestones)}")
        return self


class ExponentialLRParams(Params):
    """torch's ``ExponentialLR``: the learning rate times ``gamma`` every interval."""

    gamma: PositiveFloat
    interval: Interval = "epoch"


class CosineLRParams(Params):
    """torch's ``CosineAnnealingLR`` (its recursive form): from the optimizer's lr down to ``eta_min`` over ``T_max``
    intervals, then back up as torch's does; ``T_max`` defaults to the run's intervals after the warmup."""

    T_max: PositiveInt | None = None
    eta_min: NonNegativeFloat = 0.0
    interval: Interval = "epoch"


class OneCycleLRParams(Params):
    """torch's ``OneCycleLR``: from ``max_lr / div_factor`` up to ``max_lr`` over ``pct_start`` of ``total_steps``,
    then down to ``max_lr / div_factor / final_div_factor``; it replaces the optimizer's lr. With
    ``cycle_momentum`` (torch's default) the momentum (SGD's, or Adam's beta1) moves the other way between
    ``max_momentum`` and ``base_momentum``. ``total_steps`` defaults to the run's intervals."""

    max_lr: PositiveFloat
    total_steps: PositiveInt | None = None
    pct_start: Probability = 0.3
    anneal_strategy: Literal["cos", "linear"] = "cos"
    cycle_momentum: Bool = True
    base_momentum: Momentum = 0.85
    max_momentum: Momentum = 0.95
    div_factor: PositiveFloat = 25.0
    final_div_factor: PositiveFloat = 1e4
    three_phase: Bool = False
    interval: Interval = "step"


SCHEDULES = MappingProxyType({
    "step": StepLRParams,
    "multistep": MultiStepLRParams,
    "exponential": ExponentialLRParams,
    "cosine": CosineLRParams,
    "one_cycle": OneCycleLRParams,
})
"""Schedule name -> its arguments (torch.optim.lr_scheduler's, plus ``interval``); docs/PARITY.md §21."""


class WarmupParams(Params):
    """torch's ``LinearLR(start_factor, end_factor=1, total_iters=N)`` in front of the schedule (``SequentialLR``):
    the learning rate rises linearly from ``start_factor`` times the optimizer's lr over N intervals: ``steps: N``
    (optimizer steps) or ``epochs: N``, the schedule's interval. ``start_factor`` defaults to torch's 1/3."""

    steps: PositiveInt | None = None
    epochs: PositiveInt | None = None
    start_factor: Factor = 1.0 / 3

    @model_validator(mode="after")
    def _one_length(self) -> WarmupParams:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("give the warmup's length as steps: N (optimizer steps) or epochs: N, one of them")
        return self

    @property
    def interval(self) -> Interval:
        return "step" if self.steps is not None else "epoch"

    @property
    def length(self) -> int:
        """The warmup's intervals: SequentialLR's milestone."""
        return self.steps if self.steps is not None else self.epochs


def schedule_interval(schedule, warmup: WarmupParams | None) -> Interval:
    """When the composed scheduler steps: the schedule's ``interval``, or the warmup's when it stands alone."""
    return schedule.params.interval if schedule is not None else warmup.interval
