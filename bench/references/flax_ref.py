"""Hand-written Flax (linen) references, written the way a Flax expert writes them.

* Models take NHWC images, as a Flax user feeds them: ``nn.Conv`` with
  ``padding="VALID"`` (torch's default) or explicit ``((1, 1), (1, 1))`` (``"SAME"``
  pads a stride-2 3x3 conv (0, 1), not torch's (1, 1): docs/PARITY.md §2),
  ``nn.max_pool``, flatten with ``reshape``.
* ResNet-20 is written as flax/examples/imagenet writes its ResNet: a ``BasicBlock``
  module, ``nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)``
  (torch's BN momentum 0.1 is Flax's 0.9), the ``batch_stats`` collection applied
  ``mutable`` in training and carried in the ``TrainState``, global average pooling
  as a mean over H and W.
* The state is ``flax.training.train_state.TrainState`` (plus ``batch_stats``) with the
  spec's optimizer in optax: ``optax.adam(lr)``, or for SGD with torch's coupled
  weight decay ``optax.chain(optax.add_decayed_weights(wd), optax.sgd(lr, momentum))``
  (L2 added to the gradient before the momentum trace, as torch.optim.SGD does and
  dslc's JAX target builds it); the step is ``jax.jit(train_step, donate_argnums=0)``,
  so parameters and optimizer state are updated in place.
* One semantic gap, not closed on purpose (docs/PARITY.md §6): Flax's BatchNorm
  updates the running variance with the biased batch variance, torch with the
  unbiased one (n/(n-1)), so after training the running variances (and outputs in
  eval mode) differ slightly from torch's and dslc's. Training normalizes with the
  biased variance in all of them, so the training loss and the throughput compared
  here are unaffected.
* Data: the whole training split is put on the device once and each step gathers
  its batch inside the compiled step from an int32 index array (``mode="device"``,
  the default). That is the faster of the two ways experts write it and what
  dslc's JAX target does, so the ratio compares step code, not input pipelines.
  ``mode="host"`` is the flax/examples/mnist way (numpy batches sliced on the host
  and passed to the step each call); it is available as the ``flax-ref-host``
  variant for comparison.
* Each step also returns the batch's loss and correct count (as flax/examples does
  for its metrics); they are summed on the device and read once at the end.
"""

from __future__ import annotations

import functools
import re
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax.training import train_state


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(128, name="fc1")(x))
        return nn.Dense(10, name="fc2")(x)


class CNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Conv(32, kernel_size=(3, 3), padding="VALID", name="conv1")(x)
        x = nn.max_pool(nn.relu(x), window_shape=(2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(128, name="fc1")(x))
        return nn.Dense(10, name="fc2")(x)


class BasicBlock(nn.Module):
    """torchvision's BasicBlock in NHWC; a 1x1 conv + BN projection (option B) where the shape changes."""

    planes: int
    strides: int = 1

    @nn.compact
    def __call__(self, x, train: bool):
        norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5)
        y = nn.Conv(self.planes, (3, 3), self.strides, padding=((1, 1), (1, 1)), use_bias=False, name="conv1")(x)
        y = nn.relu(norm(name="bn1")(y))
        y = nn.Conv(self.planes, (3, 3), padding=((1, 1), (1, 1)), use_bias=False, name="conv2")(y)
        y = norm(name="bn2")(y)
        if x.shape != y.shape:
            x = nn.Conv(self.planes, (1, 1), self.strides, padding="VALID", use_bias=False, name="downsample_conv")(x)
            x = norm(name="downsample_bn")(x)
        return nn.relu(y + x)


class ResNet20(nn.Module):
    """He et al.'s CIFAR ResNet-20: 3 stages of 3 BasicBlocks (16, 32, 64 channels), global average pool, fc."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x, train: bool = True):
        x = nn.Conv(16, (3, 3), padding=((1, 1), (1, 1)), use_bias=False, name="conv1")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name="bn1")(x))
        for stage, planes in enumerate((16, 32, 64)):
            for block in range(3):
                strides = 2 if stage > 0 and block == 0 else 1
                x = BasicBlock(planes, strides, name=f"layer{stage + 1}_{block}")(x, train)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, name="fc")(x)


MODELS = {"mlp": MLP, "cnn": CNN, "resnet20": ResNet20}


class TrainState(train_state.TrainState):
    batch_stats: Any = None  # BatchNorm's running statistics; None for models without BatchNorm


def params_from_torch(model: str, state: dict[str, np.ndarray], dtype=jnp.float32) -> tuple[dict, dict | None]:
    """Canonical (torch) weights -> this module's (params, batch_stats): kernels transposed, NHWC flatten order."""
    if model == "resnet20":
        return tuple(_cast(tree, dtype) for tree in _resnet_from_torch(state))
    params = {"fc2": {"kernel": state["fc2.weight"].T, "bias": state["fc2.bias"]}}
    fc1 = state["fc1.weight"]  # (128, C*H*W) in torch's (C, H, W) flatten order
    if model == "cnn":
        params["conv1"] = {"kernel": state["conv1.weight"].transpose(2, 3, 1, 0), "bias": state["conv1.bias"]}
        fc1 = fc1.reshape(128, 32, 13, 13).transpose(0, 2, 3, 1).reshape(128, -1)
    params["fc1"] = {"kernel": fc1.T, "bias": state["fc1.bias"]}
    return _cast(params, dtype), None


def _resnet_from_torch(state: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """torch keys (``layer2.0.downsample.1.running_var``) -> Flax paths (``layer2_0/downsample_bn/var``):
    conv OIHW -> HWIO, linear (out, in) -> (in, out), BN weight/bias -> scale/bias, running stats -> mean/var."""
    params, batch_stats = {}, {}
    for key, value in state.items():
        module, name = key.rsplit(".", 1)
        module = re.sub(r"^(layer\d)\.(\d+)\.", r"\1_\2.", module)
        module = module.replace("downsample.0", "downsample_conv").replace("downsample.1", "downsample_bn")
        if name == "num_batches_tracked":
            continue
        if name in ("running_mean", "running_var"):
            leaf, value, tree = name.removeprefix("running_"), value, batch_stats
        elif value.ndim == 4:
            leaf, value, tree = "kernel", value.transpose(2, 3, 1, 0), params
        elif value.ndim == 2:
            leaf, value, tree = "kernel", value.T, params
        else:  # BatchNorm weight/bias, linear bias
            leaf, tree = "scale" if name == "weight" else "bias", params
        node = tree
        for part in module.split("."):
            node = node.setdefault(part, {})
        node[leaf] = value
    return params, batch_stats


def _cast(tree, dtype):
    return jax.tree.map(lambda a: jnp.asarray(a, dtype), tree)


def make_tx(optimizer) -> optax.GradientTransformation:
    """The spec's optimizer (torch.optim's semantics, docs/PARITY.md §13) in optax: torch's ``weight_decay``
    on SGD and Adam is L2 added to the gradient first; SGD momentum is optax's trace (torch's, no dampening)."""
    p = optimizer.params
    if optimizer.name == "adamw":
        return optax.adamw(p["lr"], b1=p["betas"][0], b2=p["betas"][1], eps=p["eps"], weight_decay=p["weight_decay"])
    if optimizer.name == "sgd":
        tx = optax.sgd(p["lr"], momentum=p["momentum"] or None, nesterov=p["nesterov"])
    else:
        tx = optax.adam(p["lr"], b1=p["betas"][0], b2=p["betas"][1], eps=p["eps"])
    return optax.chain(optax.add_decayed_weights(p["weight_decay"]), tx) if p["weight_decay"] else tx


def create_state(model: str, state: dict[str, np.ndarray], optimizer, dtype=jnp.float32) -> TrainState:
    params, batch_stats = params_from_torch(model, state, dtype)
    return TrainState.create(apply_fn=MODELS[model]().apply, params=params, batch_stats=batch_stats,
                             tx=make_tx(optimizer))


def _loss_and_metrics(state, params, images, labels):
    if state.batch_stats is None:
        logits, batch_stats = state.apply_fn({"params": params}, images), None
    else:  # train mode: normalize with the batch's statistics and update the running ones
        logits, updates = state.apply_fn({"params": params, "batch_stats": state.batch_stats}, images, train=True,
                                         mutable=["batch_stats"])
        batch_stats = updates["batch_stats"]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, ((logits.argmax(-1) == labels).sum(), batch_stats)


def _update(state, images, labels):
    grad_fn = jax.value_and_grad(lambda p: _loss_and_metrics(state, p, images, labels), has_aux=True)
    (loss, (correct, batch_stats)), grads = grad_fn(state.params)
    return state.apply_gradients(grads=grads, batch_stats=batch_stats), loss, correct


@functools.partial(jax.jit, donate_argnums=0)
def train_step(state, x_all, y_all, index):
    """Gathers the batch on the device, then one optimizer step."""
    return _update(state, x_all[index], y_all[index])


@functools.partial(jax.jit, donate_argnums=0)
def train_step_host(state, images, labels):
    """One optimizer step on a batch passed from the host."""
    return _update(state, images, labels)


class Trainer:
    """Holds the state and the data; ``train(batches)`` runs one step per index batch."""

    def __init__(self, model: str, images_nchw: np.ndarray, labels: np.ndarray, state: dict[str, np.ndarray],
                 optimizer, mode: str = "device", batch_size: int = 64, dtype=jnp.float32):
        """``dtype``: of the weights, the images and the computation (float64 in the parity test)."""
        self.mode, self.state = mode, create_state(model, state, optimizer, dtype)
        images = np.ascontiguousarray(images_nchw.transpose(0, 2, 3, 1), dtype)  # NHWC, as a Flax user loads it
        labels = labels.astype(np.int32)
        if mode == "device":
            self.x, self.y = jax.device_put(images), jax.device_put(labels)
        else:
            self.x, self.y = images, labels
        self.compile_seconds = self._compile(batch_size)

    def _compile(self, batch_size: int) -> float:
        start = time.perf_counter()
        if self.mode == "device":
            index = jax.ShapeDtypeStruct((batch_size,), jnp.int32)
            self._step = train_step.lower(self.state, self.x, self.y, index).compile()
        else:
            images = jax.ShapeDtypeStruct((batch_size, *self.x.shape[1:]), self.x.dtype)
            labels = jax.ShapeDtypeStruct((batch_size,), jnp.int32)
            self._step = train_step_host.lower(self.state, images, labels).compile()
        return time.perf_counter() - start

    def train(self, batches) -> tuple[float, float, int]:
        loss_sum = correct = 0
        seen = 0
        for index in batches:
            if self.mode == "device":
                self.state, loss, hits = self._step(self.state, self.x, self.y, index)
            else:
                self.state, loss, hits = self._step(self.state, self.x[index], self.y[index])
            loss_sum, correct, seen = loss_sum + loss * len(index), correct + hits, seen + len(index)
        return float(loss_sum) / seen, float(correct) / seen, seen
