"""``criteo``: a Criteo-format TSV read once, in streamed batches, into memory-mapped columns.

Each line is a 0/1 label, 13 integer features and 26 categorical values (hex in
Criteo's files, any text here), tab-separated; any field but the label may be
empty. The file is read by pyarrow's streaming CSV reader (``open_csv``, explicit
column types, a record batch of about ``BLOCK`` bytes at a time, never the whole
file) and written as it is read:

- ``dense`` [N, 13] float32: ``log(1 + x)``, negatives clipped to 0 and missing
  read as 0 (the usual Criteo transform);
- ``sparse`` [N, 26] int64: each value hashed into its field's vocab V, as
  ``1 + (value_hash(value) >> 32) * (V - 1) >> 32`` (a stable hash of the value's bytes,
  vectorized in numpy over a column's values); id 0 is kept for a missing value.
  Values are read as bytes: pyarrow's dictionary encoding of the 26 columns cost more
  than hashing every value saved (0.37 against 0.20 s to parse 50,000 lines);
- ``label`` [N] float32.

The columns are ``.npy`` files in a cache folder beside the file,
``<file>.cache/<key>/``, the key a hash of the file's size and modification time,
the vocab and ``FORMAT``: a second load (or the other target) memory-maps them and
reads nothing else, and an edited file or another vocab converts again. A
conversion writes into a temporary folder that is renamed into place when done, so
an interrupted one leaves no cache to trust. The splits are ``Stream`` s over the
memory-mapped columns, so batches are gathered by the same seeded index batches as
any split; the last 10% of lines are the test split (Criteo's own test set is the
day after its training days), the same for every run.

Measured (``python -m bench.criteo_stream``: 1,000,000 generated lines, 256 MB, in
a fresh process on 2 CPUs shared with other work, load average 4.5-4.7; 3 runs):
2.77-2.93 s, **342,000-361,000 lines/s** (as many per CPU second: the reader's
threads and numpy hardly overlap); **peak RSS 343-357 MB** in all, 294-308 MB above
the process before converting (pyarrow's import included). ``BLOCK`` sets the memory:
16 MB blocks peaked at 550 MB, 4 MB at 340 MB, 1 MB at 196 MB but 16% slower (with an
earlier, slower hash). Under
load average 6.2-6.6 the same conversion ran at 206,000-219,000 lines/s.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from dsl import DataError

from .stream import Stream

DENSE, FIELDS = 13, 26
NAMES = ["label", *(f"i{k}" for k in range(1, DENSE + 1)), *(f"c{k}" for k in range(1, FIELDS + 1))]
BLOCK = 1 << 22  # bytes of the file per record batch: about 16,000 Criteo lines
FORMAT = 1  # bump when the cache's layout or the hash changes
TEST_FRACTION = 0.1
COLUMNS = {"dense": (np.float32, (DENSE,)), "sparse": (np.int64, (FIELDS,)), "label": (np.float32, ())}


def criteo(path: str | Path, vocab: tuple[int, ...]) -> tuple[Stream, Stream]:
    """The file's training and test splits as streams of ``dense``, ``sparse`` and ``label``, converted once."""
    folder = cache_folder(Path(path), vocab)
    columns = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in COLUMNS}
    if len(columns["label"]) < 2:
        raise DataError(f"dataset criteo: {path} holds {len(columns['label'])} lines; it needs a training and a "
                        f"test split")
    cut = len(columns["label"]) - int(len(columns["label"]) * TEST_FRACTION)
    return Stream({k: v[:cut] for k, v in columns.items()}), Stream({k: v[cut:] for k, v in columns.items()})


def cache_folder(path: Path, vocab: tuple[int, ...]) -> Path:
    """``<file>.cache/<key>/``, converting the file into it first if it is not there."""
    if not path.is_file():
        raise DataError(f"dataset criteo: {path} is not a file; data.path names a Criteo-format .tsv file (label, "
                        f"{DENSE} integer and {FIELDS} categorical fields, tab-separated)")
    stat = path.stat()
    key = hashlib.sha256(json.dumps([FORMAT, stat.st_size, stat.st_mtime_ns, list(vocab)]).encode()).hexdigest()
    folder = path.parent / f"{path.name}.cache" / key[:16]
    if not folder.is_dir():
        _convert_atomically(path, vocab, folder)
    return folder


def _convert_atomically(path: Path, vocab: tuple[int, ...], folder: Path) -> None:
    folder.parent.mkdir(exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=".converting-", dir=folder.parent))
    try:
        convert(path, vocab, temp)
        os.rename(temp, folder)
    except OSError:
        if not folder.is_dir():  # else another process converted it first: use theirs
            raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def convert(path: Path, vocab: tuple[int, ...], out: Path) -> int:
    """Writes ``out/{dense,sparse,label}.npy`` from the file, batch by batch; returns the lines read."""
    import pyarrow as pa

    files = {name: NpyAppender(out / f"{name}.npy", *spec) for name, spec in COLUMNS.items()}
    try:
        for batch in _batches(path):
            for name, values in batch_columns(batch, vocab).items():
                files[name].append(values)
    except pa.ArrowInvalid as err:
        raise DataError(f"dataset criteo: {path} is not in Criteo's format ({str(err).splitlines()[0]}); each line "
                        f"is a 0/1 label, {DENSE} integers and {FIELDS} categorical values, tab-separated") from None
    finally:
        rows = [f.close() for f in files.values()]
    return rows[0]


def _batches(path: Path):
    """pyarrow's streaming reader over the file: record batches of ``NAMES`` in their Criteo types."""
    import pyarrow as pa
    from pyarrow import csv

    types = {"label": pa.int8(), **{f"i{k}": pa.int64() for k in range(1, DENSE + 1)},
             **{f"c{k}": pa.binary() for k in range(1, FIELDS + 1)}}
    return csv.open_csv(path, read_options=csv.ReadOptions(column_names=NAMES, block_size=BLOCK),
                        parse_options=csv.ParseOptions(delimiter="\t", quote_char=False),
                        convert_options=csv.ConvertOptions(column_types=types, strings_can_be_null=True))


def batch_columns(batch, vocab: tuple[int, ...]) -> dict[str, np.ndarray]:
    """One record batch as the cached columns: log dense features, hashed ids, the label."""
    import pyarrow as pa
    import pyarrow.compute as pc

    label = batch.column(0)
    if label.null_count or pc.max(label).as_py() > 1 or pc.min(label).as_py() < 0:
        raise pa.ArrowInvalid("a label is missing or not 0 or 1")
    dense = np.empty((len(batch), DENSE), np.float32)
    for k in range(DENSE):
        dense[:, k] = np.log1p(np.maximum(pc.fill_null(batch.column(1 + k), 0).to_numpy(), 0))
    sparse = np.empty((len(batch), FIELDS), np.int64)
    for f in range(FIELDS):
        sparse[:, f] = field_ids(batch.column(1 + DENSE + f), vocab[f])
    return {"dense": dense, "sparse": sparse, "label": label.to_numpy().astype(np.float32)}


def field_ids(values, vocab: int) -> np.ndarray:
    """A field's ids: ``1 + (value_hash(value) >> 32) * (vocab - 1) >> 32``; 0 where the value is missing.

    The range is reduced by Lemire's multiply-shift on the hash's high 32 bits (a
    modulo of uint64 arrays cost twice as much), so a vocab is at most 2^32.
    """
    offsets = np.frombuffer(values.buffers()[1], np.int32)[values.offset:values.offset + len(values) + 1]
    data = np.frombuffer(values.buffers()[2] or b"", np.uint8)
    lengths = np.diff(offsets)
    hashed = value_hash(data, offsets[:-1], lengths)
    ids = (1 + ((hashed >> np.uint64(32)) * np.uint64(vocab - 1) >> np.uint64(32))).view(np.int64)
    ids[lengths == 0] = 0
    return ids


def value_hash(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each byte string's hash: from its length, ``h = mix(h ^ word)`` over its little-endian 8-byte words (the
    last zero-padded), ``mix`` splitmix64's finalizer. Words rather than FNV-1a's bytes: a Criteo value (8 hex
    digits) is one word, read straight from the column's buffer, and the hash of 26 fields took a third of the
    conversion's time byte by byte (0.14 of 0.47 s for 50,000 lines)."""
    hashed = lengths.astype(np.uint64)
    for k, word in enumerate(_words(data, starts, lengths)):
        mixed = _mix(hashed ^ word)
        hashed = mixed if k == 0 else np.where(lengths > 8 * k, mixed, hashed)
    return hashed


def _words(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """[W, N] uint64: word k of every string (0 past its end; anything for an empty string, whose hash is never
    used). Strings of 8 bytes or none (Criteo's hex values, or missing) lie back to back in the buffer, so their
    words are a view of it, gathered by ``start / 8``."""
    filled = lengths > 0
    if not filled.any():
        return np.zeros((0, len(lengths)), np.uint64)
    if np.all(lengths[filled] == 8):
        first = int(starts[0])
        view = data[first:first + 8 * (len(data[first:]) // 8)].view("<u8")
        return view[np.minimum((starts - first) >> 3, len(view) - 1)][None].astype(np.uint64)
    width = 8 * -(-int(lengths.max(initial=0)) // 8)
    position = np.arange(width)[:, None]
    index = np.minimum(starts + position, len(data) - 1)
    raw = np.where(position < lengths, data[index], 0).astype(np.uint64)
    shifts = (8 * np.arange(8, dtype=np.uint64))[:, None]
    return np.stack([np.bitwise_or.reduce(raw[8 * k:8 * k + 8] << shifts, axis=0) for k in range(width // 8)])


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit reaches every output bit."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class NpyAppender:
    """An ``.npy`` file written by appending rows: the header is written for 0 rows, then rewritten for the rows
    appended (numpy pads a header so the first axis can grow in place, so its length does not change)."""

    def __init__(self, path: Path, dtype, tail: tuple[int, ...]):
        self.file, self.dtype, self.tail, self.rows = open(path, "wb"), np.dtype(dtype), tail, 0
        self._header()
        self.start = self.file.tell()

    def _header(self) -> None:
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": (self.rows, *self.tail)}
        np.lib.format.write_array_header_1_0(self.file, header)

    def append(self, values: np.ndarray) -> None:
        np.ascontiguousarray(values, self.dtype).tofile(self.file)
        self.rows += len(values)

    def close(self) -> int:
        self.file.seek(0)
        self._header()
        if self.file.tell() != self.start:
            raise RuntimeError(f"{self.file.name}: the .npy header for {self.rows} rows changed length")
        self.file.close()
        return self.rows
