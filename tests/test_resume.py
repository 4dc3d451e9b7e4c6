"""Exact resume: a run killed with SIGKILL mid-epoch and resumed ends where an uninterrupted run ends, bit for bit.

The killed run is caught with SIGSTOP right after a mid-epoch checkpoint is on disk
and then SIGKILLed, so it has always trained past its last checkpoint (steps the
resumed run must redo) and may have written a metrics line that checkpoint does not
cover (which the resume must drop). Both targets, CPU, the JAX one with its 25-step
``lax.scan`` chunks in play (``--checkpoint-every 30`` leaves room for them).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

from backends.checkpoint import CHECKPOINT, read_checkpoint
from dsl import UsageError
from tests.conftest import REPO

SPEC = "specs/digits_mlp.yaml"
RUN = ("--max-steps", "300", "--checkpoint-every", "30", "--threads", "1", "--no-progress")


def dslc_command(*args) -> list[str]:
    return [sys.executable, str(REPO / "cli.py"), *map(str, args)]


def kill_after_mid_epoch_checkpoint(command: list[str], out, min_step: int = 40, timeout: float = 120.0) -> int:
    """Starts ``command``; SIGKILLs it once its checkpoint is mid-epoch at ``min_step`` or later; returns that step."""
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            position = _position(out)
            if position and position.batch > 0 and position.step >= min_step:
                process.send_signal(signal.SIGSTOP)  # freeze it, then make sure the checkpoint still is mid-epoch
                position = _position(out)
                if position.batch > 0:
                    process.kill()
                    process.wait()
                    return position.step
                process.send_signal(signal.SIGCONT)
            time.sleep(0.002)
        raise AssertionError(f"the run ended (exit {process.poll()}) before a mid-epoch checkpoint was caught: "
                             f"{process.stderr.read().decode() if process.poll() is not None else 'timeout'}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _position(out):
    try:
        return read_checkpoint(out).position
    except UsageError:  # not written yet
        return None


def _records(out) -> list[dict]:
    skip = ("seconds", "train_samples_per_sec")
    return [{k: v for k, v in json.loads(line).items() if k not in skip}
            for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("spec", [SPEC, pytest.param("specs/gan_digits.yaml", marks=pytest.mark.slow)],
                         ids=["mlp", "gan"])  # the GAN's two optimizers (12-18 s a target here): -m slow
@pytest.mark.parametrize("target", ["torch", "jax"])
def test_killed_and_resumed_run_equals_an_uninterrupted_one_bit_for_bit(tmp_path, target, spec):
    """The GAN adds two models with an optimizer each, two steps per batch and noise drawn per epoch."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = subprocess.Popen(dslc_command("train", spec, "--target", target, "--out", whole, *RUN), cwd=REPO,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    step = kill_after_mid_epoch_checkpoint(dslc_command("train", spec, "--target", target, "--out", killed, *RUN),
                                           killed)
    assert 40 <= step < 300
    resumed = subprocess.run(dslc_command("train", "--resume", killed, "--threads", "1", "--no-progress"), cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {killed} at step {step}" in resumed.stdout
    assert reference.wait(timeout=300) == 0, reference.stderr.read().decode()
    for name in (CHECKPOINT, "weights.safetensors"):  # weights, and in the checkpoint the optimizer state too
        a, b = load_file(whole / name), load_file(killed / name)
        assert a.keys() == b.keys() and any(k.startswith("optimizer.") for k in load_file(whole / CHECKPOINT))
        for key in a:
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), f"{name}: {key} differs"
    resumed_records, whole_records = _records(killed), _records(whole)
    assert [r["epoch"] for r in resumed_records] == [r["epoch"] for r in whole_records]  # no epoch twice
    for a, b in zip(resumed_records, whole_records):  # the resumed epoch's loss sum is carried over, but the
        assert a == pytest.approx(b, rel=1e-6)  # float32 steps' losses are summed in other groups: 7th digit
    assert_same_tensorboard_scalars(killed, whole)
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["steps"] == 300 and summary["resumed_at_step"] == step
    assert read_checkpoint(killed).position.step == 300


def assert_same_tensorboard_scalars(resumed, whole) -> None:
    """TensorBoard's reader sees each step of each tag once (the stopped run's steps past its checkpoint purged),
    with the uninterrupted run's values; the wall-clock ones (speed, seconds) at the same steps."""
    from tests.helpers import tensorboard_scalars

    a, b = tensorboard_scalars(resumed / "tensorboard"), tensorboard_scalars(whole / "tensorboard")
    assert a.keys() == b.keys() and "train/running_loss" in a  # --checkpoint-every 30: mid-epoch running means
    for tag in a.keys() - {"speed/train_samples_per_sec"}:
        assert [step for step, _ in a[tag]] == [step for step, _ in b[tag]], tag
    for tag in a.keys() - {"speed/train_samples_per_sec", "seconds"}:
        assert [v for _, v in a[tag]] == pytest.approx([v for _, v in b[tag]], rel=1e-6), tag


def test_jax_scan_chunks_and_single_steps_reach_identical_weights():
    """Resume regroups steps (a warm-up step, then chunks cut at checkpoints); on CPU the grouping changes nothing."""
    import jax
    import jax.numpy as jnp

    import dsl
    from backends.data import epoch_batches, load_dataset
    from backends.weights import init_weights
    from tests.helpers import make_trainer

    spec, graph = dsl.load(REPO / SPEC)
    data = load_dataset(spec, graph)
    batches = epoch_batches(len(data.train), 32, 0, 1)
    results = []
    for scanned in (True, False):
        target = make_trainer("jax", spec, graph)
        target.load_state(init_weights(graph, 0))
        train = target.put(data.train.columns)
        target.compile(train, target.put(data.test.columns), [32, 29], 360)
        target._compiled.pop(("loop", 32), None)
        if scanned:  # whatever the timing trial chose
            shape = jax.ShapeDtypeStruct((target.steps_per_call, 32), jnp.int32)
            target._compiled["loop", 32] = target._train_loop.lower(target.state, train, shape).compile()
        for chunk in (batches[:1], batches[1:26], batches[26:]):
            target.train_steps(train, chunk)
        results.append({**target.export_state(), **target.export_optimizer_state()})
    for key in results[0]:
        assert np.array_equal(results[0][key], results[1][key]), key


def test_checkpoint_keeps_weights_optimizer_state_and_position(tmp_path):
    from backends.checkpoint import Position, RunConfig, check_spec, save_checkpoint, spec_sha256
    from backends.optimizer_state import STEP, step_array

    text = (REPO / SPEC).read_text()
    weights = {"fc1.weight": np.ones((128, 64), np.float32), "fc1.bias": np.zeros(128, np.float32),
               "fc2.weight": np.ones((10, 128), np.float32), "fc2.bias": np.zeros(10, np.float32),
               "bn.num_batches_tracked": np.array(7, np.int64)}  # a buffer: 0-d int64 stays so
    optimizer = {STEP: step_array(12), "optimizer.fc2.bias.step": np.array(12.0, np.float32)}
    run = RunConfig("digits_mlp", str(REPO / SPEC), spec_sha256(text), "torch", 3, None, 12, None, 0.5, None, "data",
                    train_examples=1437, total_steps=12)
    position = Position(12, 0, 12, {"loss": 1.5, "accuracy": 3.0}, 384, 2.0)
    save_checkpoint(tmp_path, weights, optimizer, run, position, text)
    header = read_checkpoint(tmp_path)
    assert header.tensors == {} and header.run == run and header.position.batch == 12
    full = read_checkpoint(tmp_path, tensors=True)
    assert full.tensors.keys() == weights.keys() | optimizer.keys()
    assert full.tensors["bn.num_batches_tracked"].shape == () and full.tensors[STEP].dtype == np.int64
    assert check_spec(full, tmp_path, None) == (text, str(REPO / SPEC))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_resume_drops_metrics_lines_its_checkpoint_does_not_cover(tmp_path):
    """Killed between an epoch's metrics line and its checkpoint, or in mid-write: those lines go, the epoch reruns."""
    from types import SimpleNamespace

    from backends.checkpoint import Checkpoint, Position, RunConfig
    from backends.loop import _restore
    from backends.run_log import RunLog

    lines = [json.dumps({"epoch": e, "train_loss": 1.0 / e}) for e in (1, 2, 3)] + ['{"epoch": 4, "tra']
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines))
    loaded = []
    target = SimpleNamespace(load_state=loaded.append, load_optimizer_state=loaded.append)
    graph = SimpleNamespace(state_dict_spec=lambda: {"w": None})
    run = RunConfig("m", None, None, "jax", 0, None, None, None, None, None, "data")
    checkpoint = Checkpoint(run, Position(step=70, epochs_done=2, batch=5), None, {"w": 1, "optimizer.step": 2})
    assert _restore(target, graph, checkpoint).step == 70
    assert loaded == [{"w": 1}, {"optimizer.step": 2}]
    RunLog(tmp_path, resumed=checkpoint.position).close()
    assert [json.loads(line)["epoch"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2]
