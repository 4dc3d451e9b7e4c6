"""ONNX files and ``torch.export`` programs from the torch target's module, and the runtimes that run them back.

Both trace the target's fx module in evaluation mode with ``torch.export.export``
(ONNX through ``torch.onnx.export(dynamo=True)``, which converts that program to ONNX and
optimizes it with onnxscript), the batch axis of every input one shared
``torch.export.Dim``, so the file runs on any batch size. ONNX inputs and outputs take
the spec's names (``input_ids``, ``attention_mask``; ``label``, ``value``); a program keeps
the module's positional inputs and returns what the module returns (a dict for several
outputs). ``dslc export`` (``backends/export.py``) verifies each file with ``run``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from dsl import Graph
from dsl.errors import UsageError
from dsl.graph import Node


def write(fmt: str, target, inputs: tuple[np.ndarray, ...], names, path: Path) -> None:
    """Traces ``target.module`` on ``inputs`` (one array per model input) and writes ``fmt`` to ``path``."""
    module = target.module.eval()
    args = tuple(torch.from_numpy(x) for x in inputs)
    batch = torch.export.Dim("batch", min=1)
    dynamic = tuple({0: batch} for _ in args)
    with _quiet():
        try:
            WRITERS[fmt](module, args, dynamic, names, path)
        except Exception as err:  # the exporter's: this model holds something it cannot trace or convert
            raise UsageError(f"{fmt} export failed: {exporter_failure(err)}") from None


def _write_onnx(module, args, dynamic, names, path: Path) -> None:
    program = torch.onnx.export(module, args, dynamo=True, input_names=list(names.inputs),
                                output_names=list(names.outputs), dynamic_shapes=dynamic, verbose=False)
    program.save(str(path))


def _write_program(module, args, dynamic, names, path: Path) -> None:
    torch.export.save(torch.export.export(module, args, dynamic_shapes=dynamic), str(path))


WRITERS = {"onnx": _write_onnx, "torch-export": _write_program}


def exporter_failure(err: Exception) -> str:
    """An exporter's exception in one line: the aten op it names (torch.onnx's ``No ONNX function found for
    aten.adaptive_max_pool2d``) and the first line of the innermost cause."""
    text = str(err)
    while err.__cause__ is not None:
        err = err.__cause__
    op = re.search(r"aten\.(\w+)", text)
    first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
    return (f"it cannot handle the torch op aten.{op.group(1)} ({first})" if op else first)


def run(fmt: str, path: Path, inputs: tuple[np.ndarray, ...]):
    """The written file's outputs on ``inputs``: a list in output order (ONNX) or what the module returns."""
    return RUNNERS[fmt](path, inputs)


def _run_onnx(path: Path, inputs: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its shape-merge warnings are not the user's concern
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {arg.name: x for arg, x in zip(session.get_inputs(), inputs, strict=True)})


@torch.no_grad()
def _run_program(path: Path, inputs: tuple[np.ndarray, ...]):
    out = torch.export.load(str(path)).module()(*(torch.from_numpy(x) for x in inputs))
    return {k: v.numpy() for k, v in out.items()} if isinstance(out, dict) else out.numpy()


RUNNERS = {"onnx": _run_onnx, "torch-export": _run_program}


@contextlib.contextmanager
def _quiet():
    """The exporters' progress prints, warnings and log lines kept off the terminal: ``dslc export`` says
    in one line what it wrote, and an exporter's failure is raised, not logged."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def unsupported(fmt: str, graph: Graph, node: Node) -> tuple[str, str] | None:
    """(the argument, why) where ``fmt`` cannot hold this layer, or None; checked before tracing. Measured on
    every catalog example: these are the ones whose ONNX file failed to convert, to run, or to match."""
    limit = ONNX_LIMITS.get(node.op) if fmt == "onnx" else None
    return limit(graph, node) if limit else None


def _avg_pool(graph: Graph, node: Node) -> tuple[str, str] | None:
    if node.params.divisor_override is not None:
        return "divisor_override", ("torch's ONNX exporter drops divisor_override (ONNX AveragePool divides by "
                                    "the window), so the file would compute other numbers")
    return None


def _conv_transpose(graph: Graph, node: Node) -> tuple[str, str] | None:
    padding, stride = node.params.output_padding, node.params.stride
    if any(pad >= step for pad, step in zip(padding, stride)):
        return "output_padding", (f"onnxruntime's ConvTranspose needs output_padding below stride (torch also "
                                  f"allows it below dilation): output_padding {list(padding)}, stride {list(stride)}")
    return None


def _adaptive_max_pool(graph: Graph, node: Node) -> tuple[str, str] | None:
    size, out = graph.value_type(node.inputs[0]).shape[-2:], node.output.shape[-2:]
    if any(n % k for n, k in zip(size, out)):
        return "output_size", (f"torch's ONNX exporter converts adaptive max pooling only where the output size "
                               f"divides the input's ({list(size)} into {list(out)} does not)")
    return None


ONNX_LIMITS = {"avg_pool2d": _avg_pool, "conv_transpose2d": _conv_transpose, "adaptive_max_pool2d": _adaptive_max_pool}
"""Op -> ``limit(graph, node)``: (the argument, why) where ONNX cannot hold that layer, or None."""
