"""JAX data parallel over a device mesh (``--devices N``): the same numbers as one device, and torch DDP's BatchNorm.

XLA's CPU platform shows one device unless ``XLA_FLAGS`` asks for more before JAX
starts, and this test process's JAX has started; so the multi-device runs are
``dslc train --devices 2`` subprocesses (dslc sets the flag itself). The
per-replica BatchNorm is checked in-process against torch in float64: it is a
function of the batch and the replica count, not of the devices.
"""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
import torch
import yaml
from safetensors.numpy import load_file

from backends.host_devices import use_host_devices
from backends.jax import FlaxModel, variables_from_state
from backends.jax.ops.normalization import shard_sizes
from backends.weights import init_weights
from dsl.ops import Example
from tests.conftest import REPO
from tests.helpers import single_op_graph
from tests.test_cli import dslc

RTOL = 1e-5  # 2 devices vs 1 in float32: the all-reduced sums add in another order


TRAIN = """
import json, sys
from backends.threads import use_threads
use_threads(1)
import jax, numpy as np
import dsl
import backends.jax.target as jax_target
from backends.loop import TrainOptions, train
from backends.target import make_target
from backends.weights import init_weights
from dsl.objectives import resolve_objective

jax_target.LOOP_MAX_STEP_SECONDS = 0  # single steps only: the loop's trial is timed, and timing decides nothing here
summaries = {}
for name, (spec, out, devices, epochs, max_steps) in json.loads(sys.argv[1]).items():
    options = TrainOptions(target="jax", epochs=epochs, max_steps=max_steps, out_dir=out, overwrite=True,
                           progress=False, target_options={"devices": devices})
    summaries[name] = train(*dsl.load(spec), options)

# per-replica BatchNorm (no sync_batch_norm) on 2 devices: 5 steps in one lax.scan call (index stacks split on
# their batch axis) and one by one; and the same steps on one device, whose statistics are the whole batch's
spec, graph = dsl.load("specs/digits_bn_cnn.yaml")
rng = np.random.default_rng(0)
data = {"input": rng.standard_normal((64, 1, 8, 8)).astype(np.float32), "fc2": rng.integers(0, 10, 64)}
indices = list(np.stack([rng.permutation(64)[:32] for _ in range(5)]).astype(np.int32))
trained = {}
for devices, looped in ((2, True), (2, False), (1, False)):
    target = make_target("jax", graph, spec.train, objective=resolve_objective(spec, graph), devices=devices)
    target.load_state(init_weights(graph, 0))
    target.steps_per_call = len(indices)
    if looped:
        target._compiled["loop", 32] = target._train_loop
    sums = target.train_steps(target.put(data), indices)
    trained[devices, looped] = [*target.export_state().values(), np.asarray(sums["loss"])]
summaries["loop_vs_steps"] = max(float(np.max(np.abs(a - b))) for a, b in zip(trained[2, True], trained[2, False]))
summaries["loss_2_vs_1"] = [float(trained[2, False][-1]), float(trained[1, False][-1])]
print(json.dumps(summaries))
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Summaries of the runs the tests compare, trained by one process that XLA shows 2 CPU devices (one JAX
    start and one import for all of them; ``devices 1`` takes the first device and builds no mesh)."""
    tmp = tmp_path_factory.mktemp("mesh")
    spec = yaml.safe_load((REPO / "specs/digits_bn_cnn.yaml").read_text())
    spec["train"]["sync_batch_norm"] = True
    (tmp / "bn_sync.yaml").write_text(yaml.safe_dump(spec))
    plan = {"mlp1": ("specs/digits_mlp.yaml", 1, 1, None), "mlp2": ("specs/digits_mlp.yaml", 2, 1, None),
            "sync1": (str(tmp / "bn_sync.yaml"), 1, None, 20), "sync2": (str(tmp / "bn_sync.yaml"), 2, None, 20)}
    args = {name: [spec, str(tmp / name), devices, epochs, steps] for name, (spec, devices, epochs, steps)
            in plan.items()}
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    result = subprocess.run([sys.executable, "-c", TRAIN, json.dumps(args)], cwd=REPO, capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def assert_same_numbers(one: dict, two: dict) -> None:
    keys = [k for k in one if k.startswith(("train_", "test_")) and k != "train_samples_per_sec"]
    assert {"train_loss", "test_loss", "test_accuracy"} <= set(keys)
    for key in keys:
        np.testing.assert_allclose(two[key], one[key], rtol=RTOL, err_msg=key)


def test_two_devices_train_digits_mlp_as_one_including_the_uneven_last_batch(runs):
    """A full epoch: 1437 examples are 44 batches of 32, split 16 + 16 over the devices, and a last batch of 29,
    which 2 does not divide and which runs replicated. Measured: train_loss 1.8310 and test_accuracy
    0.8389 on both, identical; test_loss 7e-8 apart (relative)."""
    assert runs["mlp1"]["steps"] == runs["mlp2"]["steps"] == 45
    assert_same_numbers(runs["mlp1"], runs["mlp2"])


def test_synchronized_batch_norm_on_two_devices_is_one_device_batch_norm(runs):
    """``sync_batch_norm: true``: the statistics are the global batch's (an all-reduce), as on one device."""
    assert_same_numbers(runs["sync1"], runs["sync2"])


def test_two_devices_train_per_replica_batch_norm_by_default_also_in_the_scanned_loop(runs):
    """digits_bn_cnn without ``sync_batch_norm``: 5 steps in one ``lax.scan`` call equal the 5 single steps (weights,
    running statistics, loss sum) to float32 rounding; each device normalizes its 16 rows by their own statistics
    (checked against torch below), so the loss is no longer one device's (measured over 20 steps of a
    run: train_loss 1.1245 on 2 devices, 1.0836 on one)."""
    assert runs["loop_vs_steps"] < 1e-5
    two, one = runs["loss_2_vs_1"]
    assert abs(two / one - 1) > 1e-4


def test_use_host_devices_appends_to_xla_flags_and_keeps_a_users_count():
    environ = {"XLA_FLAGS": "--xla_cpu_enable_fast_math=false"}
    use_host_devices(4, environ)
    assert environ["XLA_FLAGS"] == "--xla_cpu_enable_fast_math=false --xla_force_host_platform_device_count=4"
    use_host_devices(8, environ)  # a count is there already: the user's, kept
    assert environ["XLA_FLAGS"].endswith("count=4")
    environ = {}
    use_host_devices(1, environ)
    assert environ == {}


def test_more_devices_than_xla_has_is_one_line(tmp_path):
    """A count already in XLA_FLAGS is the user's and is kept, so ``--devices 3`` over 2 is refused."""
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "cli.py", "train", "specs/digits_mlp.yaml", "--devices", "3",
                             "--max-steps", "1", "--out", tmp_path / "x"], cwd=REPO, capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: --devices 3: JAX has 2 cpu devices")
    assert "--xla_force_host_platform_device_count=3" in result.stderr


def test_devices_with_the_torch_target_points_at_nproc(tmp_path):
    result = dslc("train", "specs/digits_mlp.yaml", "--target", "torch", "--devices", "2", "--out", tmp_path / "x",
                  check=False)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: --devices applies to --target jax; torch runs one process per device: use --nproc N"]


def test_shard_sizes_are_numpy_array_split():
    for batch, replicas in [(32, 2), (29, 2), (10, 3), (2, 3)]:
        assert shard_sizes(batch, replicas) == tuple(map(len, np.array_split(np.arange(batch), replicas)))


def torch_ddp_batch_norm(x, weight, bias, running, replicas, momentum, eps, dy):
    """torch DDP's plain BatchNorm, written out: each rank's shard normalized by its own statistics (outputs
    concatenated, as the global batch), the running statistics rank 0's; and the gradients of sum(out * dy)."""
    x = torch.tensor(x, requires_grad=True)
    weight, bias = (torch.tensor(a, requires_grad=True) for a in (weight, bias))
    mean, var = (torch.tensor(a) for a in running)
    outs = [torch.nn.functional.batch_norm(shard, mean.clone() if r else mean, var.clone() if r else var, weight,
                                           bias, training=True, momentum=momentum, eps=eps)
            for r, shard in enumerate(torch.tensor_split(x, replicas)) if len(shard)]
    out = torch.cat(outs)
    (out * torch.tensor(dy)).sum().backward()
    return [t.detach().numpy() for t in (out, mean, var, x.grad, weight.grad, bias.grad)]


@pytest.mark.parametrize("op, shape, batch, replicas", [
    ("batch_norm2d", (3, 4, 4), 8, 2),  # equal shards: the reshape and vmap
    ("batch_norm2d", (3, 4, 4), 7, 2),  # 4 + 3: a last batch 2 devices do not divide
    ("batch_norm1d", (5,), 10, 3),  # 4 + 3 + 3
    ("batch_norm1d", (3, 6), 9, 3),
])
def test_per_replica_batch_norm_is_torch_ddp_batch_norm(op, shape, batch, replicas):
    graph = single_op_graph(op, Example(shape, {"momentum": 0.3}), "float64")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, *shape)) * 2 + 1
    x[: batch // replicas] += 3  # shard 0 unlike the rest, so global statistics would differ
    dy = rng.standard_normal(x.shape)
    weight, bias = rng.standard_normal(shape[0]), rng.standard_normal(shape[0])
    graph_state = init_weights(graph, 0, "float64")
    name = graph.nodes[0].name
    graph_state.update({f"{name}.weight": weight, f"{name}.bias": bias})
    expected = torch_ddp_batch_norm(x, weight, bias, (np.zeros(shape[0]), np.ones(shape[0])), replicas, 0.3, 1e-5, dy)
    got = jax_batch_norm_with(graph, graph_state, x, replicas, dy)
    for label, a, b in zip(("out", "running_mean", "running_var", "dx", "dweight", "dbias"), got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=label)
    global_mean = x.mean(tuple(a for a in range(x.ndim) if a != 1))
    assert not np.allclose(got[1], 0.3 * global_mean)  # the running mean is shard 0's, not the batch's


def jax_batch_norm_with(graph, state, x, replicas, dy):
    """The lowering with ``replicas`` (as the target builds it): outputs, running statistics and the same
    gradients."""
    model, variables = FlaxModel(graph, replicas=replicas), variables_from_state(graph, state)
    name = graph.nodes[0].name

    def loss(x, params):
        out, updated = model.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"])
        return (out * dy).sum(), (out, updated["batch_stats"][name])

    (_, (out, stats)), (dx, dparams) = jax.jit(jax.value_and_grad(loss, (0, 1), has_aux=True))(x, variables["params"])
    return [np.asarray(a) for a in (out, stats["mean"], stats["var"], dx, dparams[name]["scale"],
                                    dparams[name]["bias"])]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_on_localhost_train_as_one_device(runs, tmp_path):
    """A multi-host run on one machine: two processes of one CPU device each, joined through
    ``jax.distributed.initialize`` (gloo collectives), train digits_mlp for an epoch as one device does.
    Each process gets its own ``--out``, and process 0's is read: process 0 writes (``World.writes``)."""
    address = f"127.0.0.1:{free_port()}"
    processes = [subprocess.Popen([sys.executable, "cli.py", "train", "specs/digits_mlp.yaml", "--target", "jax",
                                   "--epochs", "1", "--threads", "1", "--coordinator", address, "--num-processes", "2",
                                   "--process-id", str(i), "--out", tmp_path / str(i), "--overwrite"],
                                  cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(2)]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    assert_same_numbers(runs["mlp1"], json.loads((tmp_path / "0" / "summary.json").read_text()))


@pytest.mark.slow
def test_a_killed_two_device_run_resumes_bit_for_bit(tmp_path):
    """``--resume`` takes the run's ``--devices 2`` from its checkpoint and asks XLA for the devices again:
    digits_bn_cnn (per-replica BatchNorm) killed after its step-60 checkpoint ends on the uninterrupted run's
    weights and optimizer state exactly (measured: 0.0 apart)."""
    from tests.test_resume import RUN, dslc_command, kill_after_mid_epoch_checkpoint

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    command = ("train", "specs/digits_bn_cnn.yaml", "--target", "jax", "--devices", "2")
    subprocess.run(dslc_command(*command, "--out", whole, *RUN), cwd=REPO, check=True, capture_output=True)
    kill_after_mid_epoch_checkpoint(dslc_command(*command, "--out", killed, *RUN), killed)
    subprocess.run(dslc_command("train", "--resume", killed, "--threads", "1", "--no-progress"), cwd=REPO, check=True,
                   capture_output=True)
    for name in ("weights.safetensors", "checkpoint.safetensors"):
        a, b = load_file(whole / name), load_file(killed / name)
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), name
