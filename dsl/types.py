"""Field types shared by the op, loss and optimizer parameter schemas.

Integers are strict (``3.0``, ``"3"`` and ``true`` are refused, not coerced) because a
spec that says ``kernel_size: 2.5`` is a mistake, not a request for 2. Pairs accept
``3`` or ``[3, 5]``, as torch does, and are stored as tuples; the 1-D ops' sizes are 1-tuples.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, WithJsonSchema

MAX_SIZE = 2**31 - 1  # larger sizes are refused as absurd before anything is allocated


class Params(BaseModel):
    """Base of every parameter schema: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Int = Annotated[int, Strict()]
PositiveInt = Annotated[int, Strict(), Field(gt=0, le=MAX_SIZE)]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0, le=MAX_SIZE)]
Float = Annotated[float, Strict(), Field(allow_inf_nan=False)]
PositiveFloat = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
Probability = Annotated[float, Strict(), Field(ge=0, le=1)]
Bool = Annotated[bool, Strict()]


_COUNT_WORDS = {1: "one integer", 2: "two integers"}


def _to_sizes(value, minimum: int, count: int) -> tuple[int, ...]:
    """``3`` -> ``(3,) * count``; a list of ``count`` integers -> a tuple; anything else is refused."""
    def is_int(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    sizes = (value,) * count if is_int(value) else tuple(value) if isinstance(value, (list, tuple)) else ()
    if len(sizes) != count or not all(is_int(v) for v in sizes):
        raise ValueError(f"expected an integer or a list of {_COUNT_WORDS[count]}, got {value!r}")
    if any(v < minimum or v > MAX_SIZE for v in sizes):
        kind = "positive" if minimum else "non-negative"
        raise ValueError(f"values must be {kind} integers, got {value!r}")
    return sizes


def _sizes_schema(minimum: int, count: int) -> dict:
    integer = {"type": "integer", "minimum": minimum}
    return {"anyOf": [integer, {"type": "array", "items": integer, "minItems": count, "maxItems": count}]}


def _sizes(minimum: int, count: int):
    """A size per spatial axis (``count`` axes), each at least ``minimum``; one integer means all axes."""
    return Annotated[tuple[(int,) * count], BeforeValidator(lambda v: _to_sizes(v, minimum, count)),
                     WithJsonSchema(_sizes_schema(minimum, count))]


Pair = _sizes(1, 2)
"""A positive size per spatial axis: ``3`` means ``(3, 3)``."""

NonNegativePair = _sizes(0, 2)
"""A non-negative size per spatial axis (padding)."""

Single = _sizes(1, 1)
"""A positive size of a 1-D op (``3`` or ``[3]``, as torch.nn's 1-D layers take it): stored as ``(3,)``."""

NonNegativeSingle = _sizes(0, 1)
"""A non-negative size of a 1-D op (padding)."""


def _padding(count: int):
    def parse(value):
        if isinstance(value, str):
            if value not in ("same", "valid"):
                listed = "a pair" if count == 2 else f"a list of {_COUNT_WORDS[count]}"
                raise ValueError(f"expected 'same', 'valid', an integer or {listed}, got {value!r}")
            return value
        return _to_sizes(value, 0, count)

    return Annotated[
        tuple[(int,) * count] | Literal["same", "valid"],
        BeforeValidator(parse),
        WithJsonSchema({"anyOf": [{"enum": ["same", "valid"]}, _sizes_schema(0, count)]}),
    ]


Padding = _padding(2)
"""Zero padding per spatial axis, or torch's ``'same'`` / ``'valid'``."""

Padding1d = _padding(1)
"""Zero padding of a 1-D convolution, or torch's ``'same'`` / ``'valid'``."""


def _non_empty(values: list) -> list:
    if not values:
        raise ValueError("must not be empty")
    return values


FloatList = Annotated[list[Float], AfterValidator(_non_empty)]
