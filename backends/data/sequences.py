"""Seeded token tasks a sequence model can really learn: ``planted_tokens`` and ``reverse``.

Sizes come from ``data.train_size``/``test_size`` (default 2048 / 512), lengths from
the inputs the columns feed, ids from the tables reading them (``Feeds``). The
training split is drawn from the run's seed; the test split from a fixed seed, so
``dslc eval`` (which loads with seed 0) scores any run on the same examples.

Ids follow the vocabularies' reserved ids (``tokenize.py``): 0 is padding, and in
``reverse`` 1 is BOS and 2 EOS. Sequences are right-padded with 0; masks are 1 on a
real position. A target position to ignore is -100, torch's ``ignore_index``.
"""

from __future__ import annotations

import numpy as np

from dsl import DataError

from .columns import Feeds
from .sources import Source, Split
from .synthetic import DEFAULT_TEST_SIZE, DEFAULT_TRAIN_SIZE
from .tokenize import BOS, EOS, PAD

IGNORE = -100
CLS = 1
"""planted_tokens' first id: every sequence starts with it, as BERT's with [CLS]."""
DEFAULT_CLASSES = 4
TEST_SEED = 0x7E57


def splits(make, seed: int, tag: int, train_size: int | None, test_size: int | None, classes=None) -> Source:
    """The training split of ``make(rng, n)`` from ``seed``, the test split from ``TEST_SEED``."""
    train = make(np.random.default_rng([seed, tag]), train_size or DEFAULT_TRAIN_SIZE)
    test = make(np.random.default_rng([TEST_SEED, tag, 1]), test_size or DEFAULT_TEST_SIZE)
    return Source(train, test, classes)


def planted_tokens(feeds: Feeds, seed: int, train_size: int | None, test_size: int | None) -> Source:
    """Classify by the one planted class token: ``CLS``, filler ids K+2.., one class token 2..K+1, then padding."""
    length, high = feeds.length("input_ids"), feeds.id_high("input_ids")
    out = feeds.output("label")
    classes = out.shape[0] if out is not None and out.rank else DEFAULT_CLASSES
    if high <= classes + 2 or length < 2:
        raise DataError(f"dataset planted_tokens needs sequences of 2 or more ids and a table of more than "
                        f"{classes + 2} ids ({classes} classes after ids 0 and 1); the input has {length} ids from "
                        f"a table of {high}")

    def make(rng: np.random.Generator, count: int) -> Split:
        lengths = rng.integers(2, length + 1, count)
        ids = rng.integers(classes + 2, high, (count, length))
        label = rng.integers(0, classes, count)
        ids[:, 0] = CLS
        ids[np.arange(count), rng.integers(1, lengths)] = label + 2
        mask = np.arange(length) < lengths[:, None]
        return Split({"input_ids": np.where(mask, ids, PAD), "attention_mask": mask.astype(np.int64),
                      "token_type_ids": np.zeros((count, length), np.int64), "label": label})
    return splits(make, seed, 0x91A7, train_size, test_size, classes)


def reverse(feeds: Feeds, seed: int, train_size: int | None, test_size: int | None) -> Source:
    """Reverse a sequence of ids 3..: the source, and the target for teacher forcing (``pair_columns``)."""
    source_length = feeds.length("source")
    target_length = feeds.length("target_in", source_length + 1)
    high = feeds.id_high("source", "target_in")
    longest = min(source_length, target_length - 1)
    if high <= EOS + 1 or longest < 1:
        raise DataError(f"dataset reverse needs a table of more than 3 ids (0 pad, 1 BOS, 2 EOS) and targets of 2 "
                        f"or more ids; the table has {high} and target_in {target_length}")

    def make(rng: np.random.Generator, count: int) -> Split:
        lengths = rng.integers(1, longest + 1, count)
        tokens = rng.integers(EOS + 1, high, (count, longest))
        flipped = np.take_along_axis(tokens, np.clip(lengths[:, None] - 1 - np.arange(longest), 0, None), axis=1)
        return pair_columns(tokens, flipped, lengths, lengths, source_length, target_length)
    return splits(make, seed, 0x2E7E, train_size, test_size)


def pair_columns(source: np.ndarray, target: np.ndarray, source_lengths: np.ndarray, target_lengths: np.ndarray,
                 source_length: int, target_length: int, marks: tuple[int, int, int] = (BOS, EOS, PAD)) -> Split:
    """A sequence-to-sequence example: ``source`` and ``target`` tokens (rows, real up to their lengths) as the
    columns of ``PAIR_COLUMNS``: ``target_in`` is BOS then the target, ``target_out`` the target then EOS, with
    ``IGNORE`` where ``target_in`` is padding. Targets longer than ``target_length - 1`` are cut. ``marks`` are
    the (BOS, EOS, padding) ids."""
    bos, eos, pad = marks
    count = len(source)
    target_lengths = np.minimum(target_lengths, target_length - 1)
    source_mask = np.arange(source_length) < np.minimum(source_lengths, source_length)[:, None]
    target_mask = np.arange(target_length) < (target_lengths + 1)[:, None]
    body = np.zeros((count, target_length), np.int64)
    width = min(target.shape[1], target_length - 1)
    body[:, :width] = target[:, :width]
    target_in = np.concatenate([np.full((count, 1), bos, np.int64), body[:, :-1]], axis=1)
    target_out = body.copy()
    target_out[np.arange(count), target_lengths] = eos
    padded = np.zeros((count, source_length), np.int64)
    padded[:, :min(source.shape[1], source_length)] = source[:, :source_length]
    return Split({"source": np.where(source_mask, padded, pad), "target_in": np.where(target_mask, target_in, pad),
                  "target_out": np.where(target_mask, target_out, IGNORE), "source_mask": source_mask.astype(np.int64),
                  "target_mask": target_mask.astype(np.int64)})
