"""Hypothesis strategies for valid specs: inputs of several kinds, then items drawn from the op catalog.

A spec is built item by item. Each op layer is one that ``catalog.fits`` at that
point: an example of its op (or a variation of one of its integer or shape-like
arguments) whose schema and shape rule accept what it reads. Layers read the item
before them or, named with ``inputs:``, any earlier value (skips, concatenations,
attention over another sequence, a padding mask). Some items are ``sequential``
groups, uses of a generated block (with a ``${...}`` argument, sometimes repeated),
or layers dropped by ``if: false``, whose names then stand for their inputs. The
train section picks a loss that fits each output, metrics that fit the loss and an
optimizer that fits the tables (sparse ones take ``sparse_adam`` or plain SGD).

Every op of the catalog is generated (``tests/test_fuzz_specs.py`` checks it). Not
generated yet: several models (``models:``, the ``gan`` and ``reconstruction``
objectives), ``data:`` (check needs none), ``decode:``, ``outputs:`` as a list,
float64 inputs and bf16 precision, ``if:`` expressions and expressions other than an
argument's ``${a}``, block ``output:``, and values of one op the catalog does not give
another (two padding masks of different lengths for a decoder's two inputs).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from hypothesis import reject
from hypothesis import strategies as st

from dsl.initializers import INITIALIZERS
from dsl.ops import OPS
from dsl.tensors import TensorType

from .catalog import Layer, Value, catalog_fits, fit, fits, op_weights, shape_lists
from .draws import likely, pick
from .spec import Block, GenSpec, Item, places
from .train import draw_train

OP_WEIGHTS = op_weights()
WEIGHTED_OPS = [op for op in sorted(OP_WEIGHTS) for _ in range(OP_WEIGHTS[op])]
DRAWS = 12
"""Ops drawn at one item before the whole catalog is asked which fit."""

@dataclass
class Scope:
    """A list of items being written: what they may read, what the next reads by default, its name counters,
    and which items something has read (the others' values are leaves: they must reach an output)."""

    pool: list[Value]
    default: tuple[Value, ...]
    kind: str = "model"  # model, block or sequential
    items: list[Item] = field(default_factory=list)
    seen: Counter = field(default_factory=Counter)
    read: set[int] = field(default_factory=set)

    @property
    def current(self) -> Value:
        return self.default[0]

    def leaves(self) -> list[Value]:
        """The first value of each item nothing has read, where a trainable weight lies upstream."""
        found = {}
        for value in self.pool:
            if value.source >= 0 and value.source not in self.read and value.trained:
                found.setdefault(value.source, value)
        return list(found.values())

    def add(self, item: Item, values: list[Value], reads: tuple[Value, ...]) -> None:
        """Appends an item making ``values`` from ``reads``; the next item reads its first value by default."""
        self.items.append(item)
        self.read |= {v.source for v in reads}
        self.pool.extend(values)
        self.default = (values[0],)


class Names:
    """Fresh layer, block and output names for one spec."""

    def __init__(self):
        self.count = 0

    def fresh(self, prefix: str):
        """``prefix`` and a new number (the number alone for ``''``: an item's ``Value.source``)."""
        self.count += 1
        return f"{prefix}{self.count}" if prefix else self.count


# --- inputs ---

def _image(draw) -> dict:
    return {"shape": [draw(st.integers(1, 3)), draw(st.integers(3, 7)), draw(st.integers(3, 7))]}


def _vector(draw) -> dict:
    return {"shape": [draw(st.integers(2, 8))]}


def _sequence(draw) -> dict:
    return {"shape": [draw(st.integers(2, 5)), draw(st.sampled_from([2, 4, 6, 8]))]}


def _ids(draw) -> dict:
    kind = {"shape": [draw(st.integers(1, 6))], "dtype": draw(st.sampled_from(["int64", "int32"]))}
    return kind | ({"vocab": draw(st.integers(2, 9))} if draw(st.booleans()) else {})


def _scalar_id(draw) -> dict:
    return {"shape": [], "dtype": "int64", "vocab": draw(st.integers(2, 9))}


def _fields(draw) -> dict:
    count = draw(st.integers(2, 3))
    return {"shape": [count], "dtype": "int64", "vocab": draw(st.lists(st.integers(2, 6), min_size=count,
                                                                        max_size=count))}


INPUT_KINDS = {"image": (_image, 3), "vector": (_vector, 2), "sequence": (_sequence, 3), "ids": (_ids, 1),
               "scalar_id": (_scalar_id, 1), "fields": (_fields, 1)}
"""Input kinds and how often each is drawn: images [C, H, W], vectors [F], float sequences [T, E], token ids [T],
one id per example, and ids per field [F] with their vocabularies (the last three go through a table first, so
they are drawn less: the tables would crowd out every other op)."""


def input_type(kind: dict) -> TensorType:
    vocab = kind.get("vocab")
    return TensorType(tuple(kind["shape"]), kind.get("dtype", "float32"),
                      tuple(vocab) if isinstance(vocab, list) else vocab)


@st.composite
def model_inputs(draw) -> dict[str, dict]:
    """One or two inputs of the kinds above, and sometimes a padding mask as long as a sequence among them."""
    kinds = [pick(draw, (k for k, (_, n) in INPUT_KINDS.items() for _ in range(n)))
             for _ in range(draw(st.integers(1, 2)))]
    inputs = {name: INPUT_KINDS[kind][0](draw) for name, kind in zip(("x", "y"), kinds)}
    lengths = [k["shape"][0] for k in inputs.values() if len(k["shape"]) in (1, 2) and "vocab" not in k]
    if lengths and draw(st.booleans()):
        inputs["m"] = {"shape": [draw(st.sampled_from(lengths))], "dtype": draw(st.sampled_from(["int64", "bool"])),
                       "mask": draw(st.sampled_from(["keep", "ignore"]))}
    return inputs if len(inputs) > 1 else {"input": inputs["x"]}


# --- layers ---

def _integer_keys(layer: Layer) -> list[str]:
    """Arguments worth varying: integers the example gives or the schema defaults, and integer lists."""
    fields = OPS[layer.op].params.model_fields
    keys = {k for k, v in layer.args.items() if _is_int(v) or _is_int_list(v)}
    keys |= {k for k, f in fields.items() if _is_int(f.default)}
    return sorted(keys)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_int_list(value) -> bool:
    return isinstance(value, list | tuple) and bool(value) and all(_is_int(v) for v in value)


def vary(draw, layer: Layer) -> Layer:
    """The layer with one integer (or integer-list) argument redrawn, where the op still accepts it."""
    keys = _integer_keys(layer)
    if not keys or not draw(st.booleans()):
        return layer
    key = pick(draw, keys)
    if _is_int_list(layer.args.get(key)) or draw(st.integers(0, 4)) == 0:
        value = pick(draw, shape_lists(layer.reads[0].type))
    else:
        value = draw(st.integers(-2, 9))
    return fit(OPS[layer.op], {**layer.args, key: value}, layer.reads) or layer


def draw_layer(draw, scope: Scope, *, chain: bool = False, single_input: bool = False, want=None) -> Layer | None:
    """A layer the catalog allows here, reading the default value (``chain``, or mostly) or another one.

    Ops are drawn (by ``OP_WEIGHTS``) until one fits, which asks a few ops instead of the
    whole catalog; where none of those fits, the whole catalog is asked.
    """
    if chain or (len(scope.default) == 1 and likely(draw)):
        first = scope.current
    else:
        first = pick(draw, (v for v in scope.pool if not v.mask))
    pool = [first] if single_input or chain else scope.pool
    for _ in range(DRAWS):
        op = OPS[pick(draw, WEIGHTED_OPS)]
        layers = [x for x in fits(op, first, pool) if want is None or want(x)] if op.arity[0] == 1 or (
            len(pool) > 1) else []
        if layers:
            return vary(draw, pick(draw, layers))
    found = catalog_fits(first, pool, single_input or chain)
    found = {op: kept for op, layers in found.items() if (kept := [x for x in layers if want is None or want(x)])}
    return vary(draw, pick(draw, found[pick(draw, sorted(found))])) if found else None


def _refs(reads: tuple[Value, ...]) -> list[str]:
    return [v.ref for v in reads]


def _output_ref(draw, name: str, op: str, index: int) -> str:
    """``name[k]`` or, for an op that names its outputs, sometimes ``name[h_n]``."""
    names = OPS[op].outputs
    return f"{name}[{names[index]}]" if names and draw(st.booleans()) else f"{name}[{index}]"


def _name(draw, scope: Scope, op: str, names: Names, prefix: str = "l") -> tuple[str | None, str]:
    """(the ``name:`` to write or None, the name the item has): given, ``{op}_{k}`` or its position."""
    scope.seen[op] += 1
    automatic = str(len(scope.items)) if scope.kind == "sequential" else f"{op}_{scope.seen[op]}"
    if scope.kind != "sequential" and draw(st.booleans()):
        given = names.fresh(prefix)
        return given, given
    return None, automatic


def _wiring(scope: Scope, reads: tuple[Value, ...]) -> list[str] | None:
    return None if tuple(reads) == scope.default else _refs(reads)


def add_layer(draw, scope: Scope, layer: Layer, names: Names) -> None:
    given, name = _name(draw, scope, layer.op, names)
    source = names.fresh("")
    values_read = () if OPS[layer.op].shape_only else layer.reads  # position_embedding reads a shape
    trained = layer.trainable or any(v.trained for v in values_read)
    computed = not OPS[layer.op].moves_values or any(v.computed for v in layer.reads)
    refs = [name] + [_output_ref(draw, name, layer.op, k) for k in range(1, len(layer.outputs))]
    values = [Value(ref, kind, source=source, trained=trained, computed=computed and not kind.is_float)
              for ref, kind in zip(refs, layer.outputs)]
    item = Item(layer.op, dict(layer.args), given, _wiring(scope, layer.reads), init=draw_init(draw, layer),
                reads=tuple(v.type for v in layer.reads), ref=name,
                ranks={k: len(w.shape) for k, w in layer.weights.items() if w.trainable})
    scope.add(item, values, values_read)


def draw_init(draw, layer: Layer) -> dict | None:
    """Sometimes initializers for some of the layer's weights, by weight name."""
    ranks = {k: len(w.shape) for k, w in layer.weights.items() if w.trainable}
    if not ranks or "init" in layer.args or draw(st.integers(0, 4)) > 0:
        return None
    return draw_initializers(draw, ranks)


def draw_initializers(draw, ranks: dict[str, int]) -> dict:
    """Initializers for some of these weights (name -> rank): fan-based ones only on 2+ dims, as torch's."""
    chosen = {}
    for key in draw(st.lists(st.sampled_from(sorted(ranks)), min_size=1, unique=True)):
        name = pick(draw, [n for n, d in INITIALIZERS.items() if not d.fans or ranks[key] >= 2])
        chosen[key] = {"constant": {"value": 0.25}} if name == "constant" else name
    return chosen


def draw_op_init(draw, spec: GenSpec) -> None:
    """Sometimes a top-level ``init:`` by op, for an op of the model that has trainable weights."""
    weighted = {p.item.op: p.item.ranks for p in places(spec) if p.item.ranks}
    if weighted and draw(st.integers(0, 5)) == 0:
        op = pick(draw, sorted(weighted))
        spec.init = {op: draw_initializers(draw, weighted[op])}


def add_dropped(draw, scope: Scope, names: Names) -> None:
    """A layer with ``if: false``: its name stands for its input, the value before it."""
    layer = draw_layer(draw, scope, chain=True)
    if layer is None:
        return
    given, name = _name(draw, scope, layer.op, names, "d")
    scope.items.append(Item(layer.op, dict(layer.args), given, when=False, ref=name))
    alias = replace(scope.current, ref=name)  # the same value: reading the alias reads it
    scope.pool.append(alias)
    scope.default = (alias,)


def add_sequential(draw, scope: Scope, names: Names) -> None:
    """A ``sequential`` group of one to three single-input layers, chained."""
    first = scope.current if len(scope.default) == 1 and likely(draw) else pick(draw, (v for v in scope.pool
                                                                                          if not v.mask))
    inner = Scope([first], (first,), "sequential")
    for _ in range(draw(st.integers(1, 3))):
        layer = draw_layer(draw, inner, chain=True)
        if layer is not None:
            add_layer(draw, inner, layer, names)
    if not inner.items or [v for v in inner.leaves() if v.source != inner.current.source]:
        return  # empty, or a trained layer only a position_embedding reads (its shape)
    given, name = _name(draw, scope, "sequential", names, "s")
    value = replace(inner.current, ref=name, source=names.fresh(""))
    scope.add(Item("sequential", {}, given, _wiring(scope, (first,)), body=inner.items, ref=name), [value],
              (first,) if first.source in inner.read else ())


def add_block(draw, spec: GenSpec, scope: Scope, names: Names) -> None:
    """A new block of one to three layers over its ``input`` (which they may read again: a residual), with one
    integer argument written ``${a}``, used here once or, where it keeps the shape, repeated."""
    first = scope.current if len(scope.default) == 1 and likely(draw) else pick(draw, (v for v in scope.pool
                                                                                          if not v.mask))
    block_input = replace(first, ref="input", source=-1)
    inner = Scope([block_input], (block_input,), "block")
    for _ in range(draw(st.integers(1, 3))):
        layer = draw_layer(draw, inner)
        if layer is not None:
            add_layer(draw, inner, layer, names)
    if not inner.items or [v for v in inner.leaves() if v.source != inner.current.source]:
        return  # empty, or a trained layer its output does not depend on
    block, use_args = _parametrized(draw, inner.items)
    block_name = names.fresh("b")
    spec.blocks[block_name] = block
    repeat = 2 if inner.current.type == first.type and block_input.source in inner.read and draw(
        st.booleans()) else None  # each instance's weights need the next to read its values
    given, name = _name(draw, scope, block_name, names, "u")
    value = replace(inner.current, ref=name, source=names.fresh(""))
    scope.add(Item(block_name, use_args, given, _wiring(scope, (first,)), repeat=repeat, ref=name), [value],
              (first,) if block_input.source in inner.read else ())


MERGES = {"add": ({}, lambda x, y: x == y), "multiply": ({}, lambda x, y: x == y),
          "concat": ({"dim": 1}, lambda x, y: x.rank == y.rank >= 1 and x.shape[1:] == y.shape[1:])}
"""The merges a ``merge`` item ends with: arguments, and which branch outputs (given the skip's) fit."""


def add_merge(draw, scope: Scope, names: Names) -> None:
    """A branch of one or two layers from the current value, merged with it: a residual ``add``, a gating
    ``multiply``, or a ``concat`` of channels (the generic draws find such pairs rarely)."""
    skip = scope.current
    op = pick(draw, sorted(MERGES))
    args, fits_skip = MERGES[op]
    for length in range(draw(st.integers(1, 2)), 0, -1):
        want = (lambda x: fits_skip(x.output, skip.type)) if length == 1 else (lambda x: x.output.is_float)
        layer = draw_layer(draw, scope, chain=True, want=want)
        if layer is None:
            return
        add_layer(draw, scope, layer, names)
    merged = fit(OPS[op], args, (scope.current, skip))
    if merged is not None:
        add_layer(draw, scope, merged, names)


def _parametrized(draw, items: list[Item]) -> tuple[Block, dict]:
    """The block of ``items`` with one integer argument turned into ``${a}``, and the use's arguments: the value
    given at the use (the argument required) or left to the block's default."""
    choices = [(i, k) for i, item in enumerate(items) for k, v in item.args.items() if _is_int(v)]
    if not choices:
        return Block({}, items), {}
    index, key = pick(draw, choices)
    value = items[index].args[key]
    items = [replace(item, args={**item.args, key: "${a}"}) if i == index else item for i, item in enumerate(items)]
    if draw(st.booleans()):
        return Block({"a": value}, items), {}
    return Block({"a": None}, items), {"a": value}


# --- the spec ---

STEPS = {"op": 6, "sequential": 1, "block": 1, "dropped": 1, "merge": 2}
"""How often each kind of item is drawn, relative to the others."""


@st.composite
def valid_specs(draw, max_items: int = 6) -> GenSpec:
    inputs = draw(model_inputs())
    pool = [Value(name, input_type(kind), kind.get("mask")) for name, kind in inputs.items()]
    scope = Scope(list(pool), tuple(pool))
    spec = GenSpec("fuzz", inputs, scope.items, {}, single_input=len(inputs) == 1)
    names = Names()
    for _ in range(draw(st.integers(1, max_items))):
        step = pick(draw, (k for k, n in STEPS.items() for _ in range(n)))
        _add_item(draw, step, spec, scope, names)
    _finish(draw, scope, names)
    outputs = _outputs(draw, spec, scope)
    spec.train = draw_train(draw, spec, outputs)
    draw_op_init(draw, spec)
    return spec


def _add_item(draw, step: str, spec: GenSpec, scope: Scope, names: Names) -> None:
    if step == "sequential" and len(scope.default) == 1:
        add_sequential(draw, scope, names)
    elif step == "block" and len(scope.default) == 1:
        add_block(draw, spec, scope, names)
    elif step == "dropped" and scope.items and len(scope.default) == 1:
        add_dropped(draw, scope, names)
    elif step == "merge" and len(scope.default) == 1 and scope.current.type.is_float:
        add_merge(draw, scope, names)
    else:
        layer = draw_layer(draw, scope)
        if layer is not None:
            add_layer(draw, scope, layer, names)


def _finish(draw, scope: Scope, names: Names) -> None:
    """Ends on an op layer with a float output, as a loss needs (ids go through a table first), and with a
    trainable weight somewhere (an optimizer needs one)."""
    if not scope.items or scope.items[-1].when is False or len(scope.default) > 1 or not scope.current.type.is_float:
        _append(draw, scope, names, lambda x: x.output.is_float)
    if not any(v.trained for v in scope.pool):
        _append(draw, scope, names, lambda x: x.output.is_float and x.trainable)
    if not scope.items or scope.items[-1].when is False or not scope.current.type.is_float or not any(
            v.trained for v in scope.pool):
        reject()


def _append(draw, scope: Scope, names: Names, want) -> None:
    layer = draw_layer(draw, scope, chain=len(scope.default) == 1, want=want)
    if layer is not None:
        add_layer(draw, scope, layer, names)


def _outputs(draw, spec: GenSpec, scope: Scope) -> dict[str, TensorType]:
    """The model's outputs by name: its last value, every other value a trained layer makes that nothing reads
    (torch would never train that layer: an error), and sometimes one more float value."""
    last = scope.current
    chosen = [last] + [v for v in scope.leaves() if v.source != last.source]
    others = [v for v in scope.pool if v.type.is_float and v.source >= 0 and v not in chosen and
              v.source not in {c.source for c in chosen}]
    if others and draw(st.integers(0, 4)) == 0:
        chosen.append(pick(draw, others))
    if len(chosen) == 1:
        return {"output": last.type}
    spec.outputs = {f"out{k}": v.ref for k, v in enumerate(chosen)}
    return {f"out{k}": v.type for k, v in enumerate(chosen)}
