"""Checks of the train section's schedules, clipping and ``no_decay`` against the models they apply to.

Run by ``resolve_objective`` (so ``dslc validate`` reports them located, before anything
is built): a per-model mapping of schedules or warmups names trained models; each
``no_decay`` entry names at least one of its model's weights; and what torch cannot do,
or does differently from what the spec reads as, is refused rather than trained:
value clipping or cycled momentum on sparse gradients (torch's ``clip_grad_value_``
raises on one; ``clip_grad_norm_`` coalesces it first and is fine), and an optimizer
``lr`` beside ``one_cycle``, which torch's OneCycleLR overwrites with ``max_lr / div_factor``.
"""

from __future__ import annotations

from .decay import matching
from .errors import SpecSchemaError, did_you_mean
from .graph import Graph
from .schema import Spec


def check_recipe(spec: Spec, graph: Graph, trained: list[str]) -> None:
    """All the checks, for the models the objective trains (``''``: the one model)."""
    for key in ("schedule", "warmup"):
        _check_models(spec, key, trained)
    for model in trained:
        _check_no_decay(spec, graph.submodel(model), model)
        _check_one_cycle_lr(spec, model)
        _check_sparse_steps(spec, graph.submodel(model), model)


def _where(spec: Spec, *path, key: bool = False):
    return spec.source.locate(("train",) + path, key=key)


def _per_model(spec: Spec, key: str, model: str) -> tuple:
    """The path under ``train`` of one model's ``key`` (``optimizer``, ``schedule``): by model or for all."""
    return (key, model) if isinstance(getattr(spec.train, key), dict) else (key,)


def _check_models(spec: Spec, key: str, trained: list[str]) -> None:
    """A mapping by model names trained models; a model it leaves out keeps its optimizer's constant lr."""
    given = getattr(spec.train, key)
    if not isinstance(given, dict):
        return
    models = [m for m in trained if m]
    for name in given:
        if name not in models:
            hint = f"{did_you_mean(name, models)}; models: {', '.join(models)}" if models else \
                "; this spec has one model: give one " + key
            raise SpecSchemaError(f"train.{key} names '{name}', which is not a trained model{hint}",
                                  _where(spec, key, name, key=True))


def _check_no_decay(spec: Spec, graph: Graph, model: str) -> None:
    """Each ``no_decay`` entry names a weight of the model: a pattern matching nothing is a typo."""
    patterns = getattr(spec.train.optimizer_for(model).params, "no_decay", None) or ()
    for index, pattern in enumerate(patterns):
        if not matching(graph, pattern):
            names = [n for n, w in graph.state_dict_spec().items() if w.trainable]
            shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            raise SpecSchemaError(f"no_decay pattern '{pattern}' matches none of the weights of "
                                  f"{f'model {model}' if model else 'the model'} ({shown}); patterns are fnmatch "
                                  f"over these names ('*.bias'), or bias_and_norm",
                                  _where(spec, *_optimizer_args(spec, model), "no_decay", index))


def _optimizer_args(spec: Spec, model: str) -> tuple:
    return _per_model(spec, "optimizer", model) + (spec.train.optimizer_for(model).name,)


def _check_one_cycle_lr(spec: Spec, model: str) -> None:
    schedule = spec.train.schedule_for(model)
    optimizer = spec.train.optimizer_for(model)
    if schedule is not None and schedule.name == "one_cycle" and "lr" in optimizer.params.model_fields_set:
        raise SpecSchemaError(f"one_cycle sets the learning rate from max_lr (torch's OneCycleLR overwrites the "
                              f"optimizer's lr with max_lr / div_factor); drop lr from {optimizer.name}",
                              _where(spec, *_optimizer_args(spec, model), "lr", key=True))


def _check_sparse_steps(spec: Spec, graph: Graph, model: str) -> None:
    """Value clipping and cycled momentum need dense gradients (see the module docstring)."""
    tables = [n for n in graph.nodes if any(w.sparse for w in n.weights.values())]
    if not tables:
        return
    if spec.train.clip_grad_value is not None:
        raise SpecSchemaError(f"clip_grad_value clamps every gradient, and {tables[0].name} has sparse: true: torch's "
                              f"clip_grad_value_ cannot clamp a sparse gradient (it raises); use clip_grad_norm, or "
                              f"sparse: false", _where(spec, "clip_grad_value", key=True))
    schedule = spec.train.schedule_for(model)
    if schedule is not None and getattr(schedule.params, "cycle_momentum", False):
        raise SpecSchemaError(f"one_cycle cycles the momentum (cycle_momentum, torch's default), and "
                              f"{tables[0].name} has sparse: true: sgd would keep a sparse momentum buffer and "
                              f"sparse_adam's beta1 is not cycled here; give cycle_momentum: false, or sparse: false",
                              _where(spec, *_per_model(spec, "schedule", model), "one_cycle", key=True))
