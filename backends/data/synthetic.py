"""Seeded random data of any input shape, with targets a fixed random "teacher" computes.

Inputs are standard normal. Targets depend on the inputs (argmax, sign or tanh of a
random linear map of the flattened example), so a model can learn them and smoke
tests can see accuracy rise; the data is the same for a given seed on every machine.
"""

from __future__ import annotations

import numpy as np

from dsl import DataError, TensorType

from .sources import Source, Split

DEFAULT_TRAIN_SIZE, DEFAULT_TEST_SIZE = 2048, 512


def synthetic(inputs: TensorType, output: TensorType, targets: str, seed: int,
              train_size: int | None, test_size: int | None) -> Source:
    if not inputs.is_float:
        raise DataError(f"the synthetic dataset makes float inputs; the model's input is {inputs.dtype}")
    rng = np.random.default_rng([seed, 0x5EED])
    sizes = (train_size or DEFAULT_TRAIN_SIZE, test_size or DEFAULT_TEST_SIZE)
    x = rng.standard_normal((sum(sizes), *inputs.shape), dtype=np.float32)
    flat = x.reshape(len(x), -1)
    if targets == "classes":
        classes = output.shape[0]
        teacher = rng.standard_normal((flat.shape[1], classes * max(output.numel // classes, 1)))
        scores = (flat @ teacher).reshape(len(x), classes, *output.shape[1:])
        y = scores.argmax(axis=1).astype(np.int64)
    else:
        teacher = rng.standard_normal((flat.shape[1], output.numel)) / np.sqrt(flat.shape[1])
        scores = (flat @ teacher).reshape(len(x), *output.shape)
        y = np.tanh(scores).astype(np.float32)
    n = sizes[0]
    return Source(Split(x[:n], y[:n]), Split(x[n:], y[n:]), output.shape[0])
