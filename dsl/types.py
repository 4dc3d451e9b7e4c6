"""Field types shared by the op, loss and optimizer parameter schemas.

Integers are strict (``3.0``, ``"3"`` and ``true`` are refused, not coerced) because a
spec that says ``kernel_size: 2.5`` is a mistake, not a request for 2. Pairs accept
``3`` or ``[3, 5]``, as torch does, and are stored as tuples.
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


def _to_pair(value, minimum: int) -> tuple[int, int]:
    def is_int(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    pair = (value, value) if is_int(value) else tuple(value) if isinstance(value, (list, tuple)) else ()
    if len(pair) != 2 or not all(is_int(v) for v in pair):
        raise ValueError(f"expected an integer or a list of two integers, got {value!r}")
    if any(v < minimum or v > MAX_SIZE for v in pair):
        kind = "positive" if minimum else "non-negative"
        raise ValueError(f"values must be {kind} integers, got {value!r}")
    return pair


def _pair_schema(minimum: int) -> dict:
    integer = {"type": "integer", "minimum": minimum}
    return {"anyOf": [integer, {"type": "array", "items": integer, "minItems": 2, "maxItems": 2}]}


Pair = Annotated[tuple[int, int], BeforeValidator(lambda v: _to_pair(v, 1)), WithJsonSchema(_pair_schema(1))]
"""A positive size per spatial axis: ``3`` means ``(3, 3)``."""

NonNegativePair = Annotated[tuple[int, int], BeforeValidator(lambda v: _to_pair(v, 0)), WithJsonSchema(_pair_schema(0))]
"""A non-negative size per spatial axis (padding)."""


def _padding(value):
    if isinstance(value, str):
        if value not in ("same", "valid"):
            raise ValueError(f"expected 'same', 'valid', an integer or a pair, got {value!r}")
        return value
    return _to_pair(value, 0)


Padding = Annotated[
    tuple[int, int] | Literal["same", "valid"],
    BeforeValidator(_padding),
    WithJsonSchema({"anyOf": [{"enum": ["same", "valid"]}, _pair_schema(0)]}),
]
"""Zero padding per spatial axis, or torch's ``'same'`` / ``'valid'``."""


def _non_empty(values: list) -> list:
    if not values:
        raise ValueError("must not be empty")
    return values


FloatList = Annotated[list[Float], AfterValidator(_non_empty)]
