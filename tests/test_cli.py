"""End to end through the ``dslc`` command: train on the offline digits with both targets, swap weights, check."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from backends.data.sources import digits
from tests.conftest import REPO
from tests.test_data import make_mnist_files


def dslc(*args, check=True):
    result = subprocess.run([sys.executable, str(REPO / "cli.py"), *map(str, args)], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"dslc {' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """digits_cnn trained by each target, as the README's quickstart does."""
    runs = {}
    for target in ("jax", "torch"):
        out = tmp_path_factory.mktemp(target)
        dslc("train", "specs/digits_cnn.yaml", "--target", target, "--out", out)
        runs[target] = out
    return runs


@pytest.mark.parametrize("target", ["jax", "torch"])
def test_training_reaches_97_percent_on_digits(trained, target):
    summary = json.loads((trained[target] / "summary.json").read_text())
    records = [json.loads(line) for line in (trained[target] / "metrics.jsonl").read_text().splitlines()]
    assert summary["target"] == target and summary["epochs"] == 20 and len(records) == 20
    assert summary["test_accuracy"] >= 0.97
    assert records[0]["test_accuracy"] < summary["test_accuracy"]
    assert records[-1]["train_loss"] < records[0]["train_loss"] / 10
    for key in ("steps", "train_loss", "test_loss", "train_samples_per_sec", "compile_seconds", "wall_seconds"):
        assert summary[key] >= 0, key
    assert summary["steps"] == 20 * 45 and summary["train_samples_per_sec"] > 0
    assert (trained[target] / "weights.safetensors").stat().st_size > 67_274 * 4


def test_both_targets_learn_the_same_model_from_the_same_seed(trained):
    jax_run, torch_run = (json.loads((trained[t] / "summary.json").read_text()) for t in ("jax", "torch"))
    assert abs(jax_run["train_loss"] - torch_run["train_loss"]) < 0.1 * torch_run["train_loss"]
    assert abs(jax_run["test_accuracy"] - torch_run["test_accuracy"]) <= 0.01


@pytest.mark.parametrize("trained_by, evaluated_by", [("jax", "torch"), ("torch", "jax")])
def test_weights_move_between_targets_with_the_same_accuracy(trained, trained_by, evaluated_by):
    result = dslc("eval", "specs/digits_cnn.yaml", "--target", evaluated_by,
                  "--weights", trained[trained_by] / "weights.safetensors")
    evaluated = json.loads(result.stdout)
    summary = json.loads((trained[trained_by] / "summary.json").read_text())
    assert evaluated["examples"] == 360
    assert abs(evaluated["test_accuracy"] - summary["test_accuracy"]) <= 0.002
    assert evaluated["test_loss"] == pytest.approx(summary["test_loss"], rel=1e-4)


def test_predict_gives_the_same_outputs_on_both_targets(trained, tmp_path):
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    weights = trained["jax"] / "weights.safetensors"
    outputs = {}
    for target in ("jax", "torch"):
        dslc("predict", "specs/digits_cnn.yaml", "--target", target, "--weights", weights, "--transformed",
             "--input", tmp_path / "x.npy", "--output", tmp_path / f"{target}")  # written as named, no .npy added
        outputs[target] = np.load(tmp_path / f"{target}")
    assert outputs["jax"].shape == (5, 10)
    np.testing.assert_allclose(outputs["jax"], outputs["torch"], rtol=0, atol=1e-5 * np.abs(outputs["torch"]).max())


@pytest.mark.parametrize("target", ["jax", "torch"])
def test_predict_on_raw_digits_matches_eval_accuracy_exactly(trained, tmp_path, target):
    """Raw pixels (0..16, as sklearn stores them) get training's transform: argmax accuracy equals ``dslc eval``'s."""
    test = digits().test
    np.save(tmp_path / "raw.npy", test["image"])
    weights = trained[target] / "weights.safetensors"
    args = ("predict", "specs/digits_cnn.yaml", "--target", target, "--weights", weights, "--input",
            tmp_path / "raw.npy")
    dslc(*args, "--output", tmp_path / "logits.npy")
    accuracy = float((np.load(tmp_path / "logits.npy").argmax(1) == test["label"]).mean())
    evaluated = json.loads(dslc("eval", "specs/digits_cnn.yaml", "--target", target, "--weights", weights).stdout)
    assert accuracy == evaluated["test_accuracy"] and accuracy >= 0.97
    transformed = ((test["image"] / 16 - 0.5) / 0.5).astype(np.float32)  # digits_cnn's normalize: mean 0.5, std 0.5
    np.save(tmp_path / "transformed.npy", transformed)
    dslc(*args[:-1], tmp_path / "transformed.npy", "--transformed", "--output", tmp_path / "same.npy")
    np.testing.assert_allclose(np.load(tmp_path / "same.npy"), np.load(tmp_path / "logits.npy"), rtol=0, atol=1e-5)


def test_predict_reads_named_inputs_of_two_dtypes_from_an_npz(tmp_path, capsys):
    """two_tower's int64 user ids and float features, by name, through the command line on both targets (in this
    process: ``cli.main``), against the torch module called directly."""
    import torch

    import cli
    import dsl
    from backends.torch import build_module
    from backends.weights import init_weights, save_weights

    spec, graph = dsl.load(REPO / "specs/two_tower.yaml")
    state = init_weights(graph, seed=0)
    save_weights(tmp_path / "w.safetensors", state)
    rng = np.random.default_rng(0)
    user, features = rng.integers(0, 64, (7, 1)), rng.standard_normal((7, 8))  # int64 and float64 as numpy makes them
    np.savez(tmp_path / "x.npz", features=features, user=user)  # any order: arrays go by name
    with torch.no_grad():
        expected = build_module(graph, state)(torch.from_numpy(user), torch.from_numpy(features).float()).numpy()
    for target in ("jax", "torch"):
        assert cli.main(["predict", str(REPO / "specs/two_tower.yaml"), "--target", target, "--weights",
                         str(tmp_path / "w.safetensors"), "--input", str(tmp_path / "x.npz"), "--output",
                         str(tmp_path / f"{target}.npy")]) == 0
        assert "[7, 2] float32" in capsys.readouterr().out
        np.testing.assert_allclose(np.load(tmp_path / f"{target}.npy"), expected, rtol=1e-5, atol=1e-6)


def test_summary_reports_the_parameter_counts():
    assert "693,962" in dslc("summary", "specs/mnist_cnn.yaml").stdout
    assert "101,770" in dslc("summary", "specs/mnist_mlp.yaml").stdout


def test_validate_and_schema():
    assert dslc("validate", "specs/digits_cnn.yaml").stdout.strip().endswith("67,274 parameters)")
    schema = json.loads(dslc("schema").stdout)
    assert {"name", "input", "model", "data", "train"} <= set(schema["properties"])
    assert "conv2d" in json.dumps(schema["properties"]["model"])


def test_check_passes_and_prints_its_tolerances():
    result = dslc("check", "specs/digits_mlp.yaml", "--steps", "5")
    assert "PASS" in result.stdout and "gradients 1e-02" in result.stdout and "own float32 noise" in result.stdout


def test_max_steps_and_overrides(tmp_path):
    dslc("train", "specs/digits_mlp.yaml", "--target", "torch", "--max-steps", "7", "--batch-size", "16",
         "--lr", "0.01", "--seed", "2", "--out", tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 7 and summary["batch_size"] == 16 and summary["epochs"] == 1


def test_train_on_mnist_files_from_data_dir(tmp_path):
    make_mnist_files(tmp_path / "data")
    dslc("train", "specs/mnist_mlp.yaml", "--target", "jax", "--epochs", "2", "--data-dir", tmp_path / "data",
         "--out", tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["dataset"] == "mnist" and summary["steps"] == 2 * 2


def test_user_errors_exit_2_with_one_line(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"junk")
    result = dslc("eval", "specs/digits_cnn.yaml", "--weights", tmp_path / "w.safetensors", check=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "not a safetensors file" in result.stderr and "Traceback" not in result.stderr
    np.save(tmp_path / "x.npy", np.zeros((2, 3)))
    result = dslc("predict", "specs/digits_mlp.yaml", "--weights", tmp_path / "w.safetensors",
                  "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr


@pytest.mark.slow
def test_torch_compile_trains_the_same_model(tmp_path):
    """``--compile`` (torch.compile, ~25 s to compile on 2 cores) changes speed, not results."""
    for flag, out in (((), "eager"), (("--compile",), "compiled")):
        dslc("train", "specs/digits_cnn.yaml", "--target", "torch", "--epochs", "2", "--out", tmp_path / out, *flag)
    eager, compiled = (json.loads((tmp_path / out / "summary.json").read_text()) for out in ("eager", "compiled"))
    assert compiled["compile_seconds"] > 0 and eager["compile_seconds"] == 0
    assert compiled["train_loss"] == pytest.approx(eager["train_loss"], rel=1e-4)
    assert compiled["test_accuracy"] == pytest.approx(eager["test_accuracy"], abs=0.003)


def test_version():
    result = dslc("--version")
    assert result.stdout.startswith("dslc ") and result.stdout.split()[1][0].isdigit()


def test_a_warning_is_one_located_line_and_validation_still_passes(tmp_path):
    """The keras.io convnet habit: softmax as the last layer, then cross_entropy."""
    spec = (REPO / "specs" / "digits_mlp.yaml").read_text().replace(
        "  - linear: {out_features: 10, name: fc2}\n", "  - linear: {out_features: 10, name: fc2}\n  - softmax\n")
    (tmp_path / "keras.yaml").write_text(spec)
    result = dslc("validate", tmp_path / "keras.yaml")
    line = spec.splitlines().index("  - softmax") + 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"{tmp_path / 'keras.yaml'}:{line}:5: warning: ")
    assert "softmax_1 (softmax) feeds cross_entropy" in result.stderr and "ok" in result.stdout


def test_saved_files_follow_the_umask(tmp_path):
    """summary.json and the weights were 0600 (mkstemp) while metrics.jsonl was 0644."""
    code = ("import os, sys, cli; os.umask(0o027); "
            f"sys.exit(cli.main(['train', 'specs/digits_mlp.yaml', '--max-steps', '1', '--out', r'{tmp_path / 'r'}']))")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, timeout=300)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "r").iterdir()}
    assert modes == {"summary.json": 0o640, "metrics.jsonl": 0o640, "weights.safetensors": 0o640,
                     "checkpoint.safetensors": 0o640, "tensorboard": 0o750}
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "r" / "tensorboard").iterdir()} == {0o640}


def test_plot_draws_the_torch_and_the_jax_run_in_a_png_of_the_stated_size(trained, tmp_path):
    from tests.test_run_log import png_size

    out = tmp_path / "curves.png"
    result = dslc("plot", trained["torch"], trained["jax"], "--out", out, "--size", "900x600")
    assert result.stdout == f"wrote {out}: 2 runs, 900x600 pixels (loss, accuracy)\n"
    assert png_size(out) == (900, 600)


@pytest.mark.parametrize("target", ["jax", "torch"])
def test_tensorboard_reads_every_epoch_of_metrics_jsonl(trained, target):
    """tensorboard's own reader: each number of each record at its optimizer step, as a float32."""
    from backends.run_log import board_scalars
    from tests.helpers import tensorboard_scalars

    records = [json.loads(line) for line in (trained[target] / "metrics.jsonl").read_text().splitlines()]
    scalars = tensorboard_scalars(trained[target] / "tensorboard")
    assert {"train/loss", "train/accuracy", "test/loss", "test/accuracy", "epoch"} <= scalars.keys()
    for tag in scalars.keys() - {"train/running_loss", "train/running_accuracy"}:  # a 30 s checkpoint may add these
        expected = [(r["steps"], np.float32(board_scalars(r)[tag])) for r in records if tag in board_scalars(r)]
        assert scalars[tag] == expected, tag
    assert [step for step, _ in scalars["train/loss"]] == [45 * e for e in range(1, 21)]


def test_eval_takes_the_checkpoint_file_as_weights(trained):
    """checkpoint.safetensors holds the weights plus optimizer.* entries; eval and predict accept it."""
    from_checkpoint = json.loads(dslc("eval", "specs/digits_cnn.yaml", "--target", "torch", "--weights",
                                      trained["torch"] / "checkpoint.safetensors").stdout)
    summary = json.loads((trained["torch"] / "summary.json").read_text())
    assert from_checkpoint["test_accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-9)


@pytest.mark.parametrize("flag, expected", [((), None), (("--threads", "1"), "1")])
def test_threads_are_set_before_a_framework_loads(flag, expected):
    """Without --threads, the default is the cores this process may use (it once stayed the frameworks' own)."""
    from backends.threads import available_cores

    code = ("import os, sys, cli; cli.main(['eval', 'specs/digits_cnn.yaml', '--weights', 'missing.safetensors', "
            f"*{list(flag)!r}]); print(os.environ['PJRT_NPROC'], os.environ['OMP_NUM_THREADS'])")
    env = {k: v for k, v in os.environ.items() if k not in ("PJRT_NPROC", "OMP_NUM_THREADS", "DSLC_THREADS")}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.split() == [expected or str(available_cores())] * 2, result.stderr
