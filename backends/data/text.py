"""Text datasets as columns: ``text_classification``, ``ag_news`` and ``parallel_text``.

The files are read by ``text_files.py`` and turned into ids by the spec's tokenizer
(``tokenize.py``), built from the training split only; ``train_size``/``test_size``
cut the texts before anything is tokenized, so the vocabulary is that of the examples
trained on. Classification gives ``TEXT_COLUMNS`` (``input_ids`` cut or padded to the
input's length, ``attention_mask``, ``token_type_ids``, ``label``); translation gives
``PAIR_COLUMNS``, as the ``reverse`` task does. The vocabulary file travels with the
``Source`` (``files``) to be saved next to the run's weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dsl import DATASETS, DataError, Graph, Spec
from dsl.columns import RESERVED_IDS

from .columns import Feeds, feeds_of, fit
from .sequences import pair_columns
from .sources import Source, Split
from .text_files import Texts, ag_news_file, class_ids, classification_file, read_ag_news, read_pairs
from .tokenize import BOS, EOS, PAD, VOCAB_FILE, Encoder, build_encoder, file_encoder, vocab_encoder


def text_classification(name: str, spec: Spec, feeds: Feeds, data_dir: str | Path) -> Source:
    """The user's CSV or JSONL files (``data.path``), or AG News (``name``, from ``--data-dir``)."""
    data = spec.data
    if name == "ag_news":
        train, test = (read_ag_news(ag_news_file(data_dir, split)) for split in ("train", "test"))
    else:
        train, test = (classification_file(Path(data.path), split) for split in ("train", "test"))
    train, test = _head(train, data.train_size), _head(test, data.test_size)
    y_train, y_test, names = class_ids(train, test)
    _check_classes(feeds, names, train.file)
    encoder = _encoder(spec, feeds, train.texts, "input_ids")
    length = feeds.length("input_ids")
    splits = [_classified(encoder, t.texts, y, length) for t, y in ((train, y_train), (test, y_test))]
    _check_ids(encoder, feeds, splits[0]["input_ids"], "input_ids", spec)
    return Source(*splits, len(names) if names else None, encoder.files)


def parallel_text(spec: Spec, feeds: Feeds) -> Source:
    """``data.path/train.tsv`` and ``test.tsv``: one vocabulary for both sides, built from the training pairs."""
    data = spec.data
    folder = Path(data.path)
    train, test = (read_pairs(folder / f"{split}.tsv") for split in ("train", "test"))
    train = tuple(texts[:data.train_size] for texts in train)
    test = tuple(texts[:data.test_size] for texts in test)
    encoder = _encoder(spec, feeds, train[0] + train[1], "source", "target_in")
    marks = (BOS, EOS, PAD) if encoder.files else (*encoder.bounds(spec.data.tokenizer.params.path), encoder.pad)
    splits = [_paired(encoder, *pairs, feeds, marks) for pairs in (train, test)]
    for column in ("source", "target_in"):
        _check_ids(encoder, feeds, splits[0][column], column, spec)
    return Source(*splits, None, encoder.files)


def encode_texts(spec: Spec, graph: Graph, texts: list[str], run: Path) -> dict[str, np.ndarray]:
    """``texts`` as the model inputs they feed in training, by input name, tokenized as training did: by the
    ``vocab.json`` in the ``run`` folder (written by ``dslc train``), or the spec's tokenizers file.

    A classification spec gets ``input_ids``, ``attention_mask`` and ``token_type_ids``; a translation spec the
    ``source`` and ``source_mask`` (decoding makes the target). Only the columns the model reads are returned.
    """
    name, tokenizer = spec.data.dataset, spec.data.tokenizer
    feeds = feeds_of(spec, graph, name)
    encoder = file_encoder(Path(tokenizer.params.path)) if tokenizer.name == "file" else \
        vocab_encoder(tokenizer.name, Path(run) / VOCAB_FILE)
    first = DATASETS[name].columns[0].name
    encoded = encoder.encode(texts, feeds.length(first), specials=None if first == "input_ids" else False)
    columns = ({"input_ids": encoded.ids, "attention_mask": encoded.mask, "token_type_ids": encoded.types}
               if first == "input_ids" else {"source": encoded.ids, "source_mask": encoded.mask})
    inputs = dict(graph.inputs)
    return {k: v for k, v in fit(Split(columns), feeds).columns.items() if k in inputs}


def _head(texts: Texts, size: int | None) -> Texts:
    return Texts(texts.file, texts.texts[:size], texts.labels[:size], texts.lines[:size])


def _encoder(spec: Spec, feeds: Feeds, texts: list[str], *columns: str) -> Encoder:
    """The spec's tokenizer; a vocabulary built from ``texts`` fills (at most) the tables reading ``columns``."""
    tables = [t for t in map(feeds.table, columns) if t is not None]
    return build_encoder(spec.data.tokenizer, texts, min(tables) - RESERVED_IDS if tables else None)


def _classified(encoder: Encoder, texts: list[str], labels: list[int], length: int) -> Split:
    encoded = encoder.encode(texts, length)
    return Split({"input_ids": encoded.ids, "attention_mask": encoded.mask, "token_type_ids": encoded.types,
                  "label": np.asarray(labels, np.int64)})


def _paired(encoder: Encoder, sources: list[str], targets: list[str], feeds: Feeds, marks) -> Split:
    """Pairs as ``PAIR_COLUMNS``: the target cut to leave room for BOS (in) and EOS (out)."""
    source_length = feeds.length("source")
    target_length = feeds.length("target_in", source_length + 1)
    source = encoder.encode(sources, source_length, specials=False)
    target = encoder.encode(targets, target_length - 1, specials=False)
    return pair_columns(source.ids, target.ids, source.mask.sum(1), target.mask.sum(1), source_length,
                        target_length, marks)


def _check_classes(feeds: Feeds, names: tuple[str, ...] | None, file: Path) -> None:
    """Named classes are as many as the output's logits, or a class could never be predicted (or never trained)."""
    out = feeds.output("label")
    if names and out is not None and out.rank and out.shape[0] != len(names):
        raise DataError(f"{file} has {len(names)} classes ({', '.join(names)}), but the output {out} has "
                        f"{out.shape[0]} logits; give the output one per class")


def _check_ids(encoder: Encoder, feeds: Feeds, ids: np.ndarray, column: str, spec: Spec) -> None:
    """A tokenizers file's ids must lie within the table reading them (a built vocabulary is made to fit)."""
    table = feeds.table(column)
    if table is not None and ids.size and ids.max() >= table:
        where = f"tokenizer file {spec.data.tokenizer.params.path}" if not encoder.files else "the vocabulary"
        raise DataError(f"{where} gives ids up to {ids.max()}, but the table reading {feeds.names[column]} has "
                        f"{table} rows; use a table of {encoder.tokenizer.get_vocab_size()} rows")
