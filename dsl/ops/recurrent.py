"""Recurrent layers: ``lstm`` and ``gru``, torch.nn.LSTM's and torch.nn.GRU's semantics exactly.

The weights are torch's state_dict entries, so a checkpoint of ``torch.nn.LSTM`` or
``GRU`` loads unchanged: per layer l and direction (``_reverse`` for the backward
one), ``weight_ih_l{l}`` (G·H, input), ``weight_hh_l{l}`` (G·H, H) and, with
``bias``, the two vectors ``bias_ih_l{l}`` and ``bias_hh_l{l}``; the gates are
stacked in torch's order (LSTM i, f, g, o; GRU r, z, n) and every entry starts
U(±1/√hidden_size). Two biases are kept, not folded into one, because GRU's reset
gate multiplies ``W_hn h + b_hn`` only: n = tanh(W_in x + b_in + r·(W_hn h + b_hn)).

Sequences are batch first, as everywhere in dslc: the input is [N, T, input_size]
and ``output`` [N, T, D·H] (D = 2 when bidirectional), so ``batch_first`` is true
by default and refused false. ``h_n`` and ``c_n`` are batch first too,
[N, D·num_layers, H] (torch returns them [D·num_layers, N, H] whatever batch_first
says): a graph value carries its batch on axis 0, which ``flatten``, ``dslc predict``
and the parity checks rely on. Row ``2·l + d`` is layer l's final state in direction
d, as in torch, so the last layer's is ``h_n``'s last row (forward) or last two.

``dropout`` is applied to every layer's output but the last, in training only; with
one layer it would do nothing (torch warns), so it is refused there. Initial states
are zeros: ``h_0``/``c_0`` inputs and LSTM's ``proj_size`` are not supported.
"""

from __future__ import annotations

import math

from ..tensors import TensorType, format_shape
from ..types import Bool, NonNegativeInt, Params, PositiveInt, Probability
from .base import Example, OpDef, ShapeError, Uniform, Weight


class RecurrentParams(Params):
    hidden_size: PositiveInt
    num_layers: PositiveInt = 1
    bias: Bool = True
    batch_first: Bool = True
    dropout: Probability = 0.0
    bidirectional: Bool = False
    input_size: PositiveInt | None = None


class LSTMParams(RecurrentParams):
    proj_size: NonNegativeInt = 0


GATES = {"lstm": 4, "gru": 3}
"""Gates stacked in each weight's rows: LSTM i, f, g, o; GRU r, z, n."""


def _check_arguments(p: RecurrentParams) -> None:
    if not p.batch_first:
        raise ShapeError("batch_first: false is not supported: dslc sequences are batch first everywhere "
                         "([N, T, features]); leave batch_first out", param="batch_first")
    if getattr(p, "proj_size", 0):
        raise ShapeError("proj_size is not supported (LSTM with projections); leave it out or add a linear "
                         "layer after the lstm", param="proj_size")
    if p.dropout and p.num_layers == 1:
        raise ShapeError(f"dropout {p.dropout} does nothing with num_layers: 1 (torch applies it between layers "
                         "only, and warns); remove it, or add a dropout layer after this one", param="dropout")


def _input_size(p: RecurrentParams, x: TensorType) -> int:
    if not x.is_float:
        raise ShapeError(f"expects a float sequence [N, T, features], got {x.dtype} {format_shape(x.shape)}; "
                         "token ids go through an embedding first")
    if x.rank != 2:
        raise ShapeError(f"expects a batch-first sequence of shape [N, T, features], got {format_shape(x.shape)}"
                         + ("; a sequence of one feature is [N, T, 1] (unflatten)" if x.rank == 1 else ""))
    if p.input_size is not None and p.input_size != x.shape[1]:
        raise ShapeError(f"input_size is {p.input_size} but its input has {x.shape[1]} features (input shape "
                         f"{format_shape(x.shape)}); set input_size: {x.shape[1]} or leave it out to infer it",
                         param="input_size")
    return x.shape[1]


def _infer(p: RecurrentParams, x: TensorType, states: int) -> tuple[RecurrentParams, tuple[TensorType, ...]]:
    """(output [T, D·H], then ``states`` final states [D·num_layers, H]), batch first."""
    _check_arguments(p)
    p = p.model_copy(update={"input_size": _input_size(p, x)})
    directions = 2 if p.bidirectional else 1
    output = x.with_shape((x.shape[0], directions * p.hidden_size))
    state = x.with_shape((directions * p.num_layers, p.hidden_size))
    return p, (output,) + (state,) * states


def _weights(p: RecurrentParams, gates: int) -> dict[str, Weight]:
    """torch's state_dict entries and order: layer by layer, forward then ``_reverse``, w_ih, w_hh, b_ih, b_hh."""
    directions = ("", "_reverse") if p.bidirectional else ("",)
    init = Uniform.symmetric(1 / math.sqrt(p.hidden_size))
    rows = gates * p.hidden_size
    weights = {}
    for layer in range(p.num_layers):
        inputs = p.input_size if layer == 0 else len(directions) * p.hidden_size
        for suffix in (f"_l{layer}{d}" for d in directions):
            weights |= {f"weight_ih{suffix}": Weight((rows, inputs), init),
                        f"weight_hh{suffix}": Weight((rows, p.hidden_size), init)}
            if p.bias:
                weights |= {f"bias_ih{suffix}": Weight((rows,), init), f"bias_hh{suffix}": Weight((rows,), init)}
    return weights


def _no_randomness(p: RecurrentParams) -> RecurrentParams:
    return p.model_copy(update={"dropout": 0.0})


_EXAMPLES = (
    Example((5, 3), {"hidden_size": 4}),
    # one direction, no bias: the JAX LSTM's own backward pass (lstm_layer) with a zero bias
    Example((6, 5), {"hidden_size": 4, "bias": False}),
    # both layers read 6 features (3 + 3 directions), so JAX compiles one layer for the two: 2 s less a test here
    Example((4, 6), {"hidden_size": 3, "num_layers": 2, "bidirectional": True, "bias": False, "dropout": 0.25}),
)


OPS = (
    OpDef(
        name="lstm",
        params=LSTMParams,
        infer=lambda p, x: _infer(p, x, states=2),
        weights=lambda p: _weights(p, GATES["lstm"]),
        deterministic=_no_randomness,
        outputs=("output", "h_n", "c_n"),
        doc="Long short-term memory over [N, T, F] (torch.nn.LSTM, batch first): outputs output [N, T, D*H], "
            "h_n and c_n [N, D*num_layers, H].",
        examples=_EXAMPLES,
    ),
    OpDef(
        name="gru",
        params=RecurrentParams,
        infer=lambda p, x: _infer(p, x, states=1),
        weights=lambda p: _weights(p, GATES["gru"]),
        deterministic=_no_randomness,
        outputs=("output", "h_n"),
        doc="Gated recurrent unit over [N, T, F] (torch.nn.GRU, batch first): outputs output [N, T, D*H] and "
            "h_n [N, D*num_layers, H].",
        examples=_EXAMPLES,
    ),
)
