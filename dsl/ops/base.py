"""What every op declares once: parameters, shape rule, canonical weights, examples.

An ``OpDef`` is backend-neutral. The backends keep one lowering per op name in their
own tables (``backends/torch/ops``, ``backends/jax/ops``); ``tests/test_catalog.py``
fails until every op has both, and the parity tests run every op's ``examples``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..tensors import TensorType, format_shape
from ..types import Params


class ShapeError(Exception):
    """Raised by a shape rule; ``param`` names the offending parameter, if one is."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Uniform:
    """U(-bound, bound): torch's default for Linear and Conv weights and biases."""

    bound: float


@dataclass(frozen=True)
class Constant:
    value: float


Init = Uniform | Constant


@dataclass(frozen=True)
class Weight:
    """One entry of the canonical state dict: the torch name's suffix, shape and init.

    ``trainable=False`` marks buffers (BatchNorm's running statistics) that are saved
    with the weights but not optimized.
    """

    shape: tuple[int, ...]
    init: Init
    trainable: bool = True


@dataclass(frozen=True)
class Example:
    """One configuration the parity tests run through both backends.

    ``more_inputs`` are the shapes of a merge op's second and later inputs.
    """

    input: tuple[int, ...]
    params: Mapping[str, object] = field(default_factory=dict)
    more_inputs: tuple[tuple[int, ...], ...] = ()

    @property
    def inputs(self) -> tuple[tuple[int, ...], ...]:
        return (self.input, *self.more_inputs)


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
        arity: how many inputs it takes, (least, most); ``most`` None for no limit.
    """

    name: str
    params: type[Params]
    infer: Callable[..., tuple[Params, TensorType]]
    examples: tuple[Example, ...]
    doc: str
    weights: Callable[[Params], dict[str, Weight]] = no_weights
    arity: tuple[int, int | None] = (1, 1)

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
