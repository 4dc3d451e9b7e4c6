"""``dslc decode`` and the decode metrics of ``dslc eval``: a spec's ``decode:`` section run on a target.

The loops themselves are ``backends/decode.py``'s, written once over a forward
``run(columns) -> outputs``; here that forward is a target's evaluation-mode
``predict``, so both targets decode with the same loop and their sequences can be
compared one for one. Greedy decoding generates the ``tokens`` input (and its
``mask``), so ``dslc decode``'s ``--input`` holds the other inputs only; CTC
decoding reads every input, and the ``lengths`` column when the ``.npz`` holds it.

A decoded sequence stops before its ``eos`` (greedy) and has its blanks and repeats
removed (ctc). Written out, sequences are one ``[N, L]`` int64 array padded with
the decoder's ``pad`` (greedy) or ``blank`` (ctc), L the longest; an ``.npz`` adds
``lengths`` [N], as padding ids may also be real ones in a user's vocabulary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dsl import Graph, Spec
from dsl.decoding import DecodeSpec, batch_column
from dsl.errors import UsageError

from .data.sequences import IGNORE
from .decode import Run, ctc_best_path, first_tokens, greedy, references, step_inputs, until_eos
from .predict import check_output_path, prepare_inputs, read_inputs, write_array
from .sequence_metrics import SEQUENCE_METRICS
from .target import make_target


def require_decode(spec: Spec) -> DecodeSpec:
    """The spec's ``decode:`` section; a spec without one is a usage error."""
    if spec.decode is None:
        raise UsageError(f"spec {spec.name} has no decode: section, so dslc cannot turn its outputs into token "
                         f"sequences; add decode: {{greedy: {{tokens: ..., bos: 1, eos: 2}}}} or decode: {{ctc: "
                         f"{{blank: 0}}}} (see README, 'Decoding')")
    return spec.decode


def output_name(decode: DecodeSpec, graph: Graph) -> str:
    return decode.output or graph.outputs[0][0]


def generated(decode: DecodeSpec) -> tuple[str, ...]:
    """The inputs greedy decoding writes itself: ``tokens`` and its ``mask``."""
    g = decode.greedy
    return () if g is None else tuple(n for n in (g.tokens, g.mask) if n is not None)


def forward(graph: Graph, target_name: str, state, batch_size: int, device: str = "auto") -> Run:
    """A target's evaluation-mode forward as ``run(columns) -> {output name: array}``."""
    target = make_target(target_name, graph, None, device=device)
    target.load_state(state)
    names, outputs = [n for n, _ in graph.inputs], [n for n, _ in graph.outputs]

    def run(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        xs = tuple(np.asarray(columns[n], graph.value_type(n).dtype) for n in names)
        out = target.predict(xs[0] if len(xs) == 1 else xs, batch_size)
        return out if isinstance(out, dict) else {outputs[0]: out}
    return run


def decode_columns(spec: Spec, graph: Graph, run: Run, columns: dict[str, np.ndarray]) -> list[list[int]]:
    """The token sequences of a batch of named columns (model inputs; ctc's ``lengths`` column if any)."""
    decode, output = spec.decode, output_name(spec.decode, graph)
    inputs = {n: columns[n] for n, _ in graph.inputs if n not in generated(decode)}
    if decode.mode == "greedy":
        length = graph.value_type(decode.greedy.tokens).shape[0]
        return until_eos(greedy(run, inputs, decode.greedy, output, length), decode.greedy.eos)
    lengths = columns.get(batch_column(spec, decode.ctc.lengths)) if decode.ctc.lengths else None
    return ctc_best_path(run(inputs)[output], decode.ctc, lengths)


def true_sequences(spec: Spec, columns: dict[str, np.ndarray]) -> list[list[int]]:
    """The ``reference`` column's sequences: padding, ``eos`` and -100 dropped (greedy), or the blank (ctc)."""
    decode = spec.decode
    drop = (decode.greedy.pad, decode.greedy.eos, IGNORE) if decode.greedy else (decode.ctc.blank, IGNORE)
    return references(columns[batch_column(spec, decode.reference)], drop)


def score(spec: Spec, hypotheses: list[list[int]], truth: list[list[int]]) -> dict[str, float]:
    """``decode.metrics`` over the decoded sequences, as ``test_<metric>``."""
    return {f"test_{m}": float(SEQUENCE_METRICS[m](hypotheses, truth)) for m in spec.decode.metrics}


def decode_test_split(spec: Spec, graph: Graph, target_name: str, state, *, data_dir, dataset: str | None = None,
                      batch_size: int = 1000, device: str = "auto") -> tuple[list[list[int]], list[list[int]]]:
    """The test split decoded on a target, and its reference sequences."""
    from .data import load_dataset

    columns = load_dataset(spec, graph, data_dir=data_dir, name=dataset).test.columns
    hypotheses = decode_columns(spec, graph, forward(graph, target_name, state, batch_size, device), columns)
    return hypotheses, true_sequences(spec, columns)


def evaluate(spec: Spec, graph: Graph, target_name: str, state, *, data_dir, dataset: str | None = None,
             batch_size: int = 1000, device: str = "auto") -> dict:
    """``dslc eval``: the test loss and metrics, and the spec's ``decode.metrics`` when it lists any."""
    from .loop import evaluate as evaluate_losses

    result = evaluate_losses(spec, graph, target_name, state, data_dir=data_dir, dataset=dataset,
                             batch_size=batch_size, device=device)
    if spec.decode is None or not spec.decode.metrics:
        return result
    hypotheses, truth = decode_test_split(spec, graph, target_name, state, data_dir=data_dir, dataset=dataset,
                                          batch_size=batch_size, device=device)
    return result | score(spec, hypotheses, truth)


def read_decode_inputs(spec: Spec, graph: Graph, path: Path) -> dict[str, np.ndarray]:
    """``--input``'s arrays, batched: every model input but the generated ones, checked as ``predict`` checks
    them (one example without the batch axis too), with ctc's ``lengths`` when the ``.npz`` holds it."""
    decode = require_decode(spec)
    names = [n for n, _ in graph.inputs if n not in generated(decode)]
    lengths = decode.ctc.lengths if decode.ctc else None
    extra = [lengths] if lengths and Path(path).suffix == ".npz" and _holds(path, lengths) else []
    arrays = _read(path, names + extra, generated(decode))
    if all(np.shape(arrays[n]) == graph.value_type(n).shape for n in names):
        arrays = {k: np.asarray(v)[None] for k, v in arrays.items()}  # one example
    given = {n: arrays[n] for n in names} | _placeholders(decode, graph, len(arrays[names[0]]))
    xs, _ = prepare_inputs(spec, graph, {n: given[n] for n, _ in graph.inputs})
    columns = dict(zip((n for n, _ in graph.inputs), xs))
    return columns | {batch_column(spec, n): _lengths(arrays[n], len(xs[0]), path) for n in extra}


def _holds(path: Path, name: str) -> bool:
    with np.load(path, allow_pickle=False) as archive:
        return name in archive.files


def _read(path: Path, names: list[str], generated_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    if Path(path).suffix == ".npz" and Path(path).is_file():
        held = [n for n in generated_names if _holds(path, n)]
        if held:
            raise UsageError(f"--input {path} holds '{held[0]}', which greedy decoding generates itself; give only "
                             f"the other inputs ({', '.join(names)})")
    return read_inputs(path, names)


def _lengths(x: np.ndarray, n: int, path: Path) -> np.ndarray:
    """ctc's frame counts: one non-negative integer per example."""
    if x.dtype.kind not in "iu" or x.shape != (n,) or (x < 0).any():
        raise UsageError(f"--input {path}: the frame lengths must be {n} non-negative integers, one per example "
                         f"(got {x.dtype} {list(x.shape)})")
    return x


def _placeholders(decode: DecodeSpec, graph: Graph, n: int) -> dict[str, np.ndarray]:
    """The generated inputs as decoding starts (``bos`` then ``pad``; a mask of the first position), so the given
    ones are checked against the model like ``predict``'s."""
    g = decode.greedy
    if g is None:
        return {}
    return step_inputs({}, g, first_tokens(g, n, graph.value_type(g.tokens).shape[0]), 0)


def check_sequences_path(path: Path) -> None:
    """``--output`` is a ``.npy`` (the padded tokens) or an ``.npz`` (tokens and lengths) that can be written."""
    if Path(path).suffix not in (".npy", ".npz"):
        raise UsageError(f"--output {path}: give a .npy file (the sequences, padded) or an .npz (tokens and "
                         f"lengths)")
    check_output_path(path)


def padded(sequences: list[list[int]], pad: int) -> np.ndarray:
    """Sequences as one ``[N, L]`` int64 array, L the longest, padded with ``pad``."""
    out = np.full((len(sequences), max(map(len, sequences), default=0)), pad, np.int64)
    for row, sequence in zip(out, sequences):
        row[:len(sequence)] = sequence
    return out


def decode_file(spec: Spec, graph: Graph, target_name: str, weights: Path, input_path: Path,
                output_path: Path | None = None, *, batch_size: int = 1000, device: str = "auto") -> list[list[int]]:
    """``dslc decode``: every file checked before the model is built; writes ``output_path`` if given."""
    from .weights import load_weights

    decode = require_decode(spec)
    if output_path is not None:
        check_sequences_path(output_path)
    columns = read_decode_inputs(spec, graph, input_path)
    state = load_weights(weights, graph)
    sequences = decode_columns(spec, graph, forward(graph, target_name, state, batch_size, device), columns)
    if output_path is not None:
        tokens = padded(sequences, decode.greedy.pad if decode.greedy else decode.ctc.blank)
        write_array(output_path, {"tokens": tokens, "lengths": np.array(list(map(len, sequences)), np.int64)}
                    if Path(output_path).suffix == ".npz" else tokens)
    return sequences
