"""``dslc predict``: arrays in, model outputs out, with training's input transform.

By default inputs are examples as the dataset stores them (digits: pixels 0..16,
MNIST: uint8 0..255) and go through the same transform as training
(``data/transform.py``); ``transformed=True`` feeds inputs that already had it.
A model with one input reads a ``.npy``; a model with several reads an ``.npz``
holding one array per named input (``numpy.savez('x.npz', input_ids=...,
attention_mask=...)``), each in its declared dtype: token ids within the tables that
read them, padding masks of 0 and 1.
Everything a user can get wrong (the file, its arrays, their dtypes, layouts and
values, the output path) is checked here before a framework is imported, and is one
``UsageError`` line.
"""

from __future__ import annotations

import io
import math
import warnings
import zipfile
from pathlib import Path

import numpy as np

from dsl import Graph, Spec, TensorType
from dsl.errors import UsageError
from dsl.objectives import resolve_objective
from dsl.tensors import format_shape

from .data.synthetic import id_high
from .data.transform import InputTransform, input_transform
from .target import make_target
from .weights import write_atomic

NPY_MAGIC = b"\x93NUMPY"


def read_array(path: Path) -> np.ndarray:
    """A ``.npy`` file's array; other files get a message saying what they are and what is expected."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--input {path}: " + ("is a folder" if path.is_dir() else "no such file")
                         + "; give a .npy file of examples")
    head = path.open("rb").read(6)
    if head != NPY_MAGIC:
        raise UsageError(f"--input {path} is not a .npy file (it starts with {head!r}); "
                         f"save your examples with numpy.save('x.npy', array)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise UsageError(f"--input {path} holds Python objects (a pickled object array); "
                             f"dslc reads numeric arrays only") from None
        raise UsageError(f"--input {path}: cannot read it as a .npy array ({err})") from None


def read_inputs(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """``--input``'s arrays by input name (``names``, the model's, in order): a ``.npy`` holds a one-input model's
    examples, an ``.npz`` one array per named input, no more and no fewer."""
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        return _read_npz(path, names)
    if len(names) > 1:
        raise UsageError(f"--input {path}: the model has {len(names)} inputs ({', '.join(names)}); give an .npz "
                         f"holding one array per input: {_savez_hint(names)}")
    return {names[0]: read_array(path)}


def _read_npz(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        held = list(archive.files)
        missing, extra = [n for n in names if n not in held], [k for k in held if k not in names]
        if missing or extra:
            problem = (f"has no array '{missing[0]}'" if missing else
                       f"holds '{extra[0]}', which is not an input of the model")
            raise UsageError(f"--input {path} {problem} (it holds {', '.join(held) or 'nothing'}; the model's "
                             f"input{'s are' if len(names) > 1 else ' is'} {', '.join(names)}): {_savez_hint(names)}")
        try:
            return {name: archive[name] for name in names}
        except ValueError:
            raise UsageError(f"--input {path} holds Python objects (a pickled object array); dslc reads numeric "
                             f"arrays only") from None


def _savez_hint(names: list[str]) -> str:
    return f"numpy.savez('x.npz', {', '.join(f'{n}=...' for n in names)})"


def _texts(spec: Spec, graph: Graph, path: Path, weights: Path) -> np.ndarray:
    """A ``.txt`` file, one text per line, as the ids of the model's input: tokenized as training tokenized,
    by the spec's tokenizer and the ``vocab.json`` saved next to the weights."""
    from .data.text import encode_texts
    from .data.text_files import read_lines

    if not (spec.data and spec.data.tokenizer):
        raise UsageError(f"--input {path} is text, but the spec declares no data.tokenizer to turn it into ids; "
                         f"give a .npy file of ids")
    if not Path(path).is_file():
        raise UsageError(f"--input {path}: no such file; give a .txt file of texts, one per line")
    return encode_texts(spec, graph, read_lines(path), Path(weights).parent)[graph.inputs[0][0]]


def check_output_path(path: Path, outputs: int = 1) -> None:
    """Refuses an output path that cannot be written, before anything is computed.

    One output is written as ``.npy``; several as one ``.npz`` archive by output name.
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"--output {path} is a folder; give a file name such as {path / 'outputs.npy'}")
    if outputs > 1 and path.suffix != ".npz":
        raise UsageError(f"--output {path}: the model has {outputs} outputs; give a .npz file, which holds one "
                         f"array per output by name")
    if not path.parent.is_dir():
        raise UsageError(f"--output {path}: the folder {path.parent} does not exist; create it first")


def write_array(path: Path, array: np.ndarray | dict[str, np.ndarray]) -> None:
    """Writes ``.npy`` data (or ``.npz``, arrays by name) to exactly ``path`` (numpy would append a suffix)."""
    buffer = io.BytesIO()
    if isinstance(array, dict):
        np.savez(buffer, **array)
    else:
        np.save(buffer, array, allow_pickle=False)
    write_atomic(path, buffer.getvalue())


def prepare_inputs(spec: Spec, graph: Graph, arrays: dict[str, np.ndarray], transformed: bool = False,
                   fed: str | None = None, model: str | None = None) -> tuple[tuple[np.ndarray, ...], bool]:
    """Each input checked (dtype, layout, values) and converted to its declared dtype; the one the dataset feeds
    (``fed``, a GAN's discriminator's, not its generator's noise) gets training's transform. ``arrays`` are by
    input name, local to the model (``z``, not ``generator.z``). Returns the batched arrays in the model's input
    order, and whether they were given as one example without the batch axis.
    """
    several = len(graph.inputs) > 1
    local = dict(zip((name for name, _ in graph.inputs), input_names(graph, model)))
    single = {np.shape(arrays[local[name]]) == kind.shape for name, kind in graph.inputs}
    if len(single) > 1:
        raise UsageError("some inputs are one example without the batch axis and some are batches; give every "
                         "input with the batch axis first")
    xs = tuple(_prepare(spec, graph, name, arrays[local[name]], transformed, name == fed,
                        f"{local[name]}: " if several else "") for name, _ in graph.inputs)
    counts = {local[name]: len(x) for (name, _), x in zip(graph.inputs, xs)}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{n} {k}" for n, k in counts.items())
        raise UsageError(f"the inputs hold different numbers of examples ({listed}); row i of each is example i")
    return xs, single.pop()


def _prepare(spec: Spec, graph: Graph, name: str, x: np.ndarray, transformed: bool, fed: bool,
             label: str) -> np.ndarray:
    """One input's array checked and converted (see ``prepare_inputs``); ``label`` prefixes its messages."""
    input_type, mask = graph.value_type(name), graph.mask_of(name)
    try:
        x = _batched(np.asarray(x), input_type)
        transform = None if transformed or not input_type.is_float or not fed else input_transform(spec)
        _check_dtype(x, input_type, transform, mask)
        _check_values(graph, name, x, mask)
    except UsageError as err:
        raise UsageError(f"{label}{err}") from None
    if transform is None:
        return x.astype(input_type.dtype)
    _check_stored_range(x, transform.scale, spec)
    return transform(x).astype(input_type.dtype)


def _check_values(graph: Graph, name: str, x: np.ndarray, mask: str | None) -> None:
    """No NaN; a padding mask holds 0 and 1 only; ids lie within every table that reads them (torch raises on
    others, XLA clamps them)."""
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise UsageError(f"the inputs hold {int((~np.isfinite(x)).sum())} NaN or infinite values")
    if mask is not None and not np.isin(x, (0, 1)).all():
        raise UsageError(f"the inputs are a padding mask ({mask}: nonzero marks "
                         f"{'a real token' if mask == 'keep' else 'padding'}) but hold values other than 0 and 1 "
                         f"({', '.join(map(str, np.setdiff1d(np.unique(x), (0, 1))[:3]))})")
    declared = graph.value_type(name).vocab is not None
    _check_ids(x, np.asarray(id_high(graph, name, math.inf)),
               "its declared vocab holds {} ids" if declared else "a table reading them has {} rows")


def _check_ids(x: np.ndarray, high: np.ndarray, bound: str) -> None:
    """Integer ids below ``high``: one bound, or one per field (the last axis); no check where unbounded. ``bound``
    says where the bound comes from, its ``{}`` the bound."""
    if x.dtype.kind not in "iu" or not x.size or not np.isfinite(high).all():
        return
    outside = (x < 0) | (x >= high)
    if not outside.any():
        return
    field = int(np.argwhere(outside)[0][-1]) if high.ndim else None
    ids, top, where = (x, int(high), "") if field is None else (x[..., field], int(high[field]), f" of field {field}")
    raise UsageError(f"the inputs hold ids{where} {ids.min()}..{ids.max()}, but {bound.format(top)}: "
                     f"ids{where} must lie in 0..{top - 1}")


def _batched(x: np.ndarray, input_type: TensorType) -> np.ndarray:
    shape = input_type.shape
    if x.shape == shape:
        return x[None]  # one example without the batch axis
    if x.ndim == len(shape) + 1 and x.shape[1:] == shape:
        if len(x) == 0:
            raise UsageError(f"the inputs hold no examples (shape {list(x.shape)})")
        return x
    raise UsageError(f"the inputs have shape {list(x.shape)}; the model takes {format_shape(shape)} "
                     f"(or one example {list(shape)}){_layout_hint(x.shape, shape)}")


def _layout_hint(got: tuple, want: tuple) -> str:
    if len(got) == len(want) + 1 and len(want) >= 2 and got[1:] == want[1:] + want[:1]:
        order = ", ".join(map(str, [0, len(want)] + list(range(1, len(want)))))
        return f"; these look channels-last: dslc takes channels first, x.transpose({order})"
    per_example = int(np.prod(want))
    if len(got) == 2 and got[1] == per_example:
        return f"; these look flattened: x.reshape(-1, {', '.join(map(str, want))})"
    if got[-len(want):] == want and len(got) > len(want) + 1:
        return f"; flatten the leading axes: x.reshape(-1, {', '.join(map(str, want))})"
    return ""


def _check_dtype(x: np.ndarray, input_type: TensorType, transform: InputTransform | None, mask: str | None) -> None:
    """Integers are stored pixels only where the dataset declares their range; else a float model wants floats.
    An int input takes integers (a mask bools too); a bool input bools, or integers 0 and 1."""
    if x.dtype.kind not in "biuf":
        raise UsageError(f"the inputs are {x.dtype}, not numbers; the model takes {input_type.dtype}")
    if input_type.dtype == "bool" and not (x.dtype.kind == "b" or x.dtype.kind in "iu" and np.isin(x, (0, 1)).all()):
        raise UsageError(f"the inputs are {x.dtype}; the model's input is bool (a mask): give bools, or integers 0 "
                         f"and 1")
    if not input_type.is_float and input_type.dtype != "bool" and x.dtype.kind not in ("iub" if mask else "iu"):
        raise UsageError(f"the inputs are {x.dtype}; the model's input is {input_type.dtype} (ids or indices)")
    if input_type.is_float and x.dtype.kind in "biu" and (transform is None or transform.scale is None):
        fix = ("drop --transformed to have the spec's transform applied" if transform is None
               else f"convert them, e.g. x.astype('{input_type.dtype}')")
        raise UsageError(f"the inputs are {x.dtype} but the model takes {input_type.dtype} and the spec declares "
                         f"no stored range to scale integers from; {fix}")


def _check_stored_range(x: np.ndarray, scale: float | None, spec: Spec) -> None:
    """Stored pixels lie in [0, scale]; values outside were most likely transformed already."""
    if scale is None or len(x) == 0:
        return
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > scale:
        raise UsageError(f"the inputs run {low:g}..{high:g} but {spec.data.dataset} stores values 0..{scale:g}; "
                         f"if they are already transformed (scaled and normalized), pass --transformed")
    if x.dtype.kind == "f" and high <= 1 and scale > 1:
        warnings.warn(f"the inputs lie within [0, 1] but {spec.data.dataset} stores values 0..{scale:g}, and "
                      f"predict divides them by {scale:g}; if they are scaled already, pass --transformed",
                      stacklevel=2)


def _dataset_input(spec: Spec, graph: Graph) -> str | None:
    """The model input the spec's dataset feeds (training's transform applies to it), if any."""
    if spec.train is not None:
        inputs = resolve_objective(spec, graph).inputs
        return inputs[0] if len(inputs) == 1 else None
    return graph.inputs[0][0] if len(graph.inputs) == 1 else None


def choose_model(graph: Graph, model: str | None) -> Graph:
    """The graph ``dslc predict`` runs: the one model, or ``--model``'s of several."""
    if graph.models and model is None:
        raise UsageError(f"this spec has {len(graph.models)} models ({', '.join(graph.models)}); choose the one to "
                         f"run with --model")
    if model is not None and model not in graph.models:
        have = f"its models are {', '.join(graph.models)}" if graph.models else "it has one model: leave --model out"
        raise UsageError(f"--model {model}: the spec has no model of that name; {have}")
    return graph.submodel(model or "")


def input_names(graph: Graph, model: str | None) -> list[str]:
    """The names ``--input``'s arrays go by: the model's inputs, without the ``--model`` prefix."""
    return [name.removeprefix(f"{model}.") if model else name for name, _ in graph.inputs]


def predict(spec: Spec, graph: Graph, target_name: str, state, x: np.ndarray | dict[str, np.ndarray], *,
            transformed: bool = False, batch_size: int = 1000, model: str | None = None,
            device: str = "auto") -> np.ndarray | dict[str, np.ndarray]:
    """Model outputs in evaluation mode: (N, *output shape), or one output for one example without a batch axis;
    a dict by output name for several outputs. ``x`` is the one input's array, or arrays by input name."""
    full, graph = graph, choose_model(graph, model)
    names = input_names(graph, model)
    if not isinstance(x, dict) and len(names) > 1:
        raise UsageError(f"the model has {len(names)} inputs ({', '.join(names)}); give a dict of arrays by name")
    arrays = x if isinstance(x, dict) else {names[0]: x}
    fed = _dataset_input(spec, full)
    inputs, single = prepare_inputs(spec, graph, arrays, transformed, fed, model)  # every check before an import
    target = make_target(target_name, graph, None, device=device)
    target.load_state({k: v for k, v in state.items() if k in graph.state_dict_spec()} if full.models else state)
    out = target.predict(inputs[0] if len(inputs) == 1 else inputs, batch_size)
    if isinstance(out, dict):
        return {k.removeprefix(f"{model}."): v[0] if single else v for k, v in out.items()}
    return out[0] if single else out


def predict_file(spec: Spec, graph: Graph, target_name: str, weights: Path, input_path: Path, output_path: Path, *,
                 transformed: bool = False, batch_size: int = 1000, model: str | None = None, device: str = "auto"):
    """``dslc predict``: every file checked before the model is built; returns what it wrote."""
    from .weights import load_weights

    chosen = choose_model(graph, model)
    check_output_path(output_path, len(chosen.outputs))
    x = _texts(spec, chosen, input_path, weights) if Path(input_path).suffix == ".txt" \
        else read_inputs(input_path, input_names(chosen, model))
    state = load_weights(weights, graph)
    out = predict(spec, graph, target_name, state, x, transformed=transformed, batch_size=batch_size, model=model,
                  device=device)
    write_array(output_path, out)
    return out
