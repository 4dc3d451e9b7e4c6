"""A generated spec held as items, and its YAML text with the line of every item, key and section.

The fuzz tests write the YAML themselves, one layer per line (its arguments in flow
style), so that a mutation knows the line its error must point at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

Path = tuple
"""Where an item or key sits: ``("model", 2)``, ``("blocks", "b0", "model", 0)``, ``("train", "loss")``."""


@dataclass
class Item:
    """One item of a ``model:`` list: an op layer, a ``sequential`` group (``body``) or a block use."""

    op: str
    args: dict = field(default_factory=dict)
    name: str | None = None
    inputs: list[str] | None = None
    when: bool | None = None
    repeat: int | None = None
    init: dict | None = None
    body: list[Item] | None = None
    reads: tuple | None = None  # an op layer's input types (not written): what a mutation's shape rule checks
    ref: str | None = None  # the name it has in its list, given or automatic (not written)
    ranks: dict | None = None  # an op layer's trainable weights and their ranks (not written)

    def keys(self) -> dict:
        """What the item's mapping holds, in the order written: arguments, then the control keys."""
        keys = dict(self.args)
        for key, value in (("init", self.init), ("name", self.name), ("inputs", self.inputs), ("if", self.when),
                           ("repeat", self.repeat)):
            if value is not None:
                keys[key] = value
        return keys


@dataclass
class Block:
    args: dict
    model: list[Item]


@dataclass
class GenSpec:
    """A spec as the generator built it; ``train`` and ``inputs`` are plain mappings as written."""

    name: str
    inputs: dict[str, dict]
    model: list[Item]
    train: dict
    blocks: dict[str, Block] = field(default_factory=dict)
    outputs: dict[str, str] | None = None
    init: dict | None = None
    single_input: bool = True
    extra: dict = field(default_factory=dict)  # top-level keys a mutation adds, written last


@dataclass(frozen=True)
class Place:
    """An item of the spec: its path as ``spec.write`` numbers lines, the item, and the list it sits in."""

    path: tuple
    item: Item
    siblings: list


def places(spec: GenSpec) -> list[Place]:
    """Every item: the model's, each sequential's and each block body's."""
    found = []

    def walk(items: list[Item], path: tuple) -> None:
        for index, item in enumerate(items):
            found.append(Place(path + (index,), item, items))
            if item.body is not None:
                walk(item.body, path + (index, "model"))

    walk(spec.model, ("model",))
    for name, block in spec.blocks.items():
        walk(block.model, ("blocks", name, "model"))
    return found


def flow(value) -> str:
    """``value`` in YAML flow style: JSON, whose strings, numbers, lists and mappings YAML 1.2 reads alike; keys
    and op names that are identifiers are written plain."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return json.dumps(value)


def _key(key) -> str:
    return key if isinstance(key, str) and key.isidentifier() else json.dumps(key)


class Writer:
    """Lines of YAML and the 1-based line each path starts on."""

    def __init__(self):
        self.lines: list[str] = []
        self.at: dict[Path, int] = {}

    def put(self, path: Path, text: str) -> None:
        self.at[path] = len(self.lines) + 1
        self.lines.append(text)

    def items(self, items: list[Item], path: Path, indent: int) -> None:
        pad = " " * indent
        for index, item in enumerate(items):
            where = path + (index,)
            if item.body is None:
                keys = item.keys()
                self.put(where, f"{pad}- {item.op}: {flow(keys)}" if keys else f"{pad}- {item.op}")
                continue
            self.put(where, f"{pad}- {item.op}:")
            for key, value in item.keys().items():
                self.put(where + (key,), f"{pad}    {key}: {flow(value)}")
            self.put(where + ("model",), f"{pad}    model:")
            self.items(item.body, where + ("model",), indent + 6)


def write(spec: GenSpec) -> tuple[str, dict[Path, int]]:
    """The spec's YAML text, and the line of each item and section."""
    out = Writer()
    out.put(("name",), f"name: {spec.name}")
    if spec.single_input:
        out.put(("input",), f"input: {flow(next(iter(spec.inputs.values())))}")
    else:
        out.put(("inputs",), "inputs:")
        for name, kind in spec.inputs.items():
            out.put(("inputs", name), f"  {name}: {flow(kind)}")
    if spec.blocks:
        out.put(("blocks",), "blocks:")
        for name, block in spec.blocks.items():
            out.put(("blocks", name), f"  {name}:")
            if block.args:
                out.put(("blocks", name, "args"), f"    args: {flow(block.args)}")
            out.put(("blocks", name, "model"), "    model:")
            out.items(block.model, ("blocks", name, "model"), 6)
    if spec.init:
        out.put(("init",), f"init: {flow(spec.init)}")
    out.put(("model",), "model:")
    out.items(spec.model, ("model",), 2)
    if spec.outputs:
        out.put(("outputs",), f"outputs: {flow(spec.outputs)}")
    out.put(("train",), "train:")
    for key, value in spec.train.items():
        out.put(("train", key), f"  {key}: {flow(value)}")
    for key, value in spec.extra.items():
        out.put((key,), f"{_key(key)}: {flow(value)}")
    return "\n".join(out.lines) + "\n", out.at
