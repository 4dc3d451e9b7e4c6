"""The typed graph every backend lowers: named nodes with inferred shapes, flat, in execution order.

**Values.** Every value is named: a model input by its name (``input``, or the keys
of ``inputs:``), a node's output by the node's name. A node lists the values it
reads (``Node.inputs``); ``Graph.outputs`` maps each output name to a value. A
value name is never reused, so a name is an edge.

**Names.** Node names are dotted paths, the canonical weight names' prefixes:
``conv1`` at the top, ``layer1.0.conv1`` for the ``conv1`` of the first item of
sequential ``layer1``. An unnamed layer is ``{op}_{k}`` at the top and inside a
block's body (k counts that op's items from 1 in file order: ``relu_2``), and its
position ``0, 1, ...`` inside a ``sequential`` (torch.nn.Sequential's numbering), so
names never depend on anything but the spec. The graph stays flat: passes, layout
planning and parity capture walk ``nodes``; the nesting is in the names and in
``groups`` (each sequential, block instance and repeat), which the backends use to
build nested torch modules and nested Flax scopes, and ``dslc summary`` to draw a
tree.

**Repeats.** ``repeat: N`` on a block use makes a ``repeat`` group ``name`` with N
``block`` groups ``name.0 .. name.N-1`` (``Group.index``); all N instances have the
same arguments, hence the same ops, parameters and shapes, node for node. That is
what a later JAX lowering needs to run them as one ``lax.scan`` over weights stacked
on a new leading axis (the nodes of instance k are those named ``name.k.*``), with
the canonical names still per instance.

**Several outputs per op.** An op may return several tensors (``chunk``; ``lstm``'s
``output``, ``h_n``, ``c_n``). Its node's ``output`` is the first one's type and ``more``
the others'; their values are named ``node[1]``, ``node[2]`` (``[`` cannot occur in
a layer name, so no value name changes), and ``node[0]`` is ``node``: a bare name
keeps meaning the first value. An op may also name its outputs (``OpDef.outputs``):
a reference then takes the name or the index, ``lstm_1[h_n]`` or ``lstm_1[1]``,
and the builder resolves a name to its index, so the graph holds only ``node[k]``
(one name per value; an unknown name is a located error listing the op's names).
``inputs: ["c[1]"]`` and ``outputs: {h: "lstm[h_n]"}`` address them (quoted inside
``[...]`` or ``{...}``: YAML's flow syntax reserves the brackets). The torch
lowering emits ``operator.getitem`` on the fx node, the JAX lowering indexes the
returned tuple.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .ops import OPS, Init, Weight
from .tensors import TensorType
from .types import Params

INPUT = "input"
MAX_ELEMENTS = 2**31  # per example and per tensor; more is refused as absurd
MAX_PARAMETERS = 2**32


def split_index(value: str) -> tuple[str, int]:
    """``'lstm[1]'`` -> ('lstm', 1); ``'lstm'`` -> ('lstm', 0): a value's name in the graph, index only."""
    base, key = split_ref(value)
    if key and not key.isdigit():
        raise ValueError(f"'{value}': the graph names values by index (lstm[1]), not by output name")
    return base, int(key or 0)


def split_ref(value: str) -> tuple[str, str]:
    """A reference as a spec writes it: ``'lstm[h_n]'`` -> ('lstm', 'h_n'), ``'lstm[1]'`` -> ('lstm', '1'),
    ``'lstm'`` -> ('lstm', ''). Raises ``ValueError`` when the part in [...] is neither an index nor a name."""
    if not value.endswith("]") or "[" not in value:
        return value, ""
    base, _, key = value[:-1].partition("[")
    if not (key.isdigit() or key.isidentifier()):
        raise ValueError(f"'{value}': the part in [...] must be an output's index or name (lstm[1], lstm[h_n])")
    return base, key


@dataclass(frozen=True)
class Node:
    """One layer: its op, resolved arguments, inputs (by name) and output type.

    ``hints`` are set by optimization passes (``dsl/passes.py``) to pick a faster
    lowering of the same function, e.g. ``blocks`` for a max-pool whose windows tile
    the input; lowerings that do not know a hint ignore it.
    """

    name: str
    op: str
    params: Params
    inputs: tuple[str, ...]
    output: TensorType
    hints: tuple[str, ...] = ()
    path: tuple = ()  # YAML path of the layer that made it (inside a block: the block's body), for messages
    more: tuple[TensorType, ...] = ()  # the types of values name[1], name[2], ... (an op with several outputs)
    init: tuple[tuple[str, Init], ...] = ()  # (weight suffix, init) where the spec's init: replaces the op's default

    @property
    def value_names(self) -> tuple[str, ...]:
        """The values this node makes: its name (the first), then ``name[1]``, ``name[2]``, ..."""
        return (self.name,) + tuple(f"{self.name}[{k}]" for k in range(1, len(self.more) + 1))

    @property
    def is_random(self) -> bool:
        """Draws random numbers when training: a stochastic op (per the catalog) off its deterministic arguments."""
        op = OPS[self.op]
        return op.stochastic and op.deterministic(self.params) != self.params

    @property
    def local_name(self) -> str:
        """The last component of the dotted name: the Flax submodule's name inside its entered scopes."""
        return self.name.rsplit(".", 1)[-1]

    @property
    def weights(self) -> dict[str, Weight]:
        """Canonical state-dict entries of this layer, keyed by suffix (``weight``, ``bias``), with ``init`` applied."""
        chosen = dict(self.init)
        weights = OPS[self.op].weights(self.params)
        return {k: replace(w, init=chosen[k]) if k in chosen else w for k, w in weights.items()}

    @property
    def num_parameters(self) -> int:
        return sum(TensorType(w.shape).numel for w in self.weights.values() if w.trainable)


@dataclass(frozen=True)
class Group:
    """A named level of nesting: a ``sequential``, a block instance, or a ``repeat`` of instances.

    ``block`` is the block's name (instances and repeats); ``index`` an instance's
    number inside its repeat (None otherwise).
    """

    name: str
    kind: str
    block: str = ""
    index: int | None = None


@dataclass(frozen=True)
class Graph:
    """A model: named inputs, nodes in execution order, named outputs, and the nesting of names."""

    name: str
    inputs: tuple[tuple[str, TensorType], ...]
    nodes: tuple[Node, ...]
    outputs: tuple[tuple[str, str], ...]  # (output name, value name), in order
    groups: tuple[Group, ...] = ()
    models: tuple[str, ...] = ()  # several models side by side (``models:``): their names, each a name prefix
    masks: tuple[tuple[str, str], ...] = ()  # (input name, 'keep' or 'ignore'): inputs declared as padding masks

    def submodel(self, model: str) -> Graph:
        """One model of several (its names keep their prefix); the graph itself for ``''``, the one model."""
        if not model:
            return self
        if model not in self.models:
            raise KeyError(model)
        prefix = model + "."
        return Graph(self.name, tuple(i for i in self.inputs if i[0].startswith(prefix)),
                     tuple(n for n in self.nodes if n.name.startswith(prefix)),
                     tuple(o for o in self.outputs if o[0].startswith(prefix)),
                     tuple(g for g in self.groups if g.name.startswith(prefix)),
                     masks=tuple(m for m in self.masks if m[0].startswith(prefix)))

    @property
    def model_names(self) -> tuple[str, ...]:
        """The models a target builds: ``('',)`` (the graph itself) for a one-model spec."""
        return self.models or ("",)

    @property
    def input_types(self) -> dict[str, TensorType]:
        return dict(self.inputs)

    def mask_of(self, name: str) -> str | None:
        """How a model input declared as a padding mask reads (``keep``: nonzero is a real token; ``ignore``:
        nonzero is padding), or None for other inputs."""
        return dict(self.masks).get(name)

    @property
    def output(self) -> str:
        """The value a one-output model returns (code written for one output keeps working)."""
        if len(self.outputs) != 1:
            raise ValueError(f"model '{self.name}' has {len(self.outputs)} outputs; read graph.outputs")
        return self.outputs[0][1]

    @property
    def output_type(self) -> TensorType:
        return self.value_type(self.output)

    def value_type(self, name: str) -> TensorType:
        """The type of a value: a model input's, a node's output, or ``node[k]``, its k-th."""
        if name in self.input_types:
            return self.input_types[name]
        base, index = split_index(name)
        node = self.node(base)
        return node.output if index == 0 else node.more[index - 1]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def unused(self) -> tuple[Node, ...]:
        """The nodes no output's values depend on: nothing reads them, directly or through other nodes, or only
        ops that read their shape (``OpDef.shape_only``)."""
        needed = {split_index(value)[0] for _, value in self.outputs}
        for node in reversed(self.nodes):
            if node.name in needed and not OPS[node.op].shape_only:
                needed |= {split_index(value)[0] for value in node.inputs}
        return tuple(node for node in self.nodes if node.name not in needed)

    def state_dict_spec(self) -> dict[str, Weight]:
        """Every canonical tensor (torch ``state_dict`` key -> shape and init), in order."""
        return {f"{n.name}.{suffix}": w for n in self.nodes for suffix, w in n.weights.items()}

    @property
    def num_parameters(self) -> int:
        return sum(n.num_parameters for n in self.nodes)


