"""What every op declares once: parameters, shape rule, canonical weights, examples.

An ``OpDef`` is backend-neutral. The backends keep one lowering per op name in their
own tables (``backends/torch/ops``, ``backends/jax/ops``); ``tests/test_catalog.py``
fails until every op has both, and the parity tests run every op's ``examples``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..tensors import TensorType, format_shape
from ..types import Params


class ShapeError(Exception):
    """Raised by a shape rule; ``param`` names the offending parameter, if one is."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Uniform:
    """U(low, high); torch's default for Linear and Conv weights and biases is ``symmetric(1/√fan_in)``."""

    low: float
    high: float

    @classmethod
    def symmetric(cls, bound: float) -> Uniform:
        return cls(-bound, bound)


@dataclass(frozen=True)
class Constant:
    value: float


@dataclass(frozen=True)
class Normal:
    """N(mean, std²): torch's Embedding init is N(0, 1)."""

    std: float = 1.0
    mean: float = 0.0


@dataclass(frozen=True)
class TruncNormal:
    """N(mean, std²) redrawn outside [a, b] (torch.nn.init.trunc_normal_'s distribution)."""

    mean: float
    std: float
    a: float
    b: float


@dataclass(frozen=True)
class Orthogonal:
    """A (semi-)orthogonal matrix over the first dim and the rest, times ``gain`` (torch.nn.init.orthogonal_)."""

    gain: float = 1.0


Init = Uniform | Constant | Normal | TruncNormal | Orthogonal


FLOAT = "float"
"""A weight dtype that follows the model's float dtype (float32, or float64 in ``dslc check --dtype float64``)."""


@dataclass(frozen=True)
class Weight:
    """One entry of the canonical state dict: its shape, init, kind and dtype.

    ``zero_rows`` are set to 0 after sampling, whatever the init (an embedding's
    ``padding_idx`` row). ``kind`` is torch's distinction: a ``parameter`` is optimized; a ``buffer``
    (BatchNorm's running statistics) is saved with the weights and updated by the
    forward pass in training mode, never by the optimizer, and does not count as a
    parameter. ``dtype`` is ``FLOAT`` (the model's float dtype) or a fixed dtype:
    torch keeps ``num_batches_tracked`` in int64 whatever the model's dtype.

    ``sparse`` marks a table whose gradient holds only the rows a batch looked up
    (torch's ``nn.Embedding(sparse=True)``): only some optimizers take it, and
    ``sparse_adam`` updates just those rows (``dsl/objectives.py`` checks the pairing).
    """

    shape: tuple[int, ...]
    init: Init
    kind: Literal["parameter", "buffer"] = "parameter"
    dtype: str = FLOAT
    zero_rows: tuple[int, ...] = ()
    sparse: bool = False

    @property
    def trainable(self) -> bool:
        return self.kind == "parameter"


@dataclass(frozen=True)
class Example:
    """One configuration the parity tests run through both backends.

    ``input_dtype`` is None for float ops (the test's dtype); integer inputs are drawn
    in ``range(input_high)`` (token ids within a vocabulary; a tuple bounds each
    position of the last axis, one per field), else within ``vocab``, the first
    input's declared ``vocab:``. ``more_inputs`` are the shapes of a merge op's second
    and later inputs.

    ``masks`` are the indices of inputs that are padding masks ([N, S], in
    ``mask_dtype``): each row real tokens then trailing padding, at least one real
    token, written in the convention the example's ``mask`` argument names (``keep``,
    the default: 1 marks a real token; ``ignore``: 1 marks padding). Random ints or
    coin flips would mask whole rows, which torch itself computes two ways
    (docs/PARITY.md §18).
    """

    input: tuple[int, ...]
    params: Mapping[str, object] = field(default_factory=dict)
    input_dtype: str | None = None
    input_high: int | tuple[int, ...] = 0
    more_inputs: tuple[tuple[int, ...], ...] = ()
    masks: tuple[int, ...] = ()
    mask_dtype: str = "int64"
    vocab: int | tuple[int, ...] | None = None

    @property
    def inputs(self) -> tuple[tuple[int, ...], ...]:
        return (self.input, *self.more_inputs)

    @property
    def id_high(self) -> int | tuple[int, ...]:
        """One past the largest id drawn: ``input_high``, else the declared vocab."""
        return self.input_high or self.vocab or 0

    def types(self, float_dtype: str = "float32") -> tuple[TensorType, ...]:
        """Each input's type as the graph builder makes it: the first carries the declared vocab."""
        return tuple(TensorType(shape, dtype, self.vocab if i == 0 else None)
                     for i, (shape, dtype) in enumerate(zip(self.inputs, self.dtypes(float_dtype))))

    def dtypes(self, float_dtype: str = "float32") -> tuple[str, ...]:
        """Each input's dtype: ``mask_dtype`` for a mask, else ``input_dtype``, else the test's float dtype."""
        return tuple(self.mask_dtype if i in self.masks else self.input_dtype or float_dtype
                     for i in range(len(self.inputs)))


def no_weights(params: Params) -> dict[str, Weight]:
    return {}


@dataclass(frozen=True)
class OpDef:
    """An op of the spec language.

    Attributes:
        name: the key used in specs (``conv2d``).
        params: the pydantic schema of its arguments.
        infer: ``infer(params, *inputs) -> (params, output)``: checks the inputs,
            fills parameters inferred from them (``in_features``) and gives the
            output type. Raises ``ShapeError``.
        weights: the canonical (torch ``state_dict``) entries of one layer, by suffix.
        examples: configurations exercised by the parity tests; at least one.
        doc: one line for ``dslc schema`` and the README.
        deterministic: for a stochastic op (dropout), its arguments with the randomness
            turned off. Two frameworks' random streams cannot agree, so parity checks
            run stochastic ops this way; ``None`` for every other op.
        arity: how many inputs it takes, (least, most); ``most`` None for no limit.
        id_bound: for an op reading integer ids, ``id_bound(params)`` is one past the
            largest valid id (an embedding's rows), or a tuple of them, one per
            position of the ids' last axis (a field's); parity checks draw ids below it.
        outputs: the names of an op's several outputs, in the order ``infer`` returns
            them (``lstm``: output, h_n, c_n), so a spec may write ``lstm_1[h_n]`` for
            ``lstm_1[1]``; empty for one output, or for outputs known by index only
            (``chunk``'s parts).
        moves_values: its outputs hold only values of its inputs, moved (reshape, select,
            concat): integer ids keep their range through it, so a table may read them
            (ids computed by ``add`` may lie outside it, where torch raises and JAX clamps).
        shape_only: its outputs depend on its input's shape, not on its values
            (``position_embedding`` reads T): no gradient flows back through it.
    """

    name: str
    params: type[Params]
    infer: Callable[..., tuple[Params, TensorType]]
    examples: tuple[Example, ...]
    doc: str
    weights: Callable[[Params], dict[str, Weight]] = no_weights
    deterministic: Callable[[Params], Params] | None = None
    arity: tuple[int, int | None] = (1, 1)
    id_bound: Callable[[Params], int | tuple[int, ...]] | None = None
    outputs: tuple[str, ...] = ()
    moves_values: bool = False
    shape_only: bool = False

    @property
    def stochastic(self) -> bool:
        return self.deterministic is not None

    def output_index(self, key: str) -> int | None:
        """The output ``[key]`` picks: an index as written, a name by its position; None for a name it lacks."""
        if key.isdigit():
            return int(key)
        return self.outputs.index(key) if key in self.outputs else None

    def arity_error(self, count: int) -> str | None:
        """Why ``count`` inputs do not fit this op, or None when they do."""
        least, most = self.arity
        if least <= count and (most is None or count <= most):
            return None
        wanted = f"{least}" if least == most else f"at least {least}" if most is None else f"{least} to {most}"
        return f"{self.name} takes {wanted} input{'s' * (wanted != '1')}, got {count}"


def require_float(x: TensorType) -> None:
    if not x.is_float:
        raise ShapeError(f"expects a floating-point input, got {x.dtype}")


def require_rank(x: TensorType, rank: int, layout: str) -> None:
    if x.rank != rank:
        raise ShapeError(
            f"expects input of shape [N, {layout}], got {format_shape(x.shape)}"
            + ("; is a flatten misplaced?" if x.rank < rank else "")
        )
