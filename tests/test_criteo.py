"""The criteo reader: known lines to known ids and log values, the 20,000-line file against a plain reading of it,
the cache (reused, redone when the file or the vocab changes, written atomically) and batches identical across
loads."""

from __future__ import annotations

import csv
import json
import math
import re

import numpy as np
import pytest

import backends.data.criteo as criteo
import dsl
from backends.data import epoch_batches, load_dataset
from backends.data.stream import Stream
from bench.criteo_stream import write_criteo
from dsl import DataError
from tests.test_recommender_data import clicks_spec

VOCAB = (1000,) * 13 + (7,) * 13

def reference_id(value: str, vocab: int) -> int:
    """The hash as documented, in plain Python: splitmix64 folded over 8-byte little-endian words, from the
    length; then ``1 + (h >> 32) * (vocab - 1) >> 32``; 0 for a missing value."""
    if not value:
        return 0
    data, mask = value.encode(), 2**64 - 1
    hashed = len(data)
    for k in range(0, len(data), 8):
        x = hashed ^ int.from_bytes(data[k:k + 8].ljust(8, b"\0"), "little")
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        hashed = x ^ (x >> 31)
    return 1 + ((hashed >> 32) * (vocab - 1) >> 32)


def reference_row(fields: list[str], vocab: tuple[int, ...]) -> tuple[float, list[float], list[int]]:
    dense = [math.log1p(max(int(v), 0)) if v else 0.0 for v in fields[1:14]]
    return float(fields[0]), dense, [reference_id(v, vocab[f]) for f, v in enumerate(fields[14:])]


KNOWN = [
    ["1", "5", "", "-3", *["0"] * 10, "68fd1e64", "", "a1", "hello world, longer than a word", *["05db9164"] * 22],
    ["0", "", "1000000", "0", *["2"] * 10, *[""] * 25, "e8b83407"],
]


@pytest.fixture
def known_file(tmp_path):
    path = tmp_path / "known.tsv"
    path.write_text("".join("\t".join(row) + "\n" for row in KNOWN))
    return path


def test_known_lines_give_known_ids_and_log_values(known_file):
    train, test = criteo.criteo(known_file, VOCAB)
    both = {k: np.concatenate([train[k], test[k]]) for k in ("dense", "sparse", "label")}
    assert both["dense"].dtype == np.float32 and both["sparse"].dtype == np.int64 and both["label"].dtype == np.float32
    np.testing.assert_allclose(both["dense"][0, :3], [np.log(6), 0, 0], rtol=1e-6)  # 5; missing; -3 clipped
    np.testing.assert_allclose(both["dense"][1, :3], [0, np.log(1000001), 0], rtol=1e-6)
    np.testing.assert_array_equal(both["label"], [1, 0])
    for row, fields in enumerate(KNOWN):
        assert both["sparse"][row].tolist() == reference_row(fields, VOCAB)[2]
    assert both["sparse"][1, :25].tolist() == [0] * 25
    assert both["sparse"][0, :4].tolist() == [520, 0, 442, 906]  # pinned: a changed hash must bump criteo.FORMAT


def test_a_generated_file_reads_as_a_plain_reading_of_it(tmp_path):
    path = write_criteo(tmp_path / "day.tsv", 20_000, seed=5)
    train, test = criteo.criteo(path, VOCAB)
    assert (len(train), len(test)) == (18_000, 2_000)
    with open(path, newline="") as file:
        rows = [reference_row(fields, VOCAB) for fields in csv.reader(file, delimiter="\t")]
    label, dense, sparse = (np.array([r[k] for r in rows]) for k in range(3))
    for split, rows_of in ((train, slice(0, 18_000)), (test, slice(18_000, None))):
        np.testing.assert_array_equal(split["label"], label[rows_of])
        np.testing.assert_allclose(split["dense"], dense[rows_of], rtol=1e-6)
        np.testing.assert_array_equal(split["sparse"], sparse[rows_of])
    assert 0.04 < (sparse == 0).mean() < 0.06  # a twentieth of the values is missing


def test_the_cache_is_reused_and_redone_for_another_file_or_vocab(known_file, monkeypatch):
    criteo.criteo(known_file, VOCAB)
    calls = []
    convert = criteo.convert
    monkeypatch.setattr(criteo, "convert", lambda *args: calls.append(args) or convert(*args))
    criteo.criteo(known_file, VOCAB)
    assert calls == []
    criteo.criteo(known_file, (9,) * 26)
    known_file.write_text(known_file.read_text() * 2)
    train, _ = criteo.criteo(known_file, VOCAB)
    assert len(calls) == 2 and len(train) == 4
    folders = sorted(p.name for p in (known_file.parent / "known.tsv.cache").iterdir())
    assert len(folders) == 3 and not any(name.startswith(".") for name in folders)


def test_a_malformed_file_is_one_line_and_leaves_no_cache(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("\t".join(KNOWN[0]) + "\n" + "\t".join(KNOWN[1][:30]) + "\n")
    with pytest.raises(DataError) as info:
        criteo.criteo(path, VOCAB)
    message = str(info.value)
    # pyarrow names the row when it parses on one thread ("Row #2: "), not with several
    assert re.match(rf"dataset criteo: {re.escape(str(path))} is not in Criteo's format \(CSV parse error: "
                    r"(Row #2: )?Expected 40 columns, got 30", message), message
    assert message.endswith("each line is a 0/1 label, 13 integers and 26 categorical values, tab-separated")
    assert list((tmp_path / "bad.tsv.cache").iterdir()) == []


def test_two_loads_give_identical_streamed_batches(tmp_path):
    path = write_criteo(tmp_path / "day.tsv", 20_000, seed=6)
    spec, graph = dsl.loads(clicks_spec(f"{{dataset: criteo, path: {path}}}", table=5000))
    first, second = (load_dataset(spec, graph, seed=2) for _ in range(2))
    assert isinstance(first.train, Stream) and isinstance(first.train["sparse"], np.memmap)
    assert first.train["sparse"].max() < 5000
    batches = epoch_batches(len(first.train), 512, 2, 1)
    assert len(batches) == 36
    for a, b, index in zip(first.train.iterate(batches), second.train.iterate(batches), batches):
        for column in ("dense", "sparse", "label"):
            np.testing.assert_array_equal(a[column], b[column])
            np.testing.assert_array_equal(a[column], np.asarray(first.train[column])[index])


def test_both_targets_train_alike_on_a_streamed_criteo_file(tmp_path):
    """Train and test splits streamed from the cache to each target in turn: with no dropout, the targets'
    epoch metrics agree to float32 rounding (1e-4 relative), which a different batch order or content would
    break (another seed moves the train loss by more than 1e-3)."""
    from backends.loop import TrainOptions, train

    path = write_criteo(tmp_path / "day.tsv", 6_000, seed=3)
    spec, graph = dsl.loads(clicks_spec(f"{{dataset: criteo, path: {path}}}", table=5000)
                            .replace("optimizer: adam}", "optimizer: adam, batch_size: 256, epochs: 2}"))
    lines = {}
    for name, seed in (("torch", 0), ("jax", 0), ("jax-seed1", 1)):
        out = tmp_path / name
        train(spec, graph, TrainOptions(target=name.split("-")[0], out_dir=out, progress=False, seed=seed))
        lines[name] = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for torch_line, jax_line in zip(lines["torch"], lines["jax"]):
        for key in ("train_loss", "test_loss"):
            assert jax_line[key] == pytest.approx(torch_line[key], rel=1e-4), key
    assert abs(lines["jax-seed1"][0]["train_loss"] - lines["jax"][0]["train_loss"]) > 1e-3
