"""Synthetic data shaped like the model's inputs, the same for every variant and every process.

``images`` are uint8 (N, C, H, W): for MNIST-shaped (1, 28, 28) the bytes torchvision's
MNIST holds, for CIFAR-shaped (3, 32, 32) CIFAR-10's; ``x`` is what dslc's pipeline
makes of them (``/255``, then Normalize(0.5, 0.5) per channel, MNIST specs' own),
float32 (N, C, H, W) in [-1, 1]; labels are int64 class ids from a fixed random linear
"teacher", so the task is learnable and losses fall. Everything is a function of the
seed (and the shape) only, so a subprocess (the Keras workers) rebuilds the identical
arrays instead of receiving them. Batch size and optimizer come from each model's
spec (``bench/models.py``).

Dense inputs of any shape are made the same way: the LSTM's frames (N, T, F) are
"images" of shape (T, F). Token models (BERT) get ``make_token_data``: the spec's
``planted_tokens`` task (``backends/data/sequences.py``), drawn here with the same
rules: id 1 first (BERT's [CLS]), random filler ids, one class token, right-padded
with 0 to a random length, a keep mask (1 on real tokens) and zero token types.
Click models (DeepFM) get ``make_click_data``: the spec's ``planted_clicks`` task
(``backends/data/clicks.py``) drawn with its rules: standard normal dense features,
one uniform id below each field's declared vocab, and float32 0/1 labels drawn from
the sigmoid of a fixed seeded factorization machine (``click_world``, rank 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

NUM_CLASSES = 10


@dataclass(frozen=True)
class BenchData:
    images: np.ndarray | None  # uint8 (N, C, H, W); None for token data
    x: np.ndarray              # the model's first input: float32 (N, C, H, W) normalized to [-1, 1], or int64 ids
    y: np.ndarray              # int64 class ids (N,), or float32 0/1 labels (N,) for one binary logit
    extra: dict = field(default_factory=dict)  # the model's further inputs by spec name (BERT's masks, ids)

    def __len__(self) -> int:
        return len(self.y)


@lru_cache(maxsize=2)
def make_data(num_examples: int, seed: int = 0, shape: tuple[int, ...] = (1, 28, 28),
              classes: int = NUM_CLASSES) -> BenchData:
    """MNIST-shaped by default; another spec's input shape and class count may be given."""
    rng = np.random.default_rng([seed, 0xBE7C])
    images = rng.integers(0, 256, size=(num_examples, *shape), dtype=np.uint8)
    x = images.astype(np.float32)  # in place from here: no full-size temporaries (memory is measured)
    x /= 255.0
    x -= 0.5
    x /= 0.5
    teacher = rng.standard_normal((int(np.prod(shape)), classes)).astype(np.float32)
    y = (x.reshape(num_examples, -1) @ teacher).argmax(1).astype(np.int64)
    return BenchData(images, x, y)


@lru_cache(maxsize=2)
def make_token_data(num_examples: int, seed: int, length: int, vocab: int, classes: int) -> BenchData:
    """planted_tokens-shaped ids, with ``token_type_ids`` and the ``attention_mask`` (1 real, 0 padding)."""
    rng = np.random.default_rng([seed, 0x70CE])
    lengths = rng.integers(2, length + 1, num_examples)
    ids = rng.integers(classes + 2, vocab, (num_examples, length))
    y = rng.integers(0, classes, num_examples)
    ids[:, 0] = 1
    ids[np.arange(num_examples), rng.integers(1, lengths)] = y + 2
    mask = np.arange(length) < lengths[:, None]
    return BenchData(None, np.where(mask, ids, 0), y, {"token_type_ids": np.zeros_like(ids),
                                                        "attention_mask": mask.astype(np.int64)})


@lru_cache(maxsize=2)
def make_click_data(num_examples: int, seed: int, fields: tuple[int, ...]) -> BenchData:
    """planted_clicks-shaped: ``x`` dense float32 (N, 13), ``extra['sparse']`` int64 (N, 26) with field f's ids
    below ``fields[f]``, ``y`` float32 clicks drawn from the planted FM's probability (a teacher the model can
    learn, so the loss falls; its world is fixed by the vocab, the examples by ``seed``)."""
    from backends.data.clicks import DENSE, click_world

    rng = np.random.default_rng([seed, 0xC11C])
    dense = rng.standard_normal((num_examples, DENSE)).astype(np.float32)
    sparse = np.stack([rng.integers(0, size, num_examples) for size in fields], axis=1)
    chance = 1 / (1 + np.exp(-click_world(fields, 4).logit(dense, sparse)))
    return BenchData(None, dense, (rng.random(num_examples) < chance).astype(np.float32), {"sparse": sparse})


def model_data(model, num_examples: int, seed: int) -> BenchData:
    """The data a ``bench.models.ModelDef`` trains on: tokens for a token model, clicks for a click model,
    else dense inputs."""
    if model.fields:
        return make_click_data(num_examples, seed, model.fields)
    if model.vocab:
        return make_token_data(num_examples, seed, model.shape[0], model.vocab, model.classes)
    return make_data(num_examples, seed, model.shape, model.classes)


def run_batches(num_examples: int, steps: int, repeat: int, seed: int, batch_size: int) -> list[np.ndarray]:
    """The index batches of one timed run: dslc's own epoch order, full batches only.

    Full batches only, so no variant meets a new batch shape (a recompile) inside the
    timed region. Runs longer than an epoch continue into the next epoch's order.
    """
    from backends.data import epoch_batches

    batches: list[np.ndarray] = []
    epoch = 1 + repeat * 1000
    while len(batches) < steps:
        batches += [b for b in epoch_batches(num_examples, batch_size, seed, epoch) if len(b) == batch_size]
        epoch += 1
    return batches[:steps]
