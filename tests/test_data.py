"""The data pipeline: seeded order identical for every target, real offline digits, MNIST files on disk."""

import struct
from pathlib import Path

import numpy as np
import pytest

import dsl
from backends.data import epoch_batches, eval_batches, load_dataset
from backends.data.sources import digits


def test_epoch_order_depends_on_seed_and_epoch_only():
    a = epoch_batches(1000, 64, seed=3, epoch=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, epoch_batches(1000, 64, seed=3, epoch=1)))
    assert not np.array_equal(a[0], epoch_batches(1000, 64, seed=3, epoch=2)[0])
    assert not np.array_equal(a[0], epoch_batches(1000, 64, seed=4, epoch=1)[0])
    assert [len(b) for b in a] == [64] * 15 + [40]
    assert np.array_equal(np.sort(np.concatenate(a)), np.arange(1000))


def test_epoch_order_is_pinned():
    """The order a run trains in is part of its checkpoint's meaning: it must never change between versions."""
    first = epoch_batches(1437, 32, seed=0, epoch=1)
    assert first[0][:6].tolist() == PINNED_FIRST_BATCH
    assert len(first) == 45 and len(first[-1]) == 29


PINNED_FIRST_BATCH = [708, 84, 587, 1070, 12, 387]  # measured before ranks existed


@pytest.mark.parametrize("world", [1, 2, 3, 4, 7])
def test_ranks_take_contiguous_shards_of_the_same_global_batches(world):
    whole = epoch_batches(1000, 64, seed=3, epoch=2)
    shards = [epoch_batches(1000, 64, seed=3, epoch=2, rank=r, world=world) for r in range(world)]
    assert all(len(s) == len(whole) for s in shards)
    for b, batch in enumerate(whole):
        parts = [s[b] for s in shards]
        assert np.array_equal(np.concatenate(parts), batch)  # in rank order, nothing dropped or repeated
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
        assert [len(p) for p in parts] == sorted((len(p) for p in parts), reverse=True)  # extras go to low ranks


def test_rank_zero_of_one_is_todays_order_and_a_tiny_last_batch_leaves_ranks_empty():
    assert all(np.array_equal(a, b) for a, b in zip(epoch_batches(100, 8, 1, 1), epoch_batches(100, 8, 1, 1, 0, 1)))
    last = [epoch_batches(10, 8, 0, 1, rank=r, world=4)[-1] for r in range(4)]  # global last batch: 2 examples
    assert [len(x) for x in last] == [1, 1, 0, 0]
    with pytest.raises(ValueError, match="rank must lie in 0..world-1"):
        epoch_batches(10, 8, 0, 1, rank=2, world=2)


def test_eval_batches_pad_to_one_shape_and_mask_the_padding():
    index, mask = eval_batches(10, 4)
    assert index.shape == mask.shape == (3, 4)
    assert mask.sum() == 10 and mask[-1].tolist() == [1, 1, 0, 0]
    assert index[mask > 0].tolist() == list(range(10))


def test_digits_is_a_fixed_stratified_80_20_split_of_sklearn_pixels_scaled_to_unit_range():
    source = digits()
    assert source.train["image"].shape == (1437, 1, 8, 8) and source.test["image"].shape == (360, 1, 8, 8)
    assert source.train["image"].min() == 0.0 and source.train["image"].max() == 16.0  # as load_digits stores them
    spec, graph = dsl.loads(Path("specs/digits_mlp.yaml").read_text().replace("  normalize:", "#"))
    scaled = load_dataset(spec, graph).train["input"]  # no normalize: the transform only scales
    assert scaled.dtype == np.float32 and scaled.min() == 0.0 and scaled.max() == 1.0
    labels = source.train["label"], source.test["label"]
    train_share = np.bincount(labels[0]) / np.bincount(np.concatenate(labels))
    assert np.all(np.abs(train_share - 0.8) < 0.02)
    assert np.array_equal(digits().test["label"], source.test["label"])


def test_spec_normalization_is_applied():
    spec, graph = dsl.load("specs/digits_cnn.yaml")
    data = load_dataset(spec, graph, seed=123)
    np.testing.assert_allclose(data.train["input"], (digits().train["image"] / 16 - 0.5) / 0.5)


def test_a_dataset_that_does_not_fit_the_model_is_a_located_error():
    spec, graph = dsl.load("specs/mnist_cnn.yaml")
    with pytest.raises(dsl.SpecError, match=r"dataset digits has examples of shape \[N, 1, 8, 8\] but "
                                            r"input.shape is \[N, 1, 28, 28\]") as err:
        load_dataset(spec, graph, name="digits")
    assert (err.value.location.line, err.value.location.col) == (13, 12)


def test_synthetic_data_is_seeded_and_learnable_targets():
    spec, graph = dsl.load("specs/digits_mlp.yaml")
    a = load_dataset(spec, graph, name="synthetic", seed=1)
    b = load_dataset(spec, graph, name="synthetic", seed=1)
    assert np.array_equal(a.train["input"], b.train["input"]) and np.array_equal(a.test["fc2"], b.test["fc2"])
    assert len(a.train) == 2048 and len(a.test) == 512
    assert len(np.unique(a.train["fc2"])) == 10


def write_idx(folder, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{prefix}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 2051, len(images), 28, 28) + images.astype(np.uint8).tobytes())
    with open(folder / f"{prefix}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def make_mnist_files(root, name="MNIST", train=96, test=32):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", train), ("t10k", test)):
        write_idx(root / name / "raw", prefix, rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n))


@pytest.mark.parametrize("dataset, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_format_files_on_disk_are_read_through_torchvision(tmp_path, dataset, folder):
    make_mnist_files(tmp_path, folder)
    spec, graph = dsl.load("specs/mnist_mlp.yaml")
    data = load_dataset(spec, graph, data_dir=tmp_path, name=dataset)
    x, y = graph.inputs[0][0], graph.outputs[0][0]
    assert data.train[x].shape == (96, 1, 28, 28) and data.test[x].shape == (32, 1, 28, 28)
    assert data.train[x].min() >= -1.0 and data.train[x].max() <= 1.0  # (x/255 - 0.5) / 0.5
    raw = np.frombuffer((tmp_path / folder / "raw" / "t10k-labels-idx1-ubyte").read_bytes()[8:], np.uint8)
    assert np.array_equal(data.test[y], raw)


def test_missing_mnist_offline_says_where_to_put_the_files(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tv_mnist

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", offline)
    spec, graph = dsl.load("specs/mnist_cnn.yaml")
    with pytest.raises(dsl.DataError) as err:
        load_dataset(spec, graph, data_dir=tmp_path / "data")
    assert str(err.value).startswith(f"mnist is not in {tmp_path}/data/MNIST/raw and could not be downloaded "
                                     "(no network?); put train-images-idx3-ubyte, train-labels-idx1-ubyte, ")
    assert not (tmp_path / "data").exists()  # the folders the attempt made are gone again

