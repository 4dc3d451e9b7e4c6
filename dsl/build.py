"""From a validated ``Spec`` to the flat ``Graph``: scopes, names, blocks, ``if``, ``repeat``, shapes.

The model's items are walked in file order, each in a **scope**: the model, a
``sequential`` or a block instance. A scope knows the names of its items (its
``values``, filled as items complete), the block arguments its expressions see, and
its parent: names resolve in the nearest scope first, then outward. A block
instance has no parent: its body sees its own inputs and layers only, so a block
means the same wherever it is used. Only earlier items can be read, so the graph is
acyclic by construction; a name that is declared later is reported as a later
reference, or as a cycle when the later item reads back.

Errors are ``SpecError``s located at the offending key or value. Inside a block
instance they point into the block's body and say which use made the instance
(``... (in layer2.0: block basic used at line 31)``), as a compiler reports an error
in a template with the line that instantiated it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic_core import PydanticCustomError

from .choice import validate_params
from .errors import SpecError, SpecSchemaError, SpecShapeError, did_you_mean
from .expr import ExprError, evaluate, is_expression
from .graph import MAX_ELEMENTS, MAX_PARAMETERS, Graph, Group, Node, split_index, split_ref
from .layers import SEQUENTIAL, LayerSpec
from .ops import OPS, ShapeError
from .schema import BlockSpec, ModelSpec, Spec
from .tensors import TensorType, format_shape
from .weight_init import Chosen, InitError, parse_weight_inits, resolve_inits

MAX_NODES = 100_000


@dataclass
class Scope:
    """One list of items being expanded; see the module docstring."""

    prefix: str  # of the dotted names made here: "" at the top, "layer1." inside layer1
    kind: str  # "model", "sequential" or "block"
    layers: tuple[LayerSpec, ...]
    path: tuple  # YAML path of the list
    parent: Scope | None = None
    position: int = 0  # index of this scope's item in its parent's list
    env: Mapping[str, object] = field(default_factory=dict)
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)  # local name -> the value(s) it stands for
    dropped: set[str] = field(default_factory=set)
    names: list[str] = field(default_factory=list)  # local name of each item, by index


def build_graph(spec: Spec) -> Graph:
    """Names the layers, expands blocks and infers every shape; raises a located ``SpecError``.

    A spec with several models (``models:``) gives one graph holding all of them side by
    side, each model's names (nodes, inputs, outputs) prefixed by its name
    (``generator.fc1``): one weights file, as a torch ``nn.ModuleDict`` of the models
    would save it. ``Graph.submodel`` gives each model's own graph.
    """
    _check_recursion(spec, spec.source.locate)
    if spec.models is None:
        return _Builder(spec, spec.model_specs[""], (), "").build()
    graphs = [_Builder(spec, model, ("models", name), name + ".").build() for name, model in spec.models.items()]
    return Graph(spec.name, tuple(i for g in graphs for i in g.inputs), tuple(n for g in graphs for n in g.nodes),
                 tuple(o for g in graphs for o in g.outputs),
                 tuple(Group(name, "model") for name in spec.models) + tuple(x for g in graphs for x in g.groups),
                 models=tuple(spec.models), masks=tuple(m for g in graphs for m in g.masks))


class _Builder:
    def __init__(self, spec: Spec, model: ModelSpec, at: tuple, prefix: str):
        """Builds ``model`` (found at YAML path ``at``), its names prefixed by ``prefix``."""
        self.spec, self.model, self.at, self.prefix, self.source = spec, model, at, prefix, spec.source
        self.nodes: list[Node] = []
        self.groups: list[Group] = []
        self.types: dict[str, TensorType] = {}
        self.parameters = 0
        self.inits = _op_defaults(spec, model, at)

    def locate(self, path: tuple, key: bool = False):
        return self.source.locate(path, key=key)

    # the model ------------------------------------------------------------
    def build(self) -> Graph:
        inputs = self._inputs()
        top = Scope(self.prefix, "model", tuple(self.model.model), self.at + ("model",),
                    values={name.removeprefix(self.prefix): (name,) for name, _ in inputs})
        last = self.layers(top, tuple(name for name, _ in inputs))
        outputs = self._outputs(top, last)
        masks = tuple((self.prefix + local, spec.mask) for local, spec in self.model.input_specs.items() if spec.mask)
        return Graph(self.spec.name, inputs, tuple(self.nodes), outputs, tuple(self.groups), masks=masks)

    def _inputs(self) -> tuple[tuple[str, TensorType], ...]:
        single = self.model.inputs is None
        inputs = []
        for local, spec in self.model.input_specs.items():
            name = self.prefix + local
            where = self.at + (("input", "shape") if single else ("inputs", local, "shape"))
            vocab = tuple(spec.vocab) if isinstance(spec.vocab, list) else spec.vocab
            kind = TensorType(tuple(spec.shape), spec.dtype, vocab)
            if kind.numel > MAX_ELEMENTS:  # each dimension is in range, their product may not be
                raise SpecShapeError(f"{'.'.join(where)} {format_shape(kind.shape)} has {kind.numel:,} values per "
                                     f"example, more than {MAX_ELEMENTS:,}", self.locate(where))
            self.types[name] = kind
            inputs.append((name, kind))
        return tuple(inputs)

    def _outputs(self, top: Scope, last: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        given = self.model.outputs
        if given is None:
            if len(last) != 1:
                raise SpecSchemaError("the model's last layer is dropped and stands for several values; name the "
                                      "outputs (outputs: [a, b])", self.locate(self.at + ("model",)))
            return ((self.prefix + top.names[-1] if top.names else last[0], last[0]),)
        pairs = given.items() if isinstance(given, dict) else ((name, name) for name in given)
        outputs = []
        for index, (out, ref) in enumerate(pairs):
            where = self.at + (("outputs", out) if isinstance(given, dict) else ("outputs", index))
            outputs.append((self.prefix + out, self.lookup(top, ref, len(top.layers), where, f"output {out}")[0]))
        return tuple(outputs)

    # a list of items ------------------------------------------------------
    def layers(self, scope: Scope, first: tuple[str, ...]) -> tuple[str, ...]:
        """Expands ``scope``'s items in order; returns the value(s) of the last (``first`` if all are dropped)."""
        scope.names = _local_names(scope, self.locate)
        previous = first
        for index, layer in enumerate(scope.layers):
            at = scope.path + (index,)
            key = at + (layer.op,) if layer.keyed else at
            local = scope.names[index]
            reads = previous if layer.inputs is None else self._reads(scope, layer, index, key)
            if not self._keep(scope, layer, key):
                scope.values[local], previous = reads, reads
                scope.dropped.add(local)
                continue
            name = scope.prefix + local
            if layer.kind == SEQUENTIAL:
                value = self._sequential(scope, layer, index, key, name, reads)
            elif layer.kind == "block":
                value = self._block_use(scope, layer, key, name, reads)
            else:
                value = self._op(scope, layer, key, name, reads)
            scope.values[local], previous = value, value
        return previous

    def _reads(self, scope: Scope, layer: LayerSpec, index: int, key: tuple) -> tuple[str, ...]:
        reads = []
        for j, ref in enumerate(layer.inputs):
            reads += self.lookup(scope, ref, index, key + ("inputs", j), f"{scope.prefix}{scope.names[index]}")
        return tuple(reads)

    def lookup(self, scope: Scope, ref: str, index: int, where: tuple, reader: str) -> tuple[str, ...]:
        """The value ``ref`` names, seen from item ``index`` of ``scope``: nearest scope first, then outward."""
        try:
            base, key = split_ref(ref)
        except ValueError as err:
            raise SpecSchemaError(str(err), self.locate(where)) from None
        s, position = scope, index
        while s is not None:
            if base in s.values:
                return self._indexed(self._single(s, base, where), ref, key, where)
            if base in s.names:
                raise SpecSchemaError(_later_message(s, base, position, reader, self.locate), self.locate(where))
            s, position = s.parent, s.position
        raise SpecSchemaError(_undefined_message(scope, base, reader), self.locate(where))

    def _indexed(self, value: tuple[str], ref: str, key: str, where: tuple) -> tuple[str]:
        """``value``'s output ``key`` (an index, or the op's name for it) as ``node[k]``; k = 0 is the value itself."""
        if not key:
            return value
        node = next((n for n in reversed(self.nodes) if n.name == value[0]), None)
        k = _output_index(node, value[0], ref, key)
        if isinstance(k, str):
            raise SpecSchemaError(k, self.locate(where))
        return value if k == 0 else (f"{value[0]}[{k}]",)

    def _single(self, scope: Scope, ref: str, where: tuple) -> tuple[str, ...]:
        value = scope.values[ref]
        if len(value) != 1:
            raise SpecSchemaError(f"'{ref}' is dropped (if: false) and reads {len(value)} values, so it stands for "
                                  "no single value", self.locate(where))
        return value

    def _keep(self, scope: Scope, layer: LayerSpec, key: tuple) -> bool:
        if layer.when is None or isinstance(layer.when, bool):
            return layer.when is not False
        value = self._evaluate(layer.when, scope, key + ("if",))
        if not isinstance(value, bool):
            raise SpecSchemaError(f"if: {layer.when} gives {value!r}, not true or false", self.locate(key + ("if",)))
        return value

    def _evaluate(self, text: str, scope: Scope, where: tuple):
        try:
            return evaluate(text, scope.env)
        except ExprError as err:
            raise SpecSchemaError(str(err), self.locate(where)) from None

    def _substitute(self, value, scope: Scope, where: tuple):
        """``value`` with its ``${...}`` strings evaluated, errors located at the string."""
        if isinstance(value, dict):
            return {k: self._substitute(v, scope, where + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._substitute(v, scope, where + (i,)) for i, v in enumerate(value)]
        return self._evaluate(value, scope, where) if is_expression(value) else value

    # the three kinds of item ----------------------------------------------
    def _op(self, scope: Scope, layer: LayerSpec, key: tuple, name: str, reads: tuple[str, ...]) -> tuple[str]:
        op = OPS[layer.op]
        params = layer.params or self._params(scope, layer, key)
        problem = op.arity_error(len(reads))
        if problem:
            raise SpecSchemaError(f"{name} ({layer.op}): {problem} ({_listing(reads)}); name them with inputs: [...]",
                                  self.locate(key + ("inputs",) if layer.inputs else key))
        types = [self.types[r] for r in reads]
        if op.id_bound:
            self._check_ids(layer, key, name, reads)
        try:
            params, output = op.infer(params, *types)
            output, *more = output if isinstance(output, tuple) else (output,)
        except ShapeError as err:
            given = layer.params.model_fields_set if layer.params else set(layer.args)
            at = key + (err.param,) if err.param and err.param in given else key
            context = _merge_context(scope, layer, reads, types) if len(reads) > 1 else ""
            raise SpecShapeError(f"{name} ({layer.op}): {err}{context}", self.locate(at)) from None
        init = self._inits(scope, layer, key, name, params)
        return (self._add(Node(name, layer.op, params, reads, output, path=key, more=tuple(more), init=init), key),)

    def _check_ids(self, layer: LayerSpec, key: tuple, name: str, reads: tuple[str, ...]) -> None:
        """A table reads ids from the model's inputs, moved at most: ids computed by ``add`` or ``multiply`` have a
        range dslc cannot bound, and outside the table torch raises where JAX clamps them to its last row."""
        computed = next(filter(None, map(self._computing, reads)), None)
        if computed is not None:
            raise SpecShapeError(f"{name} ({layer.op}) reads ids computed by {computed.name} ({computed.op}), whose "
                                 f"range is unknown: torch raises on an id outside the table and JAX clamps it; "
                                 f"read ids from an input (layers that only move them, as reshape, select or "
                                 f"concat, keep them)", self.locate(key))

    def _computing(self, value: str) -> Node | None:
        """The node upstream of integer ``value`` (through value-moving nodes) that computed it, or None."""
        if self.types[value].is_float:
            return None
        node = next((n for n in self.nodes if n.name == split_index(value)[0]), None)
        if node is None or not OPS[node.op].moves_values:
            return node
        return next(filter(None, map(self._computing, node.inputs)), None)

    def _params(self, scope: Scope, layer: LayerSpec, key: tuple):
        args = self._substitute(dict(layer.args), scope, key)
        return self._validated(key, validate_params, OPS[layer.op].params, args, (), layer.op)

    def _validated(self, key: tuple, parse, *args):
        """``parse(*args)``, a pydantic error re-raised as a ``SpecSchemaError`` located under ``key``."""
        try:
            return parse(*args)
        except PydanticCustomError as err:
            ctx = err.context or {}
            raise SpecSchemaError(ctx.get("message", str(err)), self.locate(key + tuple(ctx.get("subpath", ())),
                                                                             key=ctx.get("at_key", False))) from None

    def _inits(self, scope: Scope, layer: LayerSpec, key: tuple, name: str, params) -> tuple:
        """The layer's initializers: its op's defaults (the model's ``init:``), then its own ``init:``."""
        where = key + ("init",)
        specs = layer.init if layer.init_args is None else self._validated(
            where, parse_weight_inits, self._substitute(layer.init_args, scope, where), layer.op)
        given = {w: (spec, where + (w,)) for w, spec in (specs or {}).items()}
        try:
            return resolve_inits(layer.op, OPS[layer.op].weights(params), self.inits.get(layer.op, {}), given, name)
        except InitError as err:
            raise SpecSchemaError(str(err), self.locate(err.where, key=err.at_key)) from None

    def _add(self, node: Node, key: tuple) -> str:
        if node.output.numel > MAX_ELEMENTS:
            raise SpecShapeError(f"{node.name} ({node.op}) outputs {format_shape(node.output.shape)}, "
                                 f"more than {MAX_ELEMENTS:,} values per example", self.locate(key))
        self.parameters += node.num_parameters
        if self.parameters > MAX_PARAMETERS:
            raise SpecShapeError(f"{node.name} ({node.op}) brings the model to {self.parameters:,} parameters, more "
                                 f"than the limit of {MAX_PARAMETERS:,}", self.locate(key))
        if len(self.nodes) >= MAX_NODES:
            raise SpecShapeError(f"the model expands to more than {MAX_NODES:,} layers", self.locate(key))
        self.nodes.append(node)
        self.types.update(zip(node.value_names, (node.output, *node.more)))
        return node.name

    def _sequential(self, scope: Scope, layer: LayerSpec, index: int, key: tuple, name: str, reads) -> tuple:
        self.groups.append(Group(name, SEQUENTIAL))
        child = Scope(name + ".", SEQUENTIAL, layer.body, key + ("model",), scope, index, scope.env)
        return self.layers(child, reads)

    def _block_use(self, scope: Scope, layer: LayerSpec, key: tuple, name: str, reads) -> tuple:
        block = self.spec.blocks[layer.op]
        args = self._bind(scope, layer, block, key)
        if layer.repeat is None:
            return self._instance(layer, block, args, key, name, reads)
        count = self._repeat(scope, layer, key)
        self.groups.append(Group(name, "repeat", layer.op))
        out = reads
        for k in range(count):  # instance k reads the one before it; a mask or memory input stays as given
            out = self._instance(layer, block, args, key, f"{name}.{k}", out[:1] + tuple(reads[1:]), k)
        return out

    def _repeat(self, scope: Scope, layer: LayerSpec, key: tuple) -> int:
        count = layer.repeat
        if is_expression(count):
            count = self._evaluate(count, scope, key + ("repeat",))
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise SpecSchemaError(f"repeat of {layer.op} must be at least 1; {layer.repeat} gives {count!r}",
                                  self.locate(key + ("repeat",)))
        return count

    def _bind(self, scope: Scope, layer: LayerSpec, block: BlockSpec, key: tuple) -> dict:
        """The block's arguments for this use: given ones evaluated where the use is, then defaults."""
        for arg in layer.args:
            if arg not in block.args:
                valid = ", ".join(block.args) or "none"
                raise SpecSchemaError(f"block {layer.op} has no argument '{arg}'{did_you_mean(arg, block.args)}; "
                                      f"its arguments: {valid}", self.locate(key + (arg,), key=True))
        bound = {}
        for arg, default in block.args.items():
            if arg in layer.args:
                bound[arg] = self._substitute(layer.args[arg], scope, key + (arg,))
            elif default is None:
                raise SpecSchemaError(f"block {layer.op} needs argument '{arg}' (it has no default)",
                                      self.locate(key, key=layer.keyed))
            else:
                bound[arg] = default
        return bound

    def _instance(self, layer: LayerSpec, block: BlockSpec, args: dict, key: tuple, name: str, reads,
                  index: int | None = None) -> tuple[str, ...]:
        if len(reads) != len(block.inputs):
            raise SpecSchemaError(f"{name}: block {layer.op} takes {len(block.inputs)} input"
                                  f"{'s' * (len(block.inputs) > 1)} ({', '.join(block.inputs)}), got {len(reads)} "
                                  f"({_listing(reads)})", self.locate(key + ("inputs",) if layer.inputs else key))
        self.groups.append(Group(name, "block", layer.op, index))
        path = ("blocks", layer.op, "model")
        scope = Scope(name + ".", "block", tuple(block.model), path, env=args,
                      values={i: (r,) for i, r in zip(block.inputs, reads)})
        try:
            last = self.layers(scope, reads)
            if block.output is None:
                return last
            return self.lookup(scope, block.output, len(block.model), ("blocks", layer.op, "output"), name)
        except SpecError as err:
            use = self.locate(key)
            raise type(err)(f"{err.message} (in {name}: block {layer.op} used at line {use.line})",
                            err.location) from None


def _op_defaults(spec: Spec, model: ModelSpec, at: tuple) -> dict[str, Chosen]:
    """Initializers by op for one model: the spec's top-level ``init:``, then (``models:``) the model's own."""
    tables = [(("init",), spec.init)] + ([(at + ("init",), model.init)] if at else [])
    found: dict[str, dict] = {}
    for where, table in tables:
        for op, weights in table.items():
            found.setdefault(op, {}).update({w: (init, where + (op, w)) for w, init in weights.items()})
    return found


def _listing(reads: tuple[str, ...]) -> str:
    return "reads " + (", ".join(reads) if reads else "nothing")


def _merge_context(scope: Scope, layer: LayerSpec, reads: tuple[str, ...], types: list[TensorType]) -> str:
    """'; its inputs: a [N, 8], b [N, 4]', and which of them stand for a dropped layer's input."""
    parts = [f"{r} {format_shape(t.shape)}" for r, t in zip(reads, types)]
    dropped = [ref for ref in (layer.inputs or ()) if ref in scope.dropped]
    notes = "".join(f"; {ref} is dropped by its if:, so it stands for its input {scope.values[ref][0]}"
                    for ref in dropped if len(scope.values[ref]) == 1)
    return f"; its inputs: {', '.join(parts)}{notes}"


def _local_names(scope: Scope, locate) -> list[str]:
    """Each item's name in its scope: given, ``{op}_{k}`` (model and block bodies) or its position (sequential)."""
    layers = scope.layers
    given = Counter(layer.name for layer in layers if layer.name)
    first: dict[str, int] = {}
    seen: Counter[str] = Counter()
    names = []
    for index, layer in enumerate(layers):
        seen[layer.op] += 1
        if layer.name in first:  # reported at the repeat, as a compiler reports a redefinition
            earlier = locate(scope.path + (first[layer.name], layers[first[layer.name]].op, "name"), key=True)
            raise SpecSchemaError(f"layer name '{layer.name}' is used more than once (first at line {earlier.line})",
                                  locate(scope.path + (index, layer.op, "name")))
        if layer.name in scope.values:
            raise SpecSchemaError(f"layer name '{layer.name}' is also the name of an input; rename the layer",
                                  locate(scope.path + (index, layer.op, "name")))
        if layer.name:
            first[layer.name] = index
        automatic = str(index) if scope.kind == SEQUENTIAL else f"{layer.op}_{seen[layer.op]}"
        if not layer.name and automatic in given:
            raise SpecSchemaError(f"'{automatic}' is both a layer's name and the automatic name of "
                                  f"{layer.op} layer {seen[layer.op]}; rename one or name both",
                                  locate(scope.path + (index,)))
        names.append(layer.name or automatic)
    return names


def _later_message(scope: Scope, ref: str, position: int, reader: str, locate) -> str:
    index = scope.names.index(ref)
    line = locate(scope.path + (index,)).line
    if index == position:
        return f"{reader} reads '{ref}', the item it is part of (a cycle); a layer reads only what comes before it"
    cycle = _cycle(scope, index, scope.names[position])
    if cycle:
        return f"cycle: {' -> '.join(cycle)} (line {line}); a layer reads only what comes before it"
    return (f"{reader} reads '{ref}', which is defined later (line {line}); a layer reads only the layers before "
            "it, its block's inputs and the model's inputs")


def _cycle(scope: Scope, start: int, target: str) -> list[str] | None:
    """Names from item ``start`` back to ``target`` through the later items' declared inputs, if they lead there."""
    path, index, seen = [target, scope.names[start]], start, set()
    while index not in seen:
        seen.add(index)
        layer = scope.layers[index]
        reads = layer.inputs if layer.inputs is not None else ((scope.names[index - 1],) if index else ())
        if target in reads:
            return path + [target]
        later = [r for r in reads if r in scope.names and scope.names.index(r) > start]
        if not later:
            return None
        index = scope.names.index(later[0])
        path.append(later[0])
    return None


def _undefined_message(scope: Scope, ref: str, reader: str) -> str:
    visible, s = [], scope
    while s is not None:
        visible += [n for n in s.values if n not in visible]
        s = s.parent
    where = "in its block" if _in_block(scope) else "here"
    return (f"{reader} reads '{ref}', which is not defined{did_you_mean(ref, visible)}; names defined {where} "
            f"before it: {', '.join(visible) or 'none'}")


def _output_index(node: Node | None, value: str, ref: str, key: str) -> int | str:
    """The index ``ref``'s ``[key]`` picks among ``node``'s outputs, or why it picks none (the message)."""
    count = 1 + len(node.more) if node else 1
    if count == 1:
        what = f"{node.name} ({node.op})" if node else f"{value} (a model input)"
        return f"'{ref}': {what} has one value; [k] picks an output of a layer with several (chunk, lstm)"
    op = OPS[node.op]
    k = op.output_index(key)
    if k is not None and k < count:
        return k
    indices = ", ".join(f"{value}[{i}]" for i in range(count))
    if k is not None:
        named = f": {', '.join(op.outputs)}" if op.outputs else ""
        return f"'{ref}': {node.name} ({node.op}) has {count} outputs ({indices}){named}"
    if not op.outputs:
        return f"'{ref}': {node.name} ({node.op}) numbers its outputs, it does not name them: {indices}"
    return (f"'{ref}': {node.name} ({node.op}) has no output '{key}'{did_you_mean(key, op.outputs)}; its outputs "
            f"are {', '.join(op.outputs)} ({indices})")


def _in_block(scope: Scope) -> bool:
    while scope.parent is not None:
        scope = scope.parent
    return scope.kind == "block"


def _check_recursion(spec: Spec, locate) -> None:
    """Blocks may use blocks, never themselves (directly or through others), whatever their ``if:`` say."""
    uses = {name: list(_uses(block.model, ("blocks", name, "model"))) for name, block in spec.blocks.items()}

    def visit(name: str, chain: list[str]) -> None:
        for used, where in uses[name]:
            if used in chain:
                loop = " -> ".join(chain[chain.index(used):] + [used])
                raise SpecSchemaError(f"block {used} uses itself ({loop}); blocks may not recurse",
                                      locate(where, key=True))
            visit(used, chain + [used])

    for name in spec.blocks:
        visit(name, [name])


def _uses(layers, path: tuple):
    """(block name, YAML path of the use) for every block use in ``layers``, sequentials included."""
    for index, layer in enumerate(layers):
        key = path + (index, layer.op)
        if layer.kind == "block":
            yield layer.op, key
        elif layer.kind == SEQUENTIAL:
            yield from _uses(layer.body, key + ("model",))
