"""``dslc export``: the spec's model as a file that another runtime runs, verified by running it.

Each format belongs to one framework (``FORMATS``), whose module (``backends/torch/export.py``,
``backends/jax/export.py``) writes the file from that framework's target in evaluation mode
and runs it back; this module, framework-free, picks the model and its weights, checks what
a user can get wrong before anything is traced, and judges the file. The exporter traces a
batch of ``TRACE_BATCH`` with the batch axis symbolic; the file is then run on seeded
batches of other sizes (``VERIFY_BATCHES``, drawn as ``dslc check`` draws inputs) and each
output compared with the target's own: within ``TOLERANCE`` of max(1, the largest
|reference value|), absolute below 1 and relative above (a CIFAR ResNet-20's logits near 19
differ by 1.3e-5 between two XLA compilations of the same function, 7e-7 of their size).

Everything runs on the CPU: a file is verified on the platform it was lowered for, and
float32 there means float32 (no TF32).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dsl import Graph, Spec
from dsl.errors import SpecError, UsageError

from .parity import make_inputs
from .predict import choose_model, input_names
from .target import make_target
from .weights import StateDict, init_weights, load_weights, write_atomic

FORMATS = {"onnx": "torch", "torch-export": "torch", "stablehlo": "jax"}
"""Format -> the framework whose target it is exported from."""

RUNTIMES = {"onnx": "onnxruntime", "torch-export": "torch.export.load", "stablehlo": "jax.export.deserialize"}
"""Format -> what runs the written file to verify it."""

PACKAGES = {"onnx": ("onnx", "onnxscript", "onnxruntime")}
"""Format -> the optional packages it needs (``pip install 'dslc[export]'``); the others need none."""

SUFFIXES = {"onnx": ".onnx", "torch-export": ".pt2", "stablehlo": ".stablehlo"}
"""The name each format's files take: suggested, not required (``--out`` is written as given)."""

TOLERANCE = 1e-5
TRACE_BATCH = 2  # not 1: torch.export specializes a dimension traced at size 1
VERIFY_BATCHES = (1, 5)


@dataclass(frozen=True)
class ExportResult:
    """What ``export_model`` wrote and how the file's outputs compared with the target's."""

    path: Path
    format: str
    size: int  # bytes
    inputs: int
    max_abs: float  # the largest |file - target| over every output and verification batch
    tolerance: float
    undefined: int = 0  # output values the target gave as NaN, not compared (``max_difference``)
    error: str = ""  # the runtime's, where it could not run the file

    @property
    def ok(self) -> bool:
        return not self.error and self.max_abs <= self.tolerance

    @property
    def target(self) -> str:
        return FORMATS[self.format]

    def summary(self) -> str:
        """The CLI's one line: what was written and how closely the file matches the target."""
        checked = f"batches of {' and '.join(map(str, VERIFY_BATCHES))}"
        if self.undefined:
            checked += f"; {self.undefined} values the target gives as NaN not compared"
        return (f"wrote {self.path} ({format_size(self.size)}, {self.inputs} input{'s' * (self.inputs != 1)}, "
                f"any batch size): {RUNTIMES[self.format]} matches the {self.target} target within "
                f"{self.max_abs:.1e} ({checked})")

    def failure(self) -> str:
        what = (f"cannot run the exported file ({self.error})" if self.error else
                f"runs the exported file {self.max_abs:.1e} away from the {self.target} target, beyond the "
                f"tolerance {self.tolerance:.1e}")
        return f"{RUNTIMES[self.format]} {what}; nothing was written to {self.path}"


def format_size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


def export_model(spec: Spec, graph: Graph, fmt: str, out: Path, *, weights: Path | None = None,
                 model: str | None = None, seed: int = 0) -> ExportResult:
    """Writes ``out`` when the file's outputs match the target's; returns the comparison either way.

    ``weights``: a safetensors file of the spec's weights; None exports the seed's
    initial weights (with a warning). ``model``: which model of a multi-model spec.
    """
    check_export(fmt, Path(out))
    chosen = choose_model(graph, model)
    state = _weights(graph, chosen, weights, seed)
    backend = importlib.import_module(f"backends.{FORMATS[fmt]}.export")
    refuse_unsupported(spec, chosen, fmt, backend.unsupported)
    if weights is None:
        warnings.warn(f"no --weights: exporting the initial weights of seed {seed}, as training starts from them",
                      stacklevel=2)
    target = make_target(FORMATS[fmt], chosen, None, seed=seed, device="cpu")
    target.load_state(state)
    rng = np.random.default_rng(seed)
    names = Names(tuple(input_names(chosen, model)), tuple(_local(n, model) for n, _ in chosen.outputs))
    return _write_verified(fmt, Path(out), backend, target, chosen, names, rng)


@dataclass(frozen=True)
class Names:
    """The file's input and output names: the spec's, without a multi-model spec's ``model.`` prefix."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def _local(name: str, model: str | None) -> str:
    return name.removeprefix(f"{model}.") if model else name


def check_export(fmt: str, out: Path) -> None:
    """Refuses an unknown format, a missing optional package and an unwritable ``out``, before any work."""
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: unknown format; choose from {', '.join(FORMATS)}")
    missing = [p for p in PACKAGES.get(fmt, ()) if importlib.util.find_spec(p) is None]
    if missing:
        raise UsageError(f"--format {fmt} needs {', '.join(PACKAGES[fmt])}; {', '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} not installed: pip install 'dslc[export]'")
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name such as {out / ('model' + SUFFIXES[fmt])}")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {out.parent} does not exist; create it first")
    if fmt == "torch-export" and out.suffix != ".pt2":
        warnings.warn(f"--out {out}: torch.export.load warns about a program whose name does not end in .pt2; "
                      f"name it {out.with_suffix('.pt2')}", stacklevel=3)


def _weights(graph: Graph, chosen: Graph, weights: Path | None, seed: int) -> StateDict:
    """The chosen model's weights: from the file (checked against the whole spec), or the seed's initial ones."""
    state = init_weights(graph, seed) if weights is None else load_weights(weights, graph)
    return {k: v for k, v in state.items() if k in chosen.state_dict_spec()}


def refuse_unsupported(spec: Spec, graph: Graph, fmt: str, unsupported) -> None:
    """One line, located at the argument, for the first layer the format's exporter or runtime cannot handle.

    ``unsupported(fmt, graph, node)`` is the backend's: (the layer's argument, why), or None.
    """
    for node in graph.nodes:
        found = unsupported(fmt, graph, node)
        if found:
            argument, reason = found
            others = " and ".join(f for f in FORMATS if f != fmt)
            raise SpecError(f"layer '{node.name}' ({node.op}) cannot be exported to {fmt}: {reason} ({others} "
                            f"can hold it)", spec.source.locate((*node.path, argument), key=True))


def _write_verified(fmt: str, out: Path, backend, target, graph: Graph, names: Names, rng) -> ExportResult:
    """Writes the file beside ``out``, runs it, and moves it to ``out`` only when it matches the target."""
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=SUFFIXES[fmt])
    os.close(fd)
    try:
        backend.write(fmt, target, make_inputs_tuple(graph, TRACE_BATCH, rng), names, Path(tmp))
        result = _verify(fmt, Path(tmp), backend, target, graph, rng)
        result = replace(result, path=out, size=Path(tmp).stat().st_size, inputs=len(names.inputs))
        if result.ok:
            write_atomic(out, Path(tmp).read_bytes())
        return result
    finally:
        Path(tmp).unlink(missing_ok=True)


def _verify(fmt: str, path: Path, backend, target, graph: Graph, rng) -> ExportResult:
    """Runs the file at ``path`` on each of ``VERIFY_BATCHES`` and compares every output with the target's."""
    max_abs, scale, undefined, keys = 0.0, 0.0, 0, tuple(name for name, _ in graph.outputs)
    for batch in VERIFY_BATCHES:
        xs = make_inputs_tuple(graph, batch, rng)
        reference = _listed(target.forward(xs if len(xs) > 1 else xs[0])[0], keys)
        try:
            outputs = backend.run(fmt, path, xs)
        except Exception as err:  # the runtime's: it refuses the file or fails inside it
            first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
            return ExportResult(path, fmt, 0, 0, float("inf"), TOLERANCE, error=f"batch of {batch}: {first}")
        for got, expected in zip(_listed(outputs, keys), reference, strict=True):
            difference, skipped = max_difference(got, expected)
            max_abs, undefined = max(max_abs, difference), undefined + skipped
            scale = max(scale, float(np.nanmax(np.abs(expected), initial=0.0)))
    return ExportResult(path, fmt, 0, 0, max_abs, TOLERANCE * max(1.0, scale), undefined)


def make_inputs_tuple(graph: Graph, batch: int, rng) -> tuple[np.ndarray, ...]:
    """``parity.make_inputs`` always as a tuple, one array per input in declared order."""
    xs = make_inputs(graph, batch, "float32", rng)
    return xs if isinstance(xs, tuple) else (xs,)


def _listed(outputs, keys: tuple[str, ...]) -> list[np.ndarray]:
    """Outputs in the model's order: from a dict by the graph's output name (a target's, a program's), a list in
    order (onnxruntime's), or one array."""
    if isinstance(outputs, dict):
        return [np.asarray(outputs[k]) for k in keys]
    return [np.asarray(o) for o in outputs] if isinstance(outputs, (list, tuple)) else [np.asarray(outputs)]


def max_difference(got: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    """max |got - reference| over the values the reference defines, and how many it does not (NaN).

    torch's fused attention path, which the torch target takes in evaluation, gives NaN
    for a query whose every key is masked, where its autograd path (what torch.export
    traces) and the JAX target give the output projection's bias (docs/PARITY.md §18);
    the file may give either there. A NaN or infinity the reference does not have, or
    another shape, is infinitely far.
    """
    if got.shape != reference.shape:
        return float("inf"), 0
    got, reference = got.astype(np.float64), reference.astype(np.float64)
    undefined = np.isnan(reference)
    diff = np.abs(got - reference)[~undefined]
    return float(np.where(np.isnan(diff), np.inf, diff).max(initial=0.0)), int(undefined.sum())
