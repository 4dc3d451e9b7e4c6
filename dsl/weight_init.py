"""``init:`` in a spec: initializers per layer (by weight name) and a model's defaults by op.

A layer's ``init: {weight: {normal: {std: 0.02}}, bias: zeros}`` names its weights by
their state_dict leaf names. A model's ``init: {conv2d: {weight: ...}, batch_norm2d:
{...}}`` sets the same for every layer of an op, as ``model.apply(weights_init)``
does in torch; a layer's own ``init:`` wins, weight by weight. Names are checked
here, against the weights an op can have, so a typo is a located error before
anything is built; ``resolve_inits`` then picks and resolves the initializers of
one layer against its actual weights (``bias: false`` leaves no bias to set).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from .choice import choice_error, split_choice, validate_params, within
from .errors import did_you_mean
from .initializers import INITIALIZERS, InitSpec
from .names import unknown_name
from .ops import OPS, Init, Weight

Chosen = Mapping[str, tuple[InitSpec, tuple]]
"""Weight name -> (initializer, YAML path where it was written), for messages."""


class InitError(Exception):
    """An initializer that does not fit the weight it is given to; ``where`` is its YAML path."""

    def __init__(self, message: str, where: tuple, at_key: bool = False):
        super().__init__(message)
        self.where, self.at_key = where, at_key


def parse_initializer(value) -> InitSpec:
    """``zeros`` or ``{normal: {std: 0.02}}``; errors located relative to ``value``."""
    name, args = split_choice(value, "initializer", INITIALIZERS, ("zeros", "normal"))
    return InitSpec(name, validate_params(INITIALIZERS[name].params, args, (name,), name))


def parse_weight_inits(value, op: str) -> dict[str, InitSpec]:
    """A layer's ``init:``: weight name -> initializer, the names checked against what ``op`` can have."""
    weights = possible_weights(op)
    if not any(w.trainable for w in weights.values()):
        raise choice_error(f"{op} has no weights to initialize; init: applies to layers with weights", (), True)
    if not isinstance(value, dict) or not value:
        raise choice_error(f"init of {op} maps weight names to initializers ({_example(op)}); got {value!r}")
    parsed = {}
    for key, item in value.items():
        _check_weight_name(key, op, weights)
        parsed[key] = within((key,), parse_initializer, item)
    return parsed


def parse_op_defaults(value) -> dict[str, dict[str, InitSpec]]:
    """A model's ``init:``: op name -> {weight name: initializer}."""
    if not isinstance(value, dict):
        raise choice_error("init maps op names to {weight: initializer} (init: {conv2d: {weight: {normal: {std: "
                           f"0.02}}}}}}); got {value!r}")
    parsed = {}
    for op, table in value.items():
        if op not in OPS:
            raise choice_error(unknown_name("op", op), (op,), True)
        parsed[op] = within((op,), parse_weight_inits, table, op)
    return parsed


def resolve_inits(op: str, weights: Mapping[str, Weight], defaults: Chosen, given: Chosen,
                  name: str) -> tuple[tuple[str, Init], ...]:
    """The resolved initializers of one layer: its op's defaults for the weights it has, then its own.

    Raises ``InitError`` for a weight the layer does not have with its arguments, or an
    initializer torch would refuse for that weight's shape.
    """
    chosen = {w: entry for w, entry in defaults.items() if w in weights}
    for w, entry in given.items():
        if w not in weights:
            has = ", ".join(k for k, v in weights.items() if v.trainable) or "none"
            raise InitError(f"{name} ({op}) has no {w} with these arguments (its weights: {has}); remove it from "
                            "init: or change the arguments", entry[1], True)
        chosen[w] = entry
    return tuple((w, _resolve(spec, weights[w], f"{name}.{w}", where)) for w, (spec, where) in chosen.items())


def _resolve(spec: InitSpec, weight: Weight, key: str, where: tuple) -> Init:
    try:
        return spec.resolve(weight.shape)
    except ValueError as err:
        raise InitError(f"{key}: {err}; use normal, uniform or a constant", where) from None


@cache
def possible_weights(op: str) -> dict[str, Weight]:
    """Every weight and buffer a layer of ``op`` can have, by name: the union over the op's examples."""
    definition, found = OPS[op], {}
    for example in definition.examples:
        params = definition.params.model_validate(dict(example.params))
        params, _ = definition.infer(params, *example.types())
        for key, weight in definition.weights(params).items():
            found.setdefault(key, weight)
    return found


def _check_weight_name(key, op: str, weights: Mapping[str, Weight]) -> None:
    names = [k for k, w in weights.items() if w.trainable]
    if key in weights and not weights[key].trainable:
        raise choice_error(f"{key} is a buffer of {op} (running statistics, set by the forward pass), not a weight "
                           f"to initialize; {op}'s weights: {', '.join(names)}", (key,), True)
    if key not in weights:
        raise choice_error(f"{op} has no weight '{key}'{did_you_mean(str(key), names)}; its weights: "
                           f"{', '.join(names)}", (key,), True)


def _example(op: str) -> str:
    first = next(k for k, w in possible_weights(op).items() if w.trainable)
    return f"init: {{{first}: {{normal: {{std: 0.02}}}}}}"
