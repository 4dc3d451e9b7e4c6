"""The recommender datasets as sources: ``planted_ratings``, ``planted_clicks``, ``movielens``, ``criteo``.

Their arguments come from ``dataset: {name: {args}}`` (``DataSpec.options``), their
sizes from ``data.train_size``/``test_size`` (made in that number by the seeded ones,
the first N of the files' splits otherwise). What they yield is checked against the
inputs it feeds before anything trains: each column's example shape, and every id
below the input's vocab, or an embedding would read out of range (torch fails on the
device, JAX clamps without a word).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dsl import DATASETS, DataError, Spec

from .clicks import FIELDS, planted_clicks
from .columns import Feeds, check_vocab
from .criteo import criteo
from .movielens import movielens
from .ratings import planted_ratings
from .sources import Source
from .stream import Stream

RECOMMENDERS = ("planted_ratings", "planted_clicks", "movielens", "criteo")


def recommender(name: str, spec: Spec, feeds: Feeds, seed: int, data_dir: str | Path) -> Source:
    """Dataset ``name``'s splits, checked against the inputs they feed."""
    data = spec.data
    sizes = (data.train_size, data.test_size) if data else (None, None)
    options = data.options(name) if data else DATASETS[name].params()
    if name == "planted_ratings":
        source = planted_ratings(options, seed, *sizes)
    elif name == "planted_clicks":
        source = planted_clicks(options, feeds, seed, *sizes)
    elif name == "movielens":
        source = _head(name, movielens(options, data_dir), sizes)
    else:
        source = _head(name, Source(*criteo(data.path, criteo_vocab(feeds)), None), sizes)
    for split in (source.train, source.test):
        _check_inputs(name, split, feeds)
    return source


def criteo_vocab(feeds: Feeds) -> tuple[int, ...]:
    """One vocab per categorical field, from the ``sparse`` input: what its values are hashed into."""
    vocab = feeds.vocab("sparse")
    if vocab is None:
        raise DataError(f"dataset criteo hashes each categorical value into its field's vocab, but the input "
                        f"{feeds.names['sparse']} declares none and no embedding reads it; declare one per field "
                        f"({FIELDS})")
    vocab = (vocab,) * FIELDS if isinstance(vocab, int) else tuple(vocab)
    if len(vocab) != FIELDS or min(vocab) < 2 or max(vocab) > 2**32:
        raise DataError(f"dataset criteo has {FIELDS} categorical fields, each hashed into 1..vocab-1 (0: missing), "
                        f"so it needs {FIELDS} vocabs of 2 to 2^32 ids; the input {feeds.names['sparse']} declares "
                        f"{list(vocab)}")
    return vocab


def _head(name: str, source: Source, sizes: tuple[int | None, int | None]) -> Source:
    """The first ``train_size`` / ``test_size`` examples of each split; asking for more than there are is an error."""
    for split, size, key in ((source.train, sizes[0], "train_size"), (source.test, sizes[1], "test_size")):
        if size is not None and size > len(split):
            raise DataError(f"data.{key} is {size:,} but dataset {name} has {len(split):,} {key[:-5]} examples; give "
                            f"at most {len(split)} or leave it out to use them all")
    return Source(source.train.head(sizes[0]), source.test.head(sizes[1]), source.num_classes, source.files)


def _check_inputs(name: str, split, feeds: Feeds) -> None:
    """Each column fed to an input holds examples of its shape, and ids below its vocab (a streamed split's ids
    were hashed into it)."""
    for column in split.columns:
        kind = feeds.input(column)
        if kind is None:
            continue
        values = split[column]
        if values.shape[1:] != kind.shape:
            raise DataError(f"dataset {name} yields {column} of shape {list(values.shape[1:])} per example, but the "
                            f"input {feeds.names[column]} takes {list(kind.shape)}")
        if values.dtype.kind in "iu" and not isinstance(split, Stream):
            check_vocab(name, column, np.asarray(values), feeds.vocab(column))
