"""Reproducibility: the same spec, seed and target, run again on this machine's CPU, write the same files.

Both runs of a pair start together (one thread each), as separate processes, so nothing is
shared but the machine. What else holds and what does not (threads, targets, machines, GPUs) is
measured in the README's "Reproducibility".
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from safetensors.numpy import load_file

import dsl
from backends.weights import init_weights
from tests.conftest import REPO
from tests.test_resume import dslc_command

SPEC = "specs/digits_cnn.yaml"
SEED = 3


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_a_repeated_cpu_run_writes_the_same_weights_byte_for_byte_and_the_same_optimizer_state(tmp_path, target):
    runs = [subprocess.Popen(dslc_command("train", SPEC, "--target", target, "--max-steps", "30", "--seed", SEED,
                                          "--device", "cpu", "--threads", "1", "--no-progress", "--out",
                                          tmp_path / name), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for name in ("a", "b")]
    for run in runs:
        assert run.wait(timeout=300) == 0, run.stderr.read().decode()
    weights = [(tmp_path / r / "weights.safetensors").read_bytes() for r in ("a", "b")]
    assert weights[0] == weights[1]
    checkpoints = [load_file(tmp_path / r / "checkpoint.safetensors") for r in ("a", "b")]  # its JSON holds the
    assert checkpoints[0].keys() == checkpoints[1].keys()  # wall time, so its tensors are compared, not its bytes
    for key, value in checkpoints[0].items():  # the weights and the optimizer state (Adam's moments, steps)
        assert value.dtype == checkpoints[1][key].dtype and np.array_equal(value, checkpoints[1][key]), key
    trained, initial = load_file(tmp_path / "a" / "weights.safetensors"), init_weights(dsl.load(REPO / SPEC)[1], SEED)
    assert all(not np.array_equal(trained[k], initial[k]) for k in initial)  # 30 Adam steps moved every tensor
    untimed = [{k: v for k, v in json.loads((tmp_path / r / "metrics.jsonl").read_text()).items()
                if k not in ("train_samples_per_sec", "seconds")} for r in ("a", "b")]
    assert untimed[0] == untimed[1]  # the losses and accuracies too, to the last bit
