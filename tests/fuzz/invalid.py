"""Hypothesis strategies that break a valid generated spec in one place, and know the line the error must name.

Each mutation makes one mistake a person makes: a typo in an op, a key or a section,
a value of the wrong type or out of range, a layer whose shape rule refuses its input,
a reference to a name that is not there (or comes later), a name used twice, a broken
block use, and YAML that does not parse (a tab, a repeated key). Where the mistake is
certain and sits on one line, ``Broken.line`` is that line; text mutations whose
outcome cannot be known (a character inserted or deleted anywhere) are ``Broken`` with
``certain=False``: such a spec may still be valid, but it must never raise a traceback.
"""

from __future__ import annotations

import copy
import string
from dataclasses import dataclass

from hypothesis import reject
from hypothesis import strategies as st
from pydantic import ValidationError

from dsl import METRICS
from dsl.initializers import INITIALIZERS
from dsl.layers import CONTROL_KEYS
from dsl.ops import OPS, ShapeError
from dsl.schema import Spec

from .draws import pick
from .spec import GenSpec, Item, Place, places, write
from .valid import valid_specs


@dataclass(frozen=True)
class Broken:
    """A spec with one mistake: its text, what was done, the line its error must point at (None: any line), and
    whether it is certainly invalid."""

    text: str
    kind: str
    line: int | None = None
    certain: bool = True


def typo(draw, word: str, avoid) -> str:
    """``word`` with one letter deleted, doubled, swapped or changed, not in ``avoid`` and not ``word``."""
    letters = string.ascii_lowercase
    for _ in range(5):
        i = draw(st.integers(0, max(len(word) - 1, 0)))
        kind = draw(st.integers(0, 3))
        if kind == 0 and len(word) > 1:
            candidate = word[:i] + word[i + 1:]
        elif kind == 1:
            candidate = word[:i] + word[i] + word[i:]
        elif kind == 2 and i + 1 < len(word):
            candidate = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        else:
            candidate = word[:i] + pick(draw, letters) + word[i + 1:]
        if candidate and candidate != word and candidate not in avoid and candidate.isidentifier():
            return candidate
    return word + "_x" if word + "_x" not in avoid else "zzz_unknown"


def _refuses(op: str, args: dict, reads) -> bool:
    """The op's own schema or shape rule refuses ``args`` on inputs of types ``reads``."""
    try:
        params = OPS[op].params.model_validate(args)
        OPS[op].infer(params, *reads)
    except (ValidationError, ShapeError):
        return True
    return False


def _plain(item: Item) -> bool:
    """An op layer whose arguments hold no ``${...}`` and which is not dropped (its shape rule runs)."""
    return item.op in OPS and item.when is not False and item.reads is not None and not any(
        isinstance(v, str) and "${" in v for v in item.args.values())


# --- mutations of one item: each returns the path of the line the error must name ---

def unknown_op(draw, spec: GenSpec, place: Place) -> tuple:
    place.item.op = typo(draw, place.item.op, {*OPS, *spec.blocks, "sequential"})
    return place.path


def unknown_key(draw, spec: GenSpec, place: Place) -> tuple:
    item = place.item
    if item.op not in OPS or item.body is not None:
        reject()
    known = {*OPS[item.op].params.model_fields, *CONTROL_KEYS, "init"}
    item.args[typo(draw, pick(draw, sorted(OPS[item.op].params.model_fields) or ["name"]), known)] = 1
    return place.path


WRONG_VALUES = ("abc", [1, 2, 3, 4, 5], {"a": 1}, True, 2.5, None, -1, 0, -7, 2**40, 1.5, -0.5, [], "same")
"""Values a mutation tries in place of an argument, wrong in type or range for most."""


def bad_value(draw, spec: GenSpec, place: Place) -> tuple:
    """An argument given a value the op's schema or shape rule refuses."""
    item = place.item
    if not _plain(item) or not item.args:
        reject()
    key = pick(draw, sorted(item.args))
    for value in draw(st.permutations(WRONG_VALUES)):
        if _refuses(item.op, {**item.args, key: value}, item.reads):
            item.args[key] = value
            return place.path
    reject()


def shape_mismatch(draw, spec: GenSpec, place: Place) -> tuple:
    """The layer replaced by an example of another op (same number of inputs) whose shape rule refuses them."""
    item = place.item
    if not _plain(item):
        reject()
    refused = [(name, dict(e.params)) for name, op in OPS.items() for e in op.examples
               if len(e.inputs) == len(item.reads) and _refuses(name, dict(e.params), item.reads)
               and not _refuses(name, dict(e.params), e.types())]
    if not refused:
        reject()
    item.op, item.args = pick(draw, refused)
    item.init = None
    return place.path


def dangling_ref(draw, spec: GenSpec, place: Place) -> tuple:
    """``inputs:`` naming something not defined: a typo of a name, or a word."""
    item = place.item
    names = [i.name for p in places(spec) for i in [p.item] if i.name] + list(spec.inputs) + ["input"]
    target = pick(draw, item.inputs) if item.inputs else pick(draw, names)
    wrong = typo(draw, target.split("[")[0], set(names) | {p.item.op for p in places(spec)})
    item.inputs = [wrong] + list(item.inputs or [])[1:]
    return place.path + ("inputs",) if item.body is not None else place.path


def later_ref(draw, spec: GenSpec, place: Place) -> tuple:
    """``inputs:`` naming an item that comes later in the same list."""
    index = place.siblings.index(place.item)
    later = [i.name for i in place.siblings[index + 1:] if i.name]
    if not later:
        reject()
    place.item.inputs = [pick(draw, later)]
    return place.path + ("inputs",) if place.item.body is not None else place.path


def duplicate_name(draw, spec: GenSpec, place: Place) -> tuple:
    """The item named as an earlier item of its list, or (at the model's top level) as a model input, or with a
    name that is no identifier."""
    index = place.siblings.index(place.item)
    earlier = [i.name for i in place.siblings[:index] if i.name]
    top = len(place.path) == 2 and place.path[0] == "model"  # a sequential's layers are named within it
    choices = earlier + ["input", "1st", "a-b", "x y"] + (list(spec.inputs) if top else [])
    place.item.name = pick(draw, choices)
    return place.path + ("name",) if place.item.body is not None else place.path


def bad_control(draw, spec: GenSpec, place: Place) -> tuple:
    """``if:`` that is no boolean or expression, ``repeat:`` out of range or on an op, ``inputs:`` not a list."""
    item = place.item
    key, value = pick(draw, [("when", "maybe"), ("when", 1), ("repeat", 0), ("repeat", "two"), ("repeat", 2),
                             ("inputs", "x"), ("inputs", [])])
    if key == "repeat" and value == 2 and item.op not in OPS:
        reject()  # a block use may repeat
    setattr(item, key, value)
    written = {"when": "if"}.get(key, key)
    return place.path + (written,) if item.body is not None else place.path


def bad_block_use(draw, spec: GenSpec, place: Place) -> tuple:
    """A block use with an argument the block does not have, or without one it requires."""
    item = place.item
    if item.op not in spec.blocks:
        reject()
    required = [a for a, default in spec.blocks[item.op].args.items() if default is None]
    if required and draw(st.booleans()):
        item.args.pop(required[0], None)
    else:
        item.args[typo(draw, "a", set(spec.blocks[item.op].args))] = 1
    return place.path


def bad_init(draw, spec: GenSpec, place: Place) -> tuple:
    """``init:`` naming a weight the layer lacks, or an initializer that does not exist."""
    item = place.item
    if draw(st.booleans()):
        item.init = {typo(draw, "weight", {"weight", "bias", "in_proj_weight", "in_proj_bias"}): "zeros"}
    else:
        item.init = {"weight": typo(draw, "zeros", set(INITIALIZERS))}
    return place.path


def _applies(spec: GenSpec, place: Place, mutation) -> bool:
    """Whether ``mutation`` can break this item: an op layer's arguments, a block use's, a later sibling."""
    item = place.item
    if mutation in (unknown_key, bad_init):
        return item.op in OPS and item.body is None and "init" not in item.args and (
            mutation is unknown_key or _plain(item))
    if mutation in (bad_value, shape_mismatch):
        return _plain(item) and (mutation is shape_mismatch or bool(item.args))
    if mutation is later_ref:
        return any(i.name for i in place.siblings[place.siblings.index(item) + 1:])
    if mutation is bad_block_use:
        return item.op in spec.blocks
    return True


ITEM_MUTATIONS = (unknown_op, unknown_key, bad_value, shape_mismatch, dangling_ref, later_ref, duplicate_name,
                  bad_control, bad_block_use, bad_init)


# --- mutations of the other sections ---

def bad_train(draw, spec: GenSpec) -> tuple:
    """A typo in the loss, the optimizer or a metric, an out-of-range learning rate or batch size, an unknown key."""
    train = spec.train
    kind = pick(draw, ["loss", "optimizer", "lr", "batch_size", "metrics", "key"])
    if kind == "loss" and not isinstance(train["loss"], dict) or kind == "loss" and spec.outputs is None:
        train["loss"] = typo(draw, _name_of(train["loss"]), {"cross_entropy", "ctc", "mse", "bce_with_logits"})
    elif kind in ("loss", "optimizer"):
        name = _name_of(train["optimizer"])
        train["optimizer"] = {typo(draw, name, {"sgd", "adam", "adamw", "sparse_adam"}): {}}
        kind = "optimizer"
    elif kind == "lr":
        name = _name_of(train["optimizer"])
        train["optimizer"] = {name: {"lr": pick(draw, [-0.1, 0, "fast", None, [0.1]])}}
        kind = "optimizer"
    elif kind == "batch_size":
        train["batch_size"] = pick(draw, [0, -4, 2.5, "big", True])
    elif kind == "metrics":
        train["metrics"] = [pick(draw, ["acc", "accurracy", "f1", "top5", "AUC"])]
    else:
        key = typo(draw, pick(draw, ["epochs", "loss", "metrics", "optimizer"]), set(_train_keys()))
        train[key] = 1
        return ("train", key)
    return ("train", kind)


def _name_of(choice) -> str:
    return choice if isinstance(choice, str) else next(iter(choice))


def _train_keys() -> set[str]:
    from dsl.schema import TrainSpec

    return set(TrainSpec.model_fields)


def bad_input(draw, spec: GenSpec) -> tuple:
    """An input with a size that is not positive, an unknown dtype or key, or a vocab on floats."""
    name = pick(draw, sorted(spec.inputs))
    kind = spec.inputs[name]
    change = pick(draw, ["size", "dtype", "key", "vocab"])
    if change == "size":
        kind["shape"] = list(kind["shape"]) + [pick(draw, [0, -3, "a", 2.5])]
    elif change == "dtype":
        kind["dtype"] = pick(draw, ["float16", "int8", "long", "float"])
    elif change == "key":
        kind[typo(draw, "shape", {"shape", "dtype", "mask", "vocab"})] = [2]
    else:
        kind["dtype"], kind["vocab"] = "float32", 5
        kind.pop("mask", None)
    return ("input",) if spec.single_input else ("inputs", name)


def bad_top_key(draw, spec: GenSpec) -> tuple:
    key = typo(draw, pick(draw, ["train", "model", "blocks", "outputs", "description"]), set(Spec.model_fields))
    spec.extra[key] = {}
    return (key,)


def bad_output(draw, spec: GenSpec) -> tuple:
    """``outputs:`` naming a value that is not defined."""
    spec.outputs = {"out0": typo(draw, "nope", set())} | {k: v for k, v in (spec.outputs or {}).items()
                                                          if k != "out0"}
    if isinstance(spec.train.get("loss"), dict) or len(spec.outputs) > 1:
        spec.train["loss"] = {k: "mse" for k in spec.outputs}
    return ("outputs",)


def bad_metric(draw, spec: GenSpec) -> tuple:
    """A metric the (first) output's loss does not take: rmse for cross_entropy, accuracy for mse."""
    loss = spec.train["loss"]
    first = next(iter(loss.values())) if spec.outputs and isinstance(loss, dict) and set(loss) == set(
        spec.outputs) else loss
    name = _name_of(first)
    unfit = [m for m, d in METRICS.items() if name not in d.losses]
    if not unfit:
        reject()
    spec.train["metrics"] = [pick(draw, unfit)]
    return ("train", "metrics")


def unused_layer(draw, spec: GenSpec) -> tuple:
    """A layer with weights that no output depends on (outputs named, so the model's output stays put)."""
    last = spec.model[-1]
    spec.outputs = spec.outputs or {"output": last.ref}
    spec.model.append(Item("linear", {"out_features": 2}, "unused_q", [last.ref]))
    return ("model", len(spec.model) - 1)


def block_recursion(draw, spec: GenSpec) -> tuple:
    """A block whose body uses the block itself."""
    if not spec.blocks:
        reject()
    name = pick(draw, sorted(spec.blocks))
    body = spec.blocks[name].model
    body.append(Item(name, {a: 1 for a, default in spec.blocks[name].args.items() if default is None}))
    return ("blocks", name, "model", len(body) - 1)


SECTION_MUTATIONS = (bad_train, bad_input, bad_top_key, bad_output, bad_metric, unused_layer, block_recursion)


# --- mutations of the text ---

def text_mutation(draw, text: str, lines: dict) -> Broken:
    """A tab in an item's indentation, a key repeated in a flow mapping, a flow mapping left open, a Python tag,
    or (uncertain) a character inserted or deleted anywhere."""
    rows = text.split("\n")
    kind = pick(draw, ["tab", "duplicate_key", "unclosed", "tag", "insert", "delete"])
    items = sorted(line for path, line in lines.items() if path[0] == "model" and isinstance(path[-1], int))
    if kind == "tab" and items:
        line = pick(draw, items)
        rows[line - 1] = "\t" + rows[line - 1].lstrip(" ")
        return Broken("\n".join(rows), kind, line)
    flows = [line for line in items if ": {" in rows[line - 1] and rows[line - 1].endswith("}")]
    if kind == "duplicate_key" and flows:
        line = pick(draw, flows)
        row = rows[line - 1]
        key = row[row.index(": {") + 3:].split(":")[0]
        rows[line - 1] = row[:-1] + f", {key}: 1}}"
        return Broken("\n".join(rows), kind, line)
    if kind == "unclosed" and flows:
        line = pick(draw, flows)
        rows[line - 1] = rows[line - 1][:-1]
        return Broken("\n".join(rows), kind)
    if kind == "tag" and flows:
        line = pick(draw, flows)
        row = rows[line - 1]
        rows[line - 1] = row[:row.index(": {") + 2] + "!!python/object/apply:os.system [\"ls\"]"
        return Broken("\n".join(rows), kind, line)
    at = draw(st.integers(0, max(len(text) - 1, 0)))
    if kind == "delete":
        return Broken(text[:at] + text[at + 1:], kind, certain=False)
    char = pick(draw, list(":-[]{},#&*!|>'\"%@` \t\n") + list("az09") + ["\u00e9", "\x07", "\ufeff"])
    return Broken(text[:at] + char + text[at:], "insert", certain=False)


@st.composite
def invalid_specs(draw) -> Broken:
    """A valid spec broken in one place: an item, a section, or its text."""
    spec = copy.deepcopy(draw(valid_specs(max_items=4)))
    where = pick(draw, ["item"] * 6 + ["section"] * 2 + ["text"])
    if where == "text":
        return text_mutation(draw, *write(spec))
    if where == "section":
        mutation = pick(draw, SECTION_MUTATIONS)
        path = mutation(draw, spec)
    else:
        mutation = pick(draw, ITEM_MUTATIONS)
        fitting = [p for p in places(spec) if _applies(spec, p, mutation)]
        if not fitting:
            reject()
        path = mutation(draw, spec, pick(draw, fitting))
    text, lines = write(spec)
    return Broken(text, mutation.__name__, lines.get(path))
