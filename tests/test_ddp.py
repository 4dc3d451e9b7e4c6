"""torch data parallel (``--nproc``): 2 DDP workers, launched as ``dslc train`` does, against the 1-process run.

The 2-worker runs are real subprocesses (``cli.py train --nproc 2``, gloo on CPU); the
1-process references train in this process. In float32 the two differ only by the
order of the gradient sums (two shards' GEMMs added by DDP instead of one), which
Adam's normalized steps carry into the weights. Measured: digits_mlp, batch 65, one
epoch (23 steps): train and test loss within 1e-7 relative; digits_bn_cnn with
sync_batch_norm, 20 steps: within 3e-7 (batch 32 for 20 steps, not tested here: test
loss 1.2e-5 relative, weights after 3 steps within 7e-9). Wall time on a 2-core machine
with a load of 5: 46 s and 32 s for the two DDP tests (2-worker runs fork from a
launcher that imported torch once).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import dsl
from backends.checkpoint import CHECKPOINT, read_checkpoint
from backends.loop import TrainOptions, evaluate, train
from backends.runs import RUN_FILES
from backends.weights import load_weights

REL = 1e-5


def _workers(repo: Path, spec: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(_workers_command(spec, out, *flags), cwd=repo, capture_output=True, text=True, timeout=300)


def _one_process(spec: Path, out: Path, **overrides) -> dict:
    parsed, graph = dsl.load(spec)
    return train(parsed, graph, TrainOptions(target="torch", out_dir=out, progress=False, **overrides))


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def _assert_same_run(workers: dict, alone: dict, keys=("train_loss", "test_loss", "test_accuracy")) -> None:
    for key in keys:
        assert workers[key] == pytest.approx(alone[key], rel=REL), key


def test_two_workers_train_the_one_process_run(repo, tmp_path):
    """digits_mlp with an odd batch (65: shards of 33 and 32) for one full epoch, whose last batch is 7
    (1,437 examples; shards of 4 and 3): every step weighted by unequal shares."""
    flags = dict(batch_size=65, epochs=1)
    done = _workers(repo, repo / "specs/digits_mlp.yaml", tmp_path / "ddp", "--batch-size", "65", "--epochs", "1")
    assert done.returncode == 0, done.stderr
    alone = _one_process(repo / "specs/digits_mlp.yaml", tmp_path / "one", **flags)
    workers = _summary(tmp_path / "ddp")
    assert workers["steps"] == alone["steps"] == 23
    _assert_same_run(workers, alone)
    spec, graph = dsl.load(repo / "specs/digits_mlp.yaml")
    weights = load_weights(tmp_path / "ddp" / "weights.safetensors", graph)
    for target in ("torch", "jax"):
        assert evaluate(spec, graph, target, weights)["test_accuracy"] == pytest.approx(alone["test_accuracy"],
                                                                                      abs=0.002), target
    # only rank 0 wrote: one run's files, one summary line on stdout, the world in the summary
    assert workers["world_size"] == 2 and "world_size" not in alone
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == sorted(
        n for n in RUN_FILES if n not in ("vocab.json", "best.safetensors"))
    assert len((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()) == 1
    assert done.stdout.count("-> ") == 1 and done.stdout.count("epoch 1/1") == 1


def test_two_workers_sync_batch_norm(repo, tmp_path):
    """digits_bn_cnn with train.sync_batch_norm: the global batch's statistics, as one process has them."""
    spec = tmp_path / "bn_sync.yaml"
    spec.write_text((repo / "specs/digits_bn_cnn.yaml").read_text().replace("  epochs: 10\n",
                                                                             "  epochs: 10\n  sync_batch_norm: true\n"))
    done = _workers(repo, spec, tmp_path / "ddp", "--max-steps", "20")
    assert done.returncode == 0, done.stderr
    alone = _one_process(spec, tmp_path / "one", max_steps=20)
    _assert_same_run(_summary(tmp_path / "ddp"), alone)
    _, graph = dsl.load(spec)
    ddp, one = (load_weights(tmp_path / run / "weights.safetensors", graph) for run in ("ddp", "one"))
    np.testing.assert_allclose(ddp["bn1.running_var"], one["bn1.running_var"], rtol=1e-4)
    assert ddp["bn1.num_batches_tracked"] == one["bn1.num_batches_tracked"] == 20


def test_nproc_is_for_torch(repo, tmp_path):
    done = subprocess.run([sys.executable, "cli.py", "train", "specs/digits_mlp.yaml", "--target", "jax", "--nproc",
                           "2", "--out", str(tmp_path / "run")], cwd=repo, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --nproc applies to --target torch; a JAX run uses this host's devices (--devices N)"]


@pytest.mark.slow
def test_worker_error_is_one_line(repo, tmp_path):
    """A refusal every worker meets (the --out folder holds a run): one line, exit 2, no launcher traceback."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text("{}")
    done = _workers(repo, repo / "specs/digits_mlp.yaml", tmp_path / "run", "--max-steps", "2")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: --out {tmp_path / 'run'} already holds a run (summary.json); pass --overwrite to replace it, "
        "or choose another folder"]


@pytest.mark.slow
def test_resume_two_workers(repo, tmp_path):
    """A 2-worker run killed (the launcher and its workers) after a mid-epoch checkpoint and resumed with the
    run's own --nproc ends where an uninterrupted 2-worker run ends, bit for bit (per-replica BatchNorm: rank 0's
    statistics are the checkpoint's)."""
    spec, run = repo / "specs/digits_bn_cnn.yaml", ("--max-steps", "40", "--checkpoint-every", "10", "--no-progress")
    whole = _workers(repo, spec, tmp_path / "whole", *run)
    assert whole.returncode == 0, whole.stderr
    step = _kill_after_checkpoint(_workers_command(spec, tmp_path / "killed", *run), repo, tmp_path / "killed")
    resumed = subprocess.run([sys.executable, "cli.py", "train", "--resume", str(tmp_path / "killed"), "--threads",
                              "1", "--no-progress"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"at step {step}" in resumed.stdout
    for name in ("weights.safetensors", "checkpoint.safetensors"):
        a, b = load_file(tmp_path / "whole" / name), load_file(tmp_path / "killed" / name)
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")
    assert _summary(tmp_path / "killed")["world_size"] == 2


def _workers_command(spec: Path, out: Path, *flags: str) -> list[str]:
    return [sys.executable, "cli.py", "train", str(spec), "--target", "torch", "--nproc", "2", "--threads", "1",
            "--out", str(out), *flags]


def _kill_after_checkpoint(command: list[str], repo: Path, out: Path, timeout: float = 300.0) -> int:
    """Starts ``command`` in its own process group; SIGKILLs the group once a mid-epoch checkpoint is on disk;
    returns its step."""
    process = subprocess.Popen(command, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            position = read_checkpoint(out).position if (out / CHECKPOINT).exists() else None
            if position is not None and position.batch > 0:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return position.step
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError("the run ended before a mid-epoch checkpoint")


def test_first_failure_is_one_line():
    """The launcher's failures, read as one line: the earliest failure; a user's error keeps its text."""
    from types import SimpleNamespace

    from backends.torch.distributed import WorkerFailed, _first_failure
    from dsl.errors import DivergedError, UsageError

    def failure(time, message):
        return SimpleNamespace(timestamp=time, message={"message": message}, exitcode=1)

    crash = SimpleNamespace(failures={0: failure(7, "RuntimeError: later"),
                                      1: failure(5, "RuntimeError: gloo lost its peer\nTraceback ...")})
    error = _first_failure(crash)
    assert isinstance(error, WorkerFailed) and str(error) == "worker 1 failed: RuntimeError: gloo lost its peer"
    refusal = _first_failure(SimpleNamespace(failures={1: failure(3, "DslcError: --out x is a file")}))
    assert isinstance(refusal, UsageError) and str(refusal) == "--out x is a file"
    diverged = _first_failure(SimpleNamespace(failures={0: failure(4, "DivergedError: training diverged at step 6")}))
    assert isinstance(diverged, DivergedError) and diverged.exit_status == 1
    assert str(diverged) == "training diverged at step 6"
