"""The non-finite guard (``backends/guard.py``): a diverging run stops with one line and exit 1, writes nothing
from its broken state, and names the step and layer found by replaying from its last good state; a healthy run
trains bit for bit as it does unguarded.

The diverging spec is digits_mlp with SGD at lr 1e6: its weights grow about 1e5-fold a
step until a layer's output overflows float32. Both targets diverge at the same step
and name the same layer (the replay probes with the same per-layer capture ``dslc
check`` uses).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import cli
import dsl
from backends.checkpoint import CHECKPOINT, read_checkpoint
from backends.data import epoch_batches
from backends.guard import Guard, first_nonfinite, first_nonfinite_sum, layer_of
from backends.loop import TrainOptions, train
from backends.parity import make_batch
from backends.target import make_target
from backends.weights import init_weights, load_weights
from dsl.objectives import resolve_objective
from tests.conftest import REPO
from tests.test_stream import npy_spec, write_digits

ADVICE = "lower the learning rate or clip gradients (train.clip_grad_norm)"


def diverging_spec(folder, spec: str = "specs/digits_mlp.yaml", optimizer: str = "{adam: {lr: 0.001}}"):
    """The spec with SGD at lr 1e6 in place of its optimizer, written to ``folder``."""
    text = (REPO / spec).read_text()
    assert f"optimizer: {optimizer}" in text
    path = folder / "diverging.yaml"
    path.write_text(text.replace(f"optimizer: {optimizer}", "optimizer: {sgd: {lr: 1000000.0}}"))
    return path


def dslc(capsys, *args) -> tuple[int, str, list[str]]:
    """``cli.main`` in this process: its exit status, its stdout and its stderr lines."""
    status = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err.splitlines()


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_a_diverging_run_stops_at_the_step_and_layer_and_keeps_its_last_checkpoint(tmp_path, capsys, target):
    """A checkpoint every step: the one of step 5 is the last good state, the replay finds step 6's fc2 output
    infinite; nothing else is written, and the checkpoint still loads and evaluates."""
    spec, out = diverging_spec(tmp_path), tmp_path / "run"
    status, _, err = dslc(capsys, "train", spec, "--target", target, "--max-steps", "10", "--checkpoint-every", "1",
                          "--out", out, "--no-progress")
    assert status == 1
    assert err == [f"error: training diverged at step 6 (epoch 1): layer 'fc2' (linear) output is inf; the last good "
                   f"checkpoint is {out / CHECKPOINT} (step 5); {ADVICE}"]
    checkpoint = read_checkpoint(out, tensors=True)
    assert (checkpoint.position.step, checkpoint.position.epochs_done) == (5, 0)
    assert all(np.isfinite(v).all() for v in checkpoint.tensors.values())
    assert not (out / "weights.safetensors").exists() and (out / "metrics.jsonl").read_text() == ""
    status, printed, _ = dslc(capsys, "eval", spec, "--target", target, "--weights", out / CHECKPOINT)
    assert status == 0 and 0.0 <= json.loads(printed)["test_accuracy"] <= 1.0  # its loss overflows: weights ~1e18


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_the_run_keeps_its_last_epoch_and_names_the_layer_a_loss_overflowed_from(tmp_path, capsys, target):
    """One step an epoch (the whole split as a batch): epochs 1-4 are recorded, step 5's loss is infinite from
    finite outputs; the epoch-4 checkpoint and weights evaluate to exactly the test loss the run recorded."""
    spec, out = diverging_spec(tmp_path), tmp_path / "run"
    status, _, err = dslc(capsys, "train", spec, "--target", target, "--epochs", "10", "--batch-size", "1437",
                          "--out", out, "--no-progress")
    assert status == 1 and len(err) == 1
    assert err[0].startswith("error: training diverged at step 5 (epoch 5): the loss is inf though every output is "
                             "finite (layer 'fc2' reaches ")
    assert err[0].endswith(f"); the last good checkpoint is {out / CHECKPOINT} (step 4); {ADVICE}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert read_checkpoint(out).position.step == 4
    graph = dsl.load(spec)[1]
    weights = load_weights(out / "weights.safetensors", graph)
    saved = read_checkpoint(out, tensors=True).weights(graph)
    assert all(np.array_equal(saved[k], v) for k, v in weights.items())
    status, printed, _ = dslc(capsys, "eval", spec, "--target", target, "--weights", out / CHECKPOINT)
    evaluated = json.loads(printed)
    assert status == 0
    assert np.isfinite(evaluated["test_loss"])
    assert evaluated["test_loss"] == pytest.approx(records[-1]["test_loss"], rel=1e-6)


def test_a_gan_names_the_phase_whose_step_diverged(tmp_path, capsys):
    """The generator step runs after the discriminator step updated its model in the same batch: the replay
    probes it from that state, so it is named though the step's probe before the discriminator step was finite."""
    spec = diverging_spec(tmp_path, "specs/gan_digits.yaml", "{adam: {lr: 0.0002, betas: [0.5, 0.999]}}")
    status, _, err = dslc(capsys, "train", spec, "--target", "torch", "--epochs", "1", "--out", tmp_path / "run",
                          "--no-progress")
    assert status == 1
    assert err == [f"error: training diverged at step 4 (epoch 1): layer 'generator.fc2' (linear) output is inf in "
                   f"the generator step; it diverged before the first checkpoint of {tmp_path / 'run'}; {ADVICE}"]


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_a_healthy_run_trains_bit_for_bit_as_without_the_guard(tmp_path, monkeypatch, target):
    """60 steps: an epoch of 45 and 15 more, a mid-epoch checkpoint at step 30 (the guard reads each chunk's sums
    and checks the state before every write): weights, checkpoint and metrics equal those of the same run with
    the guard's checks off."""
    spec, graph = dsl.load(REPO / "specs/digits_mlp.yaml")
    runs = {}
    for guarded in (True, False):
        if not guarded:
            monkeypatch.setattr(Guard, "check_sums", lambda self, sums, step: None)
            monkeypatch.setattr(Guard, "check_state", lambda self, weights, optimizer, step: None)
        out = tmp_path / str(guarded)
        train(spec, graph, TrainOptions(target=target, out_dir=out, progress=False, max_steps=60, checkpoint_every=30))
        runs[guarded] = (load_weights(out / "weights.safetensors", graph), read_checkpoint(out, tensors=True),
                         [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "train_samples_per_sec")}
                          for line in (out / "metrics.jsonl").read_text().splitlines()])
    (weights, checkpoint, records), (weights_off, checkpoint_off, records_off) = runs[True], runs[False]
    assert all(np.array_equal(weights[k], weights_off[k]) for k in weights_off)
    assert checkpoint.tensors.keys() == checkpoint_off.tensors.keys()
    assert all(np.array_equal(checkpoint.tensors[k], v) for k, v in checkpoint_off.tensors.items())
    assert records == records_off and len(records) == 2


def test_a_streamed_run_is_replayed_from_its_files(tmp_path, capsys):
    """``data.stream``: the replay gathers its host batches from the memory-mapped split, as training did."""
    write_digits(tmp_path / "d")
    (spec, graph), out = npy_spec(tmp_path / "d", True, diverging_spec(tmp_path)), tmp_path / "run"
    with pytest.raises(dsl.DivergedError, match=r"^training diverged at step 6 \(epoch 1\): layer 'fc2' \(linear\) "
                       r"output is inf; the last good checkpoint is .* \(step 5\)"):
        train(spec, graph, TrainOptions(target="torch", out_dir=out, progress=False, max_steps=10,
                                        checkpoint_every=1))


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_a_probe_draws_the_dropout_masks_of_the_step_it_probes(target):
    """The replay probes a step before taking it; with dropout (p 0.5) its loss is the step's own only if it
    draws that step's masks (a function of seed and step), step after step."""
    text = (REPO / "specs/digits_mlp.yaml").read_text().replace("  - relu\n", "  - relu\n  - dropout: {p: 0.5}\n")
    spec, graph = dsl.loads(text)
    objective = resolve_objective(spec, graph)
    model = make_target(target, graph, spec.train, objective=objective)
    model.load_state(init_weights(graph, 0))
    batch = make_batch(graph, objective, 32, "float32", np.random.default_rng(0))
    data, rows = model.put(batch), np.arange(32, dtype=np.int32)
    for _ in range(3):
        probed, _ = model.loss_and_grads(batch)
        unmasked, _ = model.loss_and_grads(batch, train=False)  # what other masks would be off by: > 1e-3
        assert abs(unmasked - probed) > 1e-3 * probed
        assert float(model.train_steps(data, [rows])["loss"]) / 32 == pytest.approx(probed, rel=1e-6)


def test_a_nan_in_the_data_is_named_as_the_data(tmp_path):
    """One training example holds NaN: the run stops at the step whose batch has it, and says so."""
    write_digits(tmp_path / "d")
    x = np.load(tmp_path / "d/train/x.npy")
    x[123] = np.nan
    np.save(tmp_path / "d/train/x.npy", x)
    step = next(k for k, rows in enumerate(epoch_batches(len(x), 32, 0, 1), start=1) if 123 in rows)
    spec, graph = npy_spec(tmp_path / "d", False)
    with pytest.raises(dsl.DivergedError, match=rf"^training diverged at step {step} \(epoch 1\): the batch's column "
                       r"'input' holds nan \(in the data\); it diverged before the first checkpoint"):
        train(spec, graph, TrainOptions(target="torch", out_dir=tmp_path / "run", progress=False, epochs=1))


def test_what_is_not_finite_is_named_by_its_layer():
    assert first_nonfinite({"fc1.weight": np.ones(3), "fc2.bias": np.array([0.0, np.nan])}) == ("fc2.bias", "nan")
    grads = {"fc1.weight": np.array([np.nan]), "fc2.weight": np.array([-np.inf])}
    assert first_nonfinite(grads, last=True) == ("fc2.weight", "-inf")  # the backward pass's first
    assert first_nonfinite({"bn.num_batches_tracked": np.array(7), "y": np.array([3])}) is None
    assert layer_of("fc2.bias") == "layer 'fc2' (fc2.bias)"
    assert layer_of("optimizer.enc.fc1.weight.exp_avg_sq") == "layer 'enc.fc1' (optimizer.enc.fc1.weight.exp_avg_sq)"
    assert first_nonfinite_sum({"loss": np.float32(2.5), "accuracy": 30.0}) is None
    assert first_nonfinite_sum({"loss": 1.0, "d_loss": float("-inf")}) == ("d_loss", "-inf")


@pytest.mark.slow  # two worker processes: 30-40 s on a 2-core machine
def test_a_data_parallel_run_stops_on_every_rank_and_says_how_to_name_the_layer(tmp_path):
    """Every rank sees the same global sums and stops at the same chunk; exit 1 through the launcher."""
    spec, out = diverging_spec(tmp_path), tmp_path / "run"
    done = subprocess.run([sys.executable, "cli.py", "train", str(spec), "--target", "torch", "--nproc", "2",
                           "--threads", "1", "--checkpoint-every", "2", "--epochs", "1", "--out", str(out),
                           "--no-progress"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: training diverged at or before step 6 (epoch 1): the training loss is nan; the last good checkpoint "
        f"is {out / CHECKPOINT} (step 4); rerun in one process (no --nproc) to name the step and layer; {ADVICE}"]
