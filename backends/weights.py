"""Canonical weights: the torch ``state_dict`` names and layouts, as numpy arrays.

This is the one weight format of dslc. Both backends start from it (so one seed
gives both targets the same initial weights) and save to it, as safetensors, so a
torch or Hugging Face checkpoint with the same names is a dslc checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_bytes
from safetensors.numpy import save as save_bytes

from dsl import Graph, WeightsError
from dsl.ops import FLOAT, Constant, Normal, Orthogonal, TruncNormal, Uniform, Weight

StateDict = dict[str, np.ndarray]
OPTIMIZER_PREFIX = "optimizer."  # checkpoint entries beside the weights (backends/optimizer_state.py)


def init_weights(graph: Graph, seed: int, dtype: str = "float32") -> StateDict:
    """Samples every weight from its init (torch's defaults, or the spec's ``init:``), reproducibly.

    One generator draws the weights in state_dict order, so both targets start from the
    same numbers. Float weights and buffers get ``dtype``; a buffer with a fixed dtype
    keeps it (``num_batches_tracked``: int64 zeros, as torch saves it).
    """
    rng = np.random.default_rng(seed)
    state = {}
    for key, weight in graph.state_dict_spec().items():
        values = SAMPLERS[type(weight.init)](rng, weight.init, weight.shape)
        if weight.zero_rows:
            values[list(weight.zero_rows)] = 0.0
        state[key] = values.astype(dtype if weight.dtype == FLOAT else weight.dtype)
    return state


def _trunc_normal(rng: np.random.Generator, init: TruncNormal, shape: tuple[int, ...]) -> np.ndarray:
    """N(mean, std²), each value outside [a, b] drawn again until it lands (the schema keeps [a, b] likely)."""
    values = rng.normal(init.mean, init.std, shape)
    outside = (values < init.a) | (values > init.b)
    while outside.any():
        values[outside] = rng.normal(init.mean, init.std, int(outside.sum()))
        outside = (values < init.a) | (values > init.b)
    return values


def _orthogonal(rng: np.random.Generator, init: Orthogonal, shape: tuple[int, ...]) -> np.ndarray:
    """torch.nn.init.orthogonal_: QR of a normal [rows, rest] matrix (transposed when wide), signs fixed by R."""
    rows = shape[0]
    flat = rng.normal(0.0, 1.0, (rows, int(np.prod(shape[1:]))))
    wide = rows < flat.shape[1]
    q, r = np.linalg.qr(flat.T if wide else flat)
    q = q * np.sign(np.diag(r))
    return init.gain * (q.T if wide else q).reshape(shape)


SAMPLERS = {
    Uniform: lambda rng, init, shape: rng.uniform(init.low, init.high, shape),
    Constant: lambda rng, init, shape: np.full(shape, init.value),
    Normal: lambda rng, init, shape: rng.normal(init.mean, init.std, shape),
    TruncNormal: _trunc_normal,
    Orthogonal: _orthogonal,
}
"""Init type -> ``sampler(rng, init, shape)``; a sampler draws from ``rng`` only what its own weight needs."""


def check_state_dict(graph: Graph, state: StateDict, origin: str = "weights") -> None:
    """Raises ``WeightsError`` unless names, shapes and dtypes are the model's.

    Float weights may have any float dtype (they are cast to the model's); a fixed
    dtype (``num_batches_tracked``: int64) must be exactly that one.
    """
    spec = graph.state_dict_spec()
    expected = {k: w.shape for k, w in spec.items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = [f"missing {', '.join(missing[:5])}" if missing else "",
                 f"unexpected {', '.join(unexpected[:5])}" if unexpected else ""]
        raise WeightsError(f"{origin}: names do not match model '{graph.name}': {'; '.join(filter(None, parts))}")
    for key, shape in expected.items():
        if tuple(state[key].shape) != tuple(shape):
            raise WeightsError(f"{origin}: {key} has shape {list(state[key].shape)}, the model needs {list(shape)}")
        _check_dtype(key, spec[key], np.asarray(state[key]).dtype, origin)


def _check_dtype(key: str, weight: Weight, dtype: np.dtype, origin: str) -> None:
    if weight.dtype == FLOAT and dtype.kind != "f":
        raise WeightsError(f"{origin}: {key} has dtype {dtype}, the model needs a float dtype")
    if weight.dtype != FLOAT and dtype != np.dtype(weight.dtype):
        raise WeightsError(f"{origin}: {key} has dtype {dtype}, the model needs {weight.dtype} ({weight.kind})")


def save_weights(path: str | Path, state: StateDict, metadata: dict[str, str] | None = None) -> None:
    """Writes safetensors atomically: a crash leaves the previous file intact."""
    tensors = {k: np.asarray(v, order="C") for k, v in state.items()}  # ascontiguousarray would make 0-d arrays 1-d
    data = save_bytes(tensors, metadata={"format": "pt", **(metadata or {})})
    write_atomic(path, _sorted_metadata(data))


def _sorted_metadata(data: bytes) -> bytes:
    """A safetensors file's bytes with its metadata in sorted key order, so equal tensors give equal files.

    safetensors writes the metadata map in the order of a Rust HashMap, which is seeded per
    process: of four runs that saved identical weights, one wrote ``{"epoch", "spec",
    "format"}`` where the others wrote ``{"spec", "format", "epoch"}``. The header is the same
    compact JSON in another order, so it keeps its length and the tensors their offsets.
    """
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    if "__metadata__" not in header:
        return data
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    return data[:8] + text.ljust(size) + data[8 + size:] if len(text) <= size else data


def load_weights(path: str | Path, graph: Graph | None = None) -> StateDict:
    """Reads safetensors; with ``graph``, also checks names and shapes.

    A run's ``checkpoint.safetensors`` is accepted too: it holds the weights plus
    ``optimizer.*`` entries, which are dropped here (people pass the checkpoint to
    ``eval`` and ``predict`` as readily as ``weights.safetensors``).
    """
    try:
        state = load_bytes(Path(path).read_bytes())
    except OSError as err:
        raise WeightsError(f"{path}: cannot read weights: {err.strerror}") from None
    except (SafetensorError, ValueError) as err:
        raise WeightsError(f"{path}: not a safetensors file ({err})") from None
    if graph is not None:
        state = _without_optimizer_state(graph, state)
        check_state_dict(graph, state, str(path))
    return state


def _without_optimizer_state(graph: Graph, state: StateDict) -> StateDict:
    if any(k.startswith(OPTIMIZER_PREFIX) for k in graph.state_dict_spec()):  # a layer named 'optimizer'
        return state
    return {k: v for k, v in state.items() if not k.startswith(OPTIMIZER_PREFIX)}


def write_atomic(path: str | Path, data: bytes) -> None:
    """Writes to a temporary file in the same folder, fsyncs, then renames over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a saved file gets the mode open() would give it
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
