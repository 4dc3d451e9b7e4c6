"""The items of a ``model:`` list: op layers, ``sequential:`` groups and block uses.

Every item is ``kind: {arguments and control keys}`` or a bare name (``- relu``). The
control keys, the same for every kind, say how the item is wired, never what it
computes:

- ``name``: the item's name in its scope (a Python identifier);
- ``inputs``: the names it reads (earlier items of this or an enclosing scope, a
  block's inputs, the model's inputs); default: the item before it;
- ``if``: ``true``, ``false`` or a ``${...}`` expression; a dropped item's name stands
  for its input;
- ``repeat`` (block uses only): N stacked instances named ``name.0 .. name.N-1``.

An op layer may also have ``init:``, its weights' initializers by weight name
(``dsl/weight_init.py``): it says where the layer starts, not what it computes. On
prelu, whose torch argument is also called ``init`` (the starting slope), a number is
that argument and a mapping the initializers.

An op's arguments are validated here when they are plain values, so those errors
point at the file as before; arguments holding ``${...}`` (inside blocks) are
validated per instance, after substitution, by ``dsl/build.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .choice import choice_error, split_choice, validate_params, within
from .expr import contains_expression, is_expression
from .initializers import InitSpec
from .ops import OPS
from .types import Params
from .weight_init import parse_weight_inits

LAYER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_NAMES = frozenset({"input"})
SEQUENTIAL = "sequential"
CONTROL_KEYS = ("name", "inputs", "if", "repeat")
SEQUENTIAL_KEYS = ("name", "inputs", "if", "model")
MAX_REPEAT = 1000


@dataclass(frozen=True)
class LayerSpec:
    """One item of a ``model:`` list.

    Attributes:
        op: the op's name, ``sequential``, or the name of a block.
        params: the validated arguments of an op whose arguments hold no ``${...}``;
            None otherwise (see ``args``).
        args: the arguments as written: a block use's, or an op's that hold ``${...}``.
        kind: ``op``, ``sequential`` or ``block``.
        keyed: written as ``op: {...}`` (False for a bare ``- relu``): where errors point.
        init: an op layer's ``init:`` parsed (weight name -> ``InitSpec``) where it holds no ``${...}``;
            None otherwise (see ``init_args``). ``dsl/build.py`` resolves it against the layer's weights.
        init_args: an ``init:`` that holds ``${...}``, as written; parsed per instance by ``dsl/build.py``.
    """

    op: str
    params: Params | None
    name: str | None = None
    args: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    inputs: tuple[str, ...] | None = None
    when: object = None
    repeat: object = None
    body: tuple[LayerSpec, ...] = ()
    kind: str = "op"
    keyed: bool = True
    init: Mapping[str, InitSpec] | None = None
    init_args: Mapping | None = None


def parse_layer(value, blocks: Mapping) -> LayerSpec:
    """Parses one item; raises a ``choice_error`` whose subpath is relative to the item."""
    names = {**OPS, **{b: None for b in blocks if b not in OPS}, SEQUENTIAL: None}
    op, args = split_choice(value, "op", names, ("relu", "conv2d"))
    keyed = isinstance(value, dict)
    control = {key: args.pop(key) for key in CONTROL_KEYS if key in args}
    _check_name(control.get("name"), op)
    inputs = _inputs(control.get("inputs"), op)
    when = _when(control["if"], op) if "if" in control else None
    if op == SEQUENTIAL:
        return _sequential(args, control, inputs, when, blocks)
    if op in blocks and op not in OPS:
        repeat = _repeat(control["repeat"], op) if "repeat" in control else None
        return LayerSpec(op, None, control.get("name"), MappingProxyType(args), inputs, when, repeat,
                         kind="block", keyed=keyed)
    if "repeat" in control:
        raise choice_error(f"repeat applies to block uses; {op} is an op (define a block to repeat it)",
                           (op, "repeat"), True)
    init = _init(args, op)
    if contains_expression(args):
        return LayerSpec(op, None, control.get("name"), MappingProxyType(args), inputs, when, keyed=keyed, **init)
    return LayerSpec(op, validate_params(OPS[op].params, args, (op,), op), control.get("name"), inputs=inputs,
                     when=when, keyed=keyed, **init)


def _init(args: dict, op: str) -> dict:
    """Pops the layer's ``init:`` from ``args`` (prelu's own numeric ``init`` stays an argument): ``init``
    parsed, or ``init_args`` as written where it holds ``${...}``; no keys without one."""
    if "init" not in args or ("init" in OPS[op].params.model_fields and not isinstance(args["init"], dict)):
        return {}
    value = args.pop("init")
    if contains_expression(value):
        return {"init_args": value}
    return {"init": within((op, "init"), parse_weight_inits, value, op)}


def _sequential(args: dict, control: dict, inputs, when, blocks: Mapping) -> LayerSpec:
    unknown = [k for k in args if k != "model"]
    if unknown:
        raise choice_error(f"unknown key '{unknown[0]}' for sequential; valid keys: {', '.join(SEQUENTIAL_KEYS)}",
                           (SEQUENTIAL, unknown[0]), True)
    body = args.get("model")
    if not isinstance(body, list) or not body:
        raise choice_error("sequential needs model: a non-empty list of layers", (SEQUENTIAL,) + (
            ("model",) if "model" in args else ()))
    return LayerSpec(SEQUENTIAL, None, control.get("name"), inputs=inputs, when=when,
                     body=parse_body(body, blocks, (SEQUENTIAL, "model")), kind=SEQUENTIAL)


def parse_body(items: list, blocks: Mapping, prefix: tuple) -> tuple[LayerSpec, ...]:
    """Parses a list of items, re-raising an item's error with its path under ``prefix``."""
    return tuple(within(prefix + (index,), parse_layer, item, blocks) for index, item in enumerate(items))


def _check_name(name, op: str) -> None:
    if name is not None and (not isinstance(name, str) or not LAYER_NAME.match(name) or name in RESERVED_NAMES):
        raise choice_error(f"layer name {name!r} must be a Python-style identifier (letters, digits, _) "
                           f"and not {', '.join(sorted(RESERVED_NAMES))}", (op, "name"))


def _inputs(value, op: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise choice_error(f"inputs of {op} must be a non-empty list of names (inputs: [a, b]); got {value!r}",
                           (op, "inputs"))
    return tuple(value)


def _when(value, op: str):
    if isinstance(value, bool) or is_expression(value):
        return value
    raise choice_error(f"if: of {op} must be true, false or a \"${{...}}\" expression; got {value!r}", (op, "if"))


def _repeat(value, op: str):
    if is_expression(value):
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_REPEAT:
        raise choice_error(f"repeat of {op} must be an integer from 1 to {MAX_REPEAT} (or a \"${{...}}\" "
                           f"expression); got {value!r}", (op, "repeat"))
    return value
