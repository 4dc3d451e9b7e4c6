"""Schedules, clipping and no_decay against torch itself (issue 12, acceptance item 1).

The references are torch's own: ``torch.optim.lr_scheduler`` driving a real optimizer
(SGD or Adam on one parameter, stepped per batch or per epoch as its users do), and for
training a hand-written torch loop (param groups, ``clip_grad_norm_``, a scheduler).
dslc's tables must equal torch's learning rates exactly; both targets' steps must use
them within 1e-7 relative (the JAX target holds them in the model's dtype: float32
rounds by up to 6e-8) and train to torch's weights in float64.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as torch_schedulers

import dsl
from backends.schedules import schedule_tables
from backends.weights import init_weights
from dsl.decay import BIAS_AND_NORM, matching, no_decay_names
from dsl.objectives import resolve_objective
from tests.conftest import REPO
from tests.helpers import columns, make_trainer

STEPS, PER_EPOCH = 200, 7

SPEC = """\
name: sched
input: {shape: [4]}
model:
  - linear: {out_features: 3}
  - layer_norm: {normalized_shape: 3}
  - linear: {out_features: 2}
train:
  loss: mse
  optimizer: OPTIMIZER
"""


def load(optimizer: str, extra: str = "") -> tuple[dsl.Spec, dsl.Graph]:
    return dsl.loads(SPEC.replace("OPTIMIZER", optimizer) + "".join(f"  {line}\n" for line in extra.splitlines()))


def warm(make, steps: int, start: float):
    """torch's warmup in front of ``make``'s scheduler: SequentialLR([LinearLR, scheduler], [steps])."""
    return lambda opt: torch_schedulers.SequentialLR(
        opt, [torch_schedulers.LinearLR(opt, start_factor=start, total_iters=steps), make(opt)], [steps])


SGD, ADAM = "{sgd: {lr: 0.1, momentum: 0.9}}", "{adam: {lr: 0.1, betas: [0.9, 0.999]}}"

# (id, optimizer, the train keys, torch's scheduler on an optimizer, optimizer steps per scheduler step)
CASES = [
    ("step", SGD, "schedule: {step: {step_size: 3, gamma: 0.5}}",
     lambda o: torch_schedulers.StepLR(o, 3, 0.5), PER_EPOCH),
    ("step-per-step", SGD, "schedule: {step: {step_size: 30, gamma: 0.5, interval: step}}",
     lambda o: torch_schedulers.StepLR(o, 30, 0.5), 1),
    ("multistep", SGD, "schedule: {multistep: {milestones: [5, 12, 12, 20], gamma: 0.3}}",
     lambda o: torch_schedulers.MultiStepLR(o, [5, 12, 12, 20], 0.3), PER_EPOCH),
    ("exponential", ADAM, "schedule: {exponential: {gamma: 0.8}}",
     lambda o: torch_schedulers.ExponentialLR(o, 0.8), PER_EPOCH),
    ("cosine", SGD, "schedule: {cosine: {T_max: 20, eta_min: 1.0e-4}}",  # 29 epochs: past T_max torch rises again
     lambda o: torch_schedulers.CosineAnnealingLR(o, 20, 1e-4), PER_EPOCH),
    ("cosine-per-step", ADAM, "schedule: {cosine: {interval: step}}",  # T_max: the run's 200 steps
     lambda o: torch_schedulers.CosineAnnealingLR(o, STEPS), 1),
    ("one_cycle", "{sgd: {momentum: 0.9}}", "schedule: {one_cycle: {max_lr: 0.3}}",  # total_steps: the run's
     lambda o: torch_schedulers.OneCycleLR(o, 0.3, total_steps=STEPS), 1),
    ("one_cycle-three-phase", "{adam: {betas: [0.9, 0.999]}}",
     "schedule: {one_cycle: {max_lr: 0.3, three_phase: true, anneal_strategy: linear, total_steps: 250}}",
     lambda o: torch_schedulers.OneCycleLR(o, 0.3, total_steps=250, three_phase=True, anneal_strategy="linear"), 1),
    ("one_cycle-per-epoch", "{sgd: {momentum: 0.9}}", "schedule: {one_cycle: {max_lr: 0.3, interval: epoch}}",
     lambda o: torch_schedulers.OneCycleLR(o, 0.3, total_steps=29), PER_EPOCH),
    ("warmup+cosine", SGD, "schedule: {cosine: {eta_min: 1.0e-5, interval: step}}\nwarmup: {steps: 20, "
     "start_factor: 0.01}", warm(lambda o: torch_schedulers.CosineAnnealingLR(o, STEPS - 20, 1e-5), 20, 0.01), 1),
    ("warmup+step", ADAM, "schedule: {step: {step_size: 4, gamma: 0.5}}\nwarmup: {epochs: 3}",
     warm(lambda o: torch_schedulers.StepLR(o, 4, 0.5), 3, 1 / 3), PER_EPOCH),
    ("warmup+one_cycle", SGD.replace("lr: 0.1, ", ""), "schedule: {one_cycle: {max_lr: 0.3}}\n"
     "warmup: {steps: 10, start_factor: 0.5}",
     warm(lambda o: torch_schedulers.OneCycleLR(o, 0.3, total_steps=STEPS - 10), 10, 0.5), 1),
    ("warmup", SGD, "warmup: {steps: 50, start_factor: 0.1}",
     lambda o: torch_schedulers.LinearLR(o, start_factor=0.1, total_iters=50), 1),
]


def torch_learning_rates(make, per: int, adam: bool) -> tuple[np.ndarray, np.ndarray]:
    """The lr and momentum (SGD's, Adam's beta1) of each of ``STEPS`` steps of a real torch optimizer on one
    parameter, its scheduler stepped after every ``per`` steps."""
    weight = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([weight], lr=0.1) if adam else torch.optim.SGD([weight], lr=0.1, momentum=0.9)
    scheduler = make(opt)
    lrs, momenta = [], []
    for step in range(STEPS):
        group = opt.param_groups[0]
        lrs.append(group["lr"])
        momenta.append(group["betas"][0] if adam else group["momentum"])
        weight.grad = torch.ones(1)
        opt.step()
        if (step + 1) % per == 0:
            scheduler.step()
    return np.array(lrs), np.array(momenta)


def tables_of(spec: dsl.Spec, graph: dsl.Graph, steps: int = STEPS, per_epoch: int = PER_EPOCH):
    return schedule_tables(spec, spec.train, resolve_objective(spec, graph).phases, steps, per_epoch)


@pytest.mark.parametrize("name, optimizer, keys, make, per", CASES, ids=[c[0] for c in CASES])
def test_each_schedule_equals_torchs_scheduler_driving_an_optimizer_on_both_targets(name, optimizer, keys, make,
                                                                                     per):
    spec, graph = load(optimizer, keys)
    expected_lr, expected_momentum = torch_learning_rates(make, per, "adam" in optimizer)
    table = tables_of(spec, graph)[""]
    assert np.array_equal(table.lr, expected_lr)  # the replay is torch's arithmetic, bit for bit
    cycled = name.startswith(("one_cycle", "warmup+one_cycle"))
    assert (table.momentum is not None) == cycled
    assert len(set(expected_lr)) > 3  # the schedule moves
    for target in ("torch", "jax"):
        used = make_trainer(target, spec, graph, schedules={"": table}).hyperparameters(range(STEPS))[""]
        np.testing.assert_allclose(used["lr"], expected_lr, rtol=1e-7, atol=0, err_msg=target)
        if cycled:
            np.testing.assert_allclose(used["momentum"], expected_momentum, rtol=1e-7, atol=0, err_msg=target)


class Reference(torch.nn.Module):
    """SPEC's model in plain torch, float64; its state-dict names are dslc's canonical ones."""

    def __init__(self):
        super().__init__()
        self.linear_1, self.layer_norm_1, self.linear_2 = (torch.nn.Linear(4, 3), torch.nn.LayerNorm(3),
                                                           torch.nn.Linear(3, 2))
        self.double()

    def forward(self, x):
        return self.linear_2(self.layer_norm_1(self.linear_1(x)))


def groups(model: torch.nn.Module, exempt: set[str]) -> list[dict]:
    """The param groups a torch user writes for no_decay: the decayed weights, then the others without decay."""
    named = dict(model.named_parameters())
    return [{"params": [p for k, p in named.items() if k not in exempt]},
            {"params": [p for k, p in named.items() if k in exempt], "weight_decay": 0.0}]


# (id, optimizer, train keys, torch optimizer, torch scheduler, the weights not decayed, clipping)
TRAINING = [
    ("sgd-nesterov-step-norm", "{sgd: {lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 0.01, "
     "no_decay: ['*.bias']}}", "schedule: {step: {step_size: 1, gamma: 0.5, interval: step}}\nclip_grad_norm: 0.05",
     lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
     lambda o: torch_schedulers.StepLR(o, 1, 0.5), {"linear_1.bias", "layer_norm_1.bias", "linear_2.bias"},
     ("norm", 0.05)),
    ("adamw-one_cycle-value", "{adamw: {weight_decay: 0.1, no_decay: [bias_and_norm]}}",
     "schedule: {one_cycle: {max_lr: 0.01}}\nclip_grad_value: 0.01",  # beta1 cycled too
     lambda g: torch.optim.AdamW(g, weight_decay=0.1), lambda o: torch_schedulers.OneCycleLR(o, 0.01, total_steps=3),
     {"linear_1.bias", "linear_2.bias", "layer_norm_1.weight", "layer_norm_1.bias"}, ("value", 0.01)),
    ("adam-l2-warmup-cosine-norm", "{adam: {lr: 0.01, weight_decay: 0.01, no_decay: ['layer_norm_1.*']}}",
     "schedule: {cosine: {interval: step}}\nwarmup: {steps: 2, start_factor: 0.25}\nclip_grad_norm: 0.05",
     lambda g: torch.optim.Adam(g, lr=0.01, weight_decay=0.01),
     warm(lambda o: torch_schedulers.CosineAnnealingLR(o, 1), 2, 0.25), {"layer_norm_1.weight", "layer_norm_1.bias"},
     ("norm", 0.05)),
]


def torch_training(make_optimizer, make_scheduler, exempt: set[str], clip, state: dict, x, y, batches):
    """The weights after torch's own loop; asserts that every step's gradients were large enough to be clipped."""
    model = Reference()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    opt = make_optimizer(groups(model, exempt))
    scheduler = make_scheduler(opt)
    for rows in batches:
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(torch.from_numpy(x[rows])), torch.from_numpy(y[rows])).backward()
        grads = [p.grad for p in model.parameters()]
        if clip[0] == "norm":
            assert torch.nn.utils.clip_grad_norm_(model.parameters(), clip[1]) > clip[1]
        else:
            assert max(g.abs().max() for g in grads) > clip[1]
            torch.nn.utils.clip_grad_value_(model.parameters(), clip[1])
        opt.step()
        scheduler.step()
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name, optimizer, keys, make_optimizer, make_scheduler, exempt, clip", TRAINING,
                         ids=[c[0] for c in TRAINING])
def test_clipped_scheduled_steps_with_no_decay_equal_torchs_own_loop_on_both_targets(
        name, optimizer, keys, make_optimizer, make_scheduler, exempt, clip):
    spec, graph = load(optimizer, keys)
    assert no_decay_names(graph, spec.train.optimizer.params) == exempt
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((12, 4)) * 3, rng.standard_normal((12, 2)) * 3
    batches = [np.arange(0, 4), np.arange(4, 8), np.arange(8, 12)]
    state = init_weights(graph, 0, "float64")
    expected = torch_training(make_optimizer, make_scheduler, exempt, clip, state, x, y, batches)
    for target in ("torch", "jax"):
        t = make_trainer(target, spec, graph, dtype="float64", schedules=tables_of(spec, graph, 3, 3))
        t.load_state(state)
        t.train_steps(t.put(columns(graph, x, y)), [b.astype(np.int32) for b in batches])
        got = t.export_state()
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-12, atol=1e-15, err_msg=f"{target} {key}")


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-14), ("float32", 1e-6)])
def test_jax_clipping_is_torchs_clip_grad_norm_and_value(dtype, rtol):
    """torch's epsilon shows: optax's clip_by_global_norm (max_norm / norm, no 1e-6) is 2.7e-8 relative off on
    these gradients (norm 37), so the float64 comparison would fail with it."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from backends.jax.schedule import clip_grad_norm

    rng = np.random.default_rng(1)
    grads = {"a": rng.standard_normal((30, 20)).astype(dtype), "b": rng.standard_normal(7).astype(dtype) * 10}
    params = [torch.nn.Parameter(torch.zeros(g.shape, dtype=getattr(torch, dtype))) for g in grads.values()]
    for p, g in zip(params, grads.values()):
        p.grad = torch.from_numpy(g.copy())
    norm = torch.nn.utils.clip_grad_norm_(params, 5.0, foreach=True)
    assert norm > 5.0
    clipped = clip_grad_norm(grads, 5.0)
    for p, key in zip(params, grads):
        np.testing.assert_allclose(np.asarray(clipped[key]), p.grad.numpy(), rtol=rtol, atol=0)


def test_bias_and_norm_takes_biases_norm_layers_and_transformer_norm_sublayers():
    _, graph = dsl.load(REPO / "specs" / "transformer_translate.yaml")
    names = set(matching(graph, BIAS_AND_NORM))
    layer = "encoder.layers.0.layer."
    assert {layer + k for k in ("self_attn.in_proj_bias", "linear1.bias", "norm1.weight", "norm2.bias")} <= names
    assert not {layer + k for k in ("self_attn.in_proj_weight", "linear1.weight")} & names
    assert all("bias" in k.rsplit(".", 1)[1] or ".norm" in k for k in names)


def test_a_run_longer_than_one_cycles_total_steps_is_refused_located():
    spec, graph = load("sgd", "schedule: {one_cycle: {max_lr: 0.1, total_steps: 150}}")
    with pytest.raises(dsl.SpecError) as info:
        tables_of(spec, graph)
    assert str(info.value) == ("<string>:10:52: one_cycle's total_steps is 150, and the run takes 200 steps of it "
                               "(torch raises past total_steps); raise total_steps, or leave it out (default: the "
                               "run's steps)")


def test_a_schedule_per_model_schedules_only_that_model():
    text = (REPO / "specs" / "gan_digits.yaml").read_text()
    text = text.replace("  epochs: 60\n", "  epochs: 60\n  schedule: {discriminator: {exponential: {gamma: 0.5}}}\n")
    spec, graph = dsl.loads(text)
    tables = tables_of(spec, graph, 30, 10)
    assert list(tables) == ["discriminator"]
    np.testing.assert_array_equal(tables["discriminator"].lr[::10], [2e-4, 1e-4, 5e-5])
    with pytest.raises(dsl.SpecError, match="train.schedule names 'discriminater', which is not a trained model; "
                                            "did you mean 'discriminator'"):
        dsl.loads(text.replace("{discriminator: {exp", "{discriminater: {exp"))


def test_dslc_check_compares_the_learning_rates_and_momenta_of_both_targets():
    from rich.console import Console

    from backends.parity import check, print_report

    spec, graph = load("{adamw: {weight_decay: 0.1, no_decay: ['*.bias']}}",
                       "schedule: {one_cycle: {max_lr: 0.01}}\nclip_grad_norm: 0.5")
    report = check(spec, graph, dtype="float64", steps=4, batch_size=4)
    rows = {r.quantity: r for r in report.rows}
    assert report.ok, [r for r in report.failures]
    assert rows["learning rate (4 steps)"].relative == 0 and rows["momentum (4 steps)"].relative == 0
    console = Console(record=True, width=160)
    print_report(report, console)
    text = console.export_text()
    assert "learning rate (4 steps)" in text and "momentum (4 steps)" in text and "PASS" in text


RUN = """\
name: scheduled_run
input: {shape: [1, 8, 8]}
model:
  - flatten
  - linear: {out_features: 16}
  - layer_norm: {normalized_shape: 16}
  - relu
  - linear: {out_features: 10}
data: {dataset: digits, train_size: 256, test_size: 64}
train:
  loss: cross_entropy
  optimizer: {adamw: {weight_decay: 0.05, no_decay: [bias_and_norm]}}
  schedule: {one_cycle: {max_lr: 0.01}}
  warmup: {steps: 4, start_factor: 0.1}
  clip_grad_norm: 0.5
  batch_size: 32
  epochs: 3
"""


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_a_scheduled_run_resumed_mid_epoch_ends_where_the_uninterrupted_one_does(tmp_path, monkeypatch, target):
    """Stopped right after its step-10 checkpoint (epoch 2, batch 2) and resumed: the lr is a function of the step,
    so the schedule (one_cycle behind a warmup, beta1 cycled), the two param groups' optimizer state and the
    clipping continue exactly; metrics.jsonl records each epoch's last lr."""
    from safetensors.numpy import load_file

    from backends import loop
    from backends.checkpoint import CHECKPOINT, read_checkpoint

    spec, graph = dsl.loads(RUN)
    whole, killed = tmp_path / "whole", tmp_path / "killed"

    def options(out):
        return loop.TrainOptions(target=target, out_dir=out, checkpoint_every=5, progress=False, spec_text=RUN)

    loop.train(spec, graph, options(whole))
    write = loop._Checkpoints.write

    def write_then_stop(self, trainer, position, state=None):
        seconds = write(self, trainer, position, state)
        if position.step >= 10 and position.batch > 0:
            raise Interrupted
        return seconds

    monkeypatch.setattr(loop._Checkpoints, "write", write_then_stop)
    with pytest.raises(Interrupted):
        loop.train(spec, graph, options(killed))
    monkeypatch.undo()
    checkpoint = read_checkpoint(killed, tensors=True)
    assert (checkpoint.position.step, checkpoint.position.batch) == (10, 2)
    loop.train(spec, graph, options(killed), resume=checkpoint)
    for name in (CHECKPOINT, "weights.safetensors"):
        a, b = load_file(whole / name), load_file(killed / name)
        assert a.keys() == b.keys()
        for key in a:
            assert np.array_equal(a[key], b[key]), f"{name}: {key} differs"
    records = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    table = tables_of(spec, graph, 24, 8)[""].lr
    assert [r["lr"] for r in records] == pytest.approx(table[[7, 15, 23]], rel=1e-7)
    untimed = [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "train_samples_per_sec")}
               for line in (whole / "metrics.jsonl").read_text().splitlines()]
    for record, expected in zip(records, untimed, strict=True):  # the resumed epoch's float32 loss sum is carried
        assert {k: record[k] for k in expected} == pytest.approx(expected, rel=1e-6)  # over: summed in other groups


def test_sparse_adam_clipped_by_norm_and_scheduled_passes_check_in_float64():
    """torch's clip_grad_norm_ coalesces a sparse gradient before its norm, so it is the dense gradient's; the
    scheduled sparse_adam runs with lr 1 and scaled updates in JAX, lr set per step in torch."""
    from backends.parity import check
    from tests.test_sparse_adam import SPEC as SPARSE

    text = SPARSE.replace("  batch_size: 4\n", "  batch_size: 4\n  clip_grad_norm: 0.01\n"
                                               "  schedule: {exponential: {gamma: 0.5, interval: step}}\n")
    spec, graph = dsl.loads(text)
    report = check(spec, graph, dtype="float64", steps=3)
    assert report.ok, report.failures
    assert {"learning rate (3 steps)", "step 3 loss"} <= {r.quantity for r in report.rows}


@pytest.mark.parametrize("optimizer", ["{adamw: {lr: 0.01}}", "{sgd: {lr: 0.1, momentum: 0.9, weight_decay: 0.01}}",
                                       "{adam: {lr: 0.01, weight_decay: 0.01}}"])
def test_jax_lr_one_and_scaled_updates_equal_the_unscheduled_step_bit_for_bit(optimizer):
    """A schedule that keeps the lr constant over the run: the update times -1 (lr 1) and then times lr is the
    update times -lr exactly, so linearity costs nothing, and an unscheduled spec keeps its own step."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((12, 4)).astype(np.float32), rng.standard_normal((12, 2)).astype(np.float32)
    states = []
    for keys in ("", "schedule: {step: {step_size: 100, gamma: 0.5, interval: step}}"):
        spec, graph = load(optimizer, keys)
        t = make_trainer("jax", spec, graph, schedules=tables_of(spec, graph, 3, 3))
        t.load_state(init_weights(graph, 0))
        t.train_steps(t.put(columns(graph, x, y)), [np.arange(i, i + 4, dtype=np.int32) for i in (0, 4, 8)])
        states.append({**t.export_state(), **t.export_optimizer_state()})
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert np.array_equal(states[0][key], states[1][key]), key
