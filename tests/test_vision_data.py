"""Vision datasets (cifar10, npz, image_folder) and the spec's augmentations (data.augment).

CIFAR-10 is read through torchvision from a generated folder in its format; torchvision
md5-checks every file against the real dataset's sums even without downloading, so the
test points those sums at the generated files (the check itself still runs). The
image folder holds generated PNGs and JPEGs of three shapes, which a small CNN learns.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as F
from PIL import Image

import dsl
from backends.data import epoch_split, load_dataset
from backends.data import folders as image_folders
from backends.data.augment import Augment, Step
from backends.data.sources import digits
from backends.loop import TrainOptions, train
from dsl.objectives import resolve_objective
from tests.conftest import REPO
from tests.test_stream import write_digits

CIFAR_SPEC = """\
name: cifar_linear
input: {shape: [3, 32, 32]}
model:
  - flatten
  - linear: {out_features: 10, name: logits}
data: {dataset: cifar10}
train: {loss: cross_entropy, optimizer: adam}
"""

CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_cifar(root, monkeypatch, per_batch: int = 6, test: int = 10) -> dict[str, tuple[np.ndarray, list]]:
    """cifar-10-batches-py as torchvision's CIFAR10 reads it: pickled rows of R, G, B planes, and labels."""
    import torchvision.datasets as datasets

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng, written = np.random.default_rng(0), {}
    for name in CIFAR_BATCHES:
        n = test if name == "test_batch" else per_batch
        written[name] = rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).tolist()
        (folder / name).write_bytes(pickle.dumps({"data": written[name][0], "labels": written[name][1]}))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}))

    def md5(name: str) -> str:
        return hashlib.md5((folder / name).read_bytes()).hexdigest()
    monkeypatch.setattr(datasets.CIFAR10, "train_list", [[n, md5(n)] for n in CIFAR_BATCHES[:5]])
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [["test_batch", md5("test_batch")]])
    monkeypatch.setattr(datasets.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                                   "md5": md5("batches.meta")})
    return written


def test_cifar10_is_read_through_torchvision_channels_first(tmp_path, monkeypatch):
    written = write_cifar(tmp_path, monkeypatch)
    spec, graph = dsl.loads(CIFAR_SPEC)
    data = load_dataset(spec, graph, data_dir=tmp_path)
    rows = np.concatenate([written[n][0] for n in CIFAR_BATCHES[:5]])
    assert data.train["input"].shape == (30, 3, 32, 32) and data.test["input"].shape == (10, 3, 32, 32)
    assert data.num_classes == 10
    # a stored row is the R, G and B planes in turn: exactly (3, 32, 32), so NHWC was transposed back
    np.testing.assert_array_equal(data.train["input"], rows.reshape(-1, 3, 32, 32).astype(np.float32) / 255)
    assert data.train["logits"].tolist() == sum((written[n][1] for n in CIFAR_BATCHES[:5]), [])
    assert data.test["logits"].tolist() == written["test_batch"][1]


def test_missing_cifar10_offline_says_where_to_put_the_archive(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    spec, graph = dsl.loads(CIFAR_SPEC)
    with pytest.raises(dsl.DataError) as err:
        load_dataset(spec, graph, data_dir=tmp_path / "data")
    assert str(err.value) == (f"cifar10 is not in {tmp_path}/data/cifar-10-batches-py and could not be downloaded "
                              f"(no network?); put cifar-10-python.tar.gz in {tmp_path}/data (it is unpacked there); "
                              "for an offline start, train a digits spec (specs/digits_cnn.yaml)")
    assert not (tmp_path / "data").exists()


def digits_npz(file, **replace) -> None:
    source = digits()
    arrays = {f"{k}_{split}": v for split, part in (("train", source.train), ("test", source.test))
              for k, v in (("x", (part["image"] / 16).astype(np.float32)), ("y", part["label"]))}
    arrays.update(replace)
    np.savez(file, **{k: v for k, v in arrays.items() if v is not None})


def npz_spec(file, spec="specs/digits_mlp.yaml"):
    return dsl.loads((REPO / spec).read_text().replace("  dataset: digits", f"  dataset: npz\n  path: {file}")
                     .replace("  dataset: synthetic", f"  dataset: npz\n  path: {file}"))


def test_npz_round_trip_matches_the_npy_folder(tmp_path):
    digits_npz(tmp_path / "d.npz")
    write_digits(tmp_path / "d")
    from_npz = load_dataset(*npz_spec(tmp_path / "d.npz"))
    from_npy = load_dataset(*dsl.loads((REPO / "specs/digits_mlp.yaml").read_text().replace(
        "  dataset: digits", f"  dataset: npy\n  path: {tmp_path / 'd'}")))
    assert len(from_npz.train) == 1437 and len(from_npz.test) == 360
    for split in ("train", "test"):
        for column in ("input", "fc2"):
            np.testing.assert_array_equal(getattr(from_npz, split)[column], getattr(from_npy, split)[column])


def test_npz_names_columns_by_input_and_output_for_several_inputs(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 40), ("test", 12)):
        arrays |= {f"user_{split}": rng.integers(0, 64, (n, 1)), f"features_{split}": rng.standard_normal((n, 8)),
                   f"click_{split}": rng.integers(0, 2, n)}
    np.savez(tmp_path / "t.npz", **arrays)
    data = load_dataset(*npz_spec(tmp_path / "t.npz", "specs/two_tower.yaml"))
    assert set(data.train.columns) == {"user", "features", "click"} and len(data.test) == 12
    np.testing.assert_array_equal(data.train["features"], arrays["features_train"])
    np.testing.assert_array_equal(data.test["click"], arrays["click_test"])


@pytest.mark.parametrize("replace, message", [
    ({"y_test": None}, r"d\.npz has no array y_test \(or fc2_test\); it holds x_train, y_train, x_test$"),
    ({"y_train": np.zeros(5, np.int64)}, r"d\.npz holds different numbers of examples \(x_train 1,437, "
                                         r"y_train 5\); each row is one example"),
    ({"x_train": np.zeros((1437, 64), np.float32)}, r"d\.npz: x_train holds float32 examples of shape \[64\], but "
                                                    r"input input takes float32 of shape \[1, 8, 8\]"),
    ({"x_test": np.zeros((360, 1, 8, 8), np.int64)}, r"x_test holds int64 examples of shape \[1, 8, 8\], but input "
                                                     r"input takes float32"),
], ids=["missing", "lengths", "shape", "dtype"])
def test_bad_npz_files_are_one_line_errors(tmp_path, replace, message):
    digits_npz(tmp_path / "d.npz", **replace)
    with pytest.raises(dsl.DataError, match=message) as info:
        load_dataset(*npz_spec(tmp_path / "d.npz"))
    assert "\n" not in str(info.value)


def test_a_file_that_is_not_an_npz_is_a_one_line_error(tmp_path):
    (tmp_path / "d.npz").write_text("not an archive")
    with pytest.raises(dsl.DataError, match=r"^dataset npz: .*d\.npz is not a numpy \.npz file of arrays"):
        load_dataset(*npz_spec(tmp_path / "d.npz"))


SHAPES = ("cross", "ring", "square")  # class ids 0, 1, 2: the sorted folder names


def draw_shape(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A 32x32 RGB image: one bright shape of ``kind`` at a random place on a dim noisy background."""
    image = rng.integers(0, 40, (32, 32, 3)).astype(np.uint8)
    y, x = rng.integers(2, 14, 2)
    color = rng.integers(150, 256, 3).astype(np.uint8)
    if kind == "square":
        image[y:y + 14, x:x + 14] = color
    elif kind == "ring":
        image[y:y + 16, x:x + 16] = color
        image[y + 4:y + 12, x + 4:x + 12] = 0
    else:
        image[y + 6:y + 10, x:x + 16] = color
        image[y:y + 16, x + 6:x + 10] = color
    return image


def write_shapes(root, train: int = 30, test: int = 10, classes=SHAPES):
    """``root/train/<shape>/*.png`` (every fifth a .jpg) and ``root/test/<shape>/*``."""
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("test", test)):
        for kind in classes:
            (root / split / kind).mkdir(parents=True)
            for i in range(count):
                suffix = "jpg" if i % 5 == 4 else "png"
                Image.fromarray(draw_shape(kind, rng)).save(root / split / kind / f"{i}.{suffix}")
    return root


def shapes_spec(folder, channels: int = 3, augment: str = "[]", classes: int = 3):
    return dsl.loads(f"""\
name: shapes
input: {{shape: [{channels}, 16, 16]}}
model:
  - conv2d: {{out_channels: 16, kernel_size: 3, padding: 1}}
  - relu
  - max_pool2d: {{kernel_size: 2}}
  - conv2d: {{out_channels: 16, kernel_size: 3, padding: 1}}
  - relu
  - max_pool2d: {{kernel_size: 2}}
  - flatten
  - linear: {{out_features: {classes}, name: logits}}
data: {{dataset: image_folder, path: {folder}, augment: {augment}}}
train: {{loss: cross_entropy, optimizer: {{adam: {{lr: 0.01}}}}, metrics: [accuracy], batch_size: 15, epochs: 8}}
""")


def test_image_folder_classes_come_from_sorted_folder_names(tmp_path):
    spec, graph = shapes_spec(write_shapes(tmp_path / "shapes"), channels=1)
    data = load_dataset(spec, graph, data_dir=tmp_path / "data")
    assert data.train["input"].shape == (90, 1, 16, 16) and data.test["input"].shape == (30, 1, 16, 16)
    assert data.num_classes == 3 and np.bincount(data.train["logits"]).tolist() == [30, 30, 30]
    assert data.train["logits"][:30].tolist() == [0] * 30  # cross, the first name sorted
    assert data.train["input"].max() <= 1.0 and data.train["input"].dtype == np.float32  # pixels / 255


@pytest.mark.parametrize("channels, mode", [(3, "RGB"), (1, "L")])
def test_images_are_decoded_as_torchvisions_resize_of_the_pil_image(tmp_path, channels, mode):
    folder = write_shapes(tmp_path / "shapes", train=5, test=1)
    for name in ("0.png", "4.jpg"):
        file = folder / "train" / "ring" / name
        expected = np.asarray(F.resize(Image.open(file).convert(mode), [16, 16]))
        expected = expected[None] if channels == 1 else expected.transpose(2, 0, 1)
        np.testing.assert_array_equal(image_folders.decode(file, (channels, 16, 16)), expected)


def test_image_folder_is_decoded_once_then_read_from_the_cache(tmp_path, monkeypatch):
    folder = write_shapes(tmp_path / "shapes")
    spec, graph = shapes_spec(folder)
    first = load_dataset(spec, graph, data_dir=tmp_path / "data")
    cached = sorted(p.name.split("-", 1)[1] for p in (tmp_path / "data" / "image_folder").iterdir())
    assert cached == ["test-image.npy", "test-label.npy", "train-image.npy", "train-label.npy"]

    def no_decoding(file, shape):
        raise AssertionError(f"decoded {file} again")

    monkeypatch.setattr(image_folders, "decode", no_decoding)
    second = load_dataset(spec, graph, data_dir=tmp_path / "data")
    np.testing.assert_array_equal(second.train["input"], first.train["input"])
    np.testing.assert_array_equal(second.test["logits"], first.test["logits"])
    edited = folder / "test" / "square" / "3.png"
    os.utime(edited, ns=(edited.stat().st_atime_ns, edited.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="decoded .* again"):  # a changed file changes the key
        load_dataset(spec, graph, data_dir=tmp_path / "data")


def test_image_folder_splits_need_the_same_classes_and_the_output_one_logit_each(tmp_path):
    folder = write_shapes(tmp_path / "shapes", train=2, test=1)
    spec, graph = shapes_spec(folder, classes=4)
    with pytest.raises(dsl.DataError, match=r"shapes/train has 3 class folders, but the output \[N, 4\] has 4 "
                                            r"logits; give the output one per class$"):
        load_dataset(spec, graph, data_dir=tmp_path / "data")
    (folder / "test" / "ring").rename(folder / "test" / "circle")
    with pytest.raises(dsl.DataError, match=r"shapes/test has class folders circle, cross, square but .*shapes/"
                                            r"train has cross, ring, square; every split needs the same classes$"):
        load_dataset(*shapes_spec(folder), data_dir=tmp_path / "data")


def crop_then_flip(padding: int = 4, size=None) -> Augment:
    return Augment("input", (Step("random_crop", padding=padding, size=size), Step("horizontal_flip")),
                   np.zeros(3, np.uint8))


def test_augmentation_is_a_function_of_seed_and_epoch_and_leaves_the_data_alone():
    x = np.random.default_rng(0).integers(0, 256, (64, 3, 32, 32)).astype(np.uint8)
    before, augment = x.copy(), crop_then_flip()
    np.testing.assert_array_equal(augment(x, 0, 1), augment(x, 0, 1))
    assert not np.array_equal(augment(x, 0, 1), augment(x, 0, 2))
    assert not np.array_equal(augment(x, 0, 1), augment(x, 1, 1))
    np.testing.assert_array_equal(x, before)
    flips = augment.draws(50000, (3, 32, 32), 0, 1)[1][0]
    assert abs(flips.mean() - 0.5) < 0.01  # p = 0.5


@pytest.mark.parametrize("steps", [
    (Step("random_crop", padding=4), Step("horizontal_flip")),
    (Step("horizontal_flip", p=0.7), Step("random_crop", padding=3, size=(24, 28))),
], ids=["crop-flip", "flip-smaller-crop"])
def test_crops_and_flips_are_torchvisions_functional_pad_crop_and_hflip(steps):
    x = np.random.default_rng(1).integers(0, 256, (12, 3, 32, 32)).astype(np.uint8)
    augment = Augment("input", steps, np.zeros(3, np.uint8))
    draws = augment.draws(len(x), x.shape[1:], 5, 3)
    out = augment.apply(x, draws)
    for i in range(len(x)):
        image = torch.from_numpy(x[i])
        for step, drawn in zip(steps, draws):
            if step.name == "random_crop":
                height, width = step.size or image.shape[1:]
                image = F.crop(F.pad(image, [step.padding]), int(drawn[0][i]), int(drawn[1][i]), height, width)
            elif drawn[0][i]:
                image = F.hflip(image)
        np.testing.assert_array_equal(out[i], image.numpy(), err_msg=f"example {i}")


def test_padding_is_a_zero_pixel_put_through_the_input_transform():
    """Augmenting the normalized split equals torchvision's pad-and-crop of the stored pixels, then normalizing."""
    text = (REPO / "specs/digits_cnn.yaml").read_text().replace(
        "  dataset: digits", "  dataset: digits\n  augment: [random_crop: {padding: 2}, horizontal_flip]")
    spec, graph = dsl.loads(text)
    data = load_dataset(spec, graph)
    augmented = epoch_split(data, resolve_objective(spec, graph), 7, 2)["input"]
    top, left = data.augment.draws(len(data.train), (1, 8, 8), 7, 2)[0]
    flips = data.augment.draws(len(data.train), (1, 8, 8), 7, 2)[1][0]
    raw = torch.from_numpy(digits().train["image"])
    for i in range(20):
        image = F.crop(F.pad(raw[i], [2]), int(top[i]), int(left[i]), 8, 8)
        image = F.hflip(image) if flips[i] else image
        np.testing.assert_allclose(augmented[i], (image.numpy() / 16 - 0.5) / 0.5, atol=1e-6)
    assert augmented.min() == -1.0  # padding: pixel 0 normalized


def test_a_stream_augments_each_batch_as_the_whole_split_is_augmented(tmp_path):
    write_digits(tmp_path / "d")
    splits = {}
    for stream in (False, True):
        spec, graph = dsl.loads((REPO / "specs/digits_mlp.yaml").read_text().replace(
            "  dataset: digits", f"  dataset: npy\n  path: {tmp_path / 'd'}\n  stream: {str(stream).lower()}\n"
                                 "  augment: [random_crop: {padding: 1}, horizontal_flip]"))
        splits[stream] = epoch_split(load_dataset(spec, graph), resolve_objective(spec, graph), 3, 4)
    rows = np.random.default_rng(0).permutation(1437)[:100].astype(np.int32)
    np.testing.assert_array_equal(splits[True].gather(rows)["input"], splits[False]["input"][rows])


def test_image_folder_trains_alike_on_both_targets_with_augmentation(tmp_path):
    spec, graph = shapes_spec(write_shapes(tmp_path / "shapes"),
                              augment="[random_crop: {padding: 2}, horizontal_flip]")
    records = {}
    for target in ("torch", "jax"):
        out = tmp_path / target
        train(spec, graph, TrainOptions(target=target, out_dir=out, progress=False, data_dir=tmp_path / "data"))
        records[target] = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records["torch"][-1]["test_accuracy"] >= 0.9  # chance: 1/3; seeds 0-4 measured 0.97-1.0
    for torch_epoch, jax_epoch in zip(records["torch"], records["jax"], strict=True):
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            assert jax_epoch[key] == pytest.approx(torch_epoch[key], rel=1e-5, abs=1e-6), (torch_epoch["epoch"], key)
