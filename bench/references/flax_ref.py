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
* The LSTM is ``nn.RNN`` over a cell that computes torch's LSTM (gates i, f, g, o from
  one ``ih`` and one ``hh`` Dense, each with its bias), the way a Flax user ports a
  torch LSTM. Flax's own ``nn.OptimizedLSTMCell`` keeps one bias per gate: folding
  torch's two into one gives the same first step but not the same training (each of
  torch's biases takes the full update, so their sum moves twice as far), so it
  cannot start from the canonical weights and train the same function.
* BERT is written as transformers' ``FlaxBertForSequenceClassification`` writes it:
  modules named as the torch ones (``bert/encoder/layer/0/attention/self/query``),
  ``nn.Embed``, ``nn.LayerNorm(epsilon=1e-12)``, ``nn.dot_product_attention`` with the
  additive mask ``(1 - attention_mask) * finfo.min``, exact GELU, dropout from a
  ``dropout`` rng folded with the step (``nn.Embed`` has no ``padding_idx``: the padding
  row's gradient is zero anyway, as padded keys get zero attention and the pooler
  reads token 0).
* DeepFM is linen ``nn.Embed`` tables over all fields' ids, field f's id i at row
  ``offsets[f] + i`` (a constant, as pytorch-fm's offsets), ``nn.Dense`` for the dense
  features' linear and the MLP, dropout from the ``dropout`` rng as BERT's; module
  names are the spec's (``field_bias``, ``embeddings``, ``mlp/0`` ... ``mlp/9``), so the
  canonical weights convert by name. One logit per example: the loss is
  ``optax.sigmoid_binary_cross_entropy`` on float 0/1 labels, and a prediction is
  correct when ``(logit > 0) == label``.
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

import dataclasses
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


class TorchLSTMCell(nn.RNNCellBase):
    """torch's LSTM cell: gates = ih(x) + hh(h), split i, f, g, o; carry (c, h) as linen's cells keep it."""

    features: int
    carry_dtype: Any = jnp.float32  # the input's (float64 in the parity test)

    @nn.compact
    def __call__(self, carry, x):
        c, h = carry
        i, f, g, o = jnp.split(nn.Dense(4 * self.features, name="ih")(x) + nn.Dense(4 * self.features, name="hh")(h),
                               4, axis=-1)
        c = nn.sigmoid(f) * c + nn.sigmoid(i) * jnp.tanh(g)
        h = nn.sigmoid(o) * jnp.tanh(c)
        return (c, h), h

    def initialize_carry(self, rng, input_shape):
        zeros = jnp.zeros((*input_shape[:-1], self.features), self.carry_dtype)
        return zeros, zeros

    @property
    def num_feature_axes(self) -> int:
        return 1


class LSTMClassifier(nn.Module):
    """Stacked ``nn.RNN`` layers over (N, T, F); a Dense on the last layer's final hidden state."""

    hidden: int = 128
    layers: int = 2
    num_classes: int = 10

    @nn.compact
    def __call__(self, x):
        for layer in range(self.layers):
            cell = TorchLSTMCell(self.hidden, x.dtype, name=f"lstm_l{layer}")  # params: lstm_l0/{ih,hh}
            (_, h), x = nn.RNN(cell, return_carry=True)(x)
        return nn.Dense(self.num_classes, name="fc")(h)


BERT_TINY = {"vocab_size": 30522, "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 512, "max_position_embeddings": 512, "type_vocab_size": 2, "num_labels": 4,
             "layer_norm_eps": 1e-12}


class BertEmbeddings(nn.Module):
    c: dict
    dropout: float

    @nn.compact
    def __call__(self, input_ids, token_type_ids, train: bool):
        c = self.c
        positions = jnp.arange(input_ids.shape[1])[None]
        x = (nn.Embed(c["vocab_size"], c["hidden_size"], name="word_embeddings")(input_ids)
             + nn.Embed(c["type_vocab_size"], c["hidden_size"], name="token_type_embeddings")(token_type_ids)
             + nn.Embed(c["max_position_embeddings"], c["hidden_size"], name="position_embeddings")(positions))
        x = nn.LayerNorm(epsilon=c["layer_norm_eps"], name="LayerNorm")(x)
        return nn.Dropout(self.dropout, deterministic=not train)(x)


class BertSelfAttention(nn.Module):
    c: dict
    dropout: float

    @nn.compact
    def __call__(self, x, bias, train: bool):
        heads, hidden = self.c["num_attention_heads"], self.c["hidden_size"]
        split = (*x.shape[:2], heads, hidden // heads)
        q, k, v = (nn.Dense(hidden, name=name)(x).reshape(split) for name in ("query", "key", "value"))
        rng = self.make_rng("dropout") if train and self.dropout else None
        out = nn.dot_product_attention(q, k, v, bias=bias, broadcast_dropout=False, dropout_rng=rng,
                                       dropout_rate=self.dropout, deterministic=not train)
        return out.reshape(x.shape)


class BertResidual(nn.Module):
    """BertSelfOutput and BertOutput: dense, dropout, add the residual, LayerNorm."""

    c: dict
    dropout: float

    @nn.compact
    def __call__(self, x, residual, train: bool):
        x = nn.Dropout(self.dropout, deterministic=not train)(nn.Dense(self.c["hidden_size"], name="dense")(x))
        return nn.LayerNorm(epsilon=self.c["layer_norm_eps"], name="LayerNorm")(x + residual)


class BertAttention(nn.Module):
    c: dict
    dropout: float

    @nn.compact
    def __call__(self, x, bias, train: bool):
        out = BertSelfAttention(self.c, self.dropout, name="self")(x, bias, train)
        return BertResidual(self.c, self.dropout, name="output")(out, x, train)


class BertLayer(nn.Module):
    c: dict
    dropout: float

    @nn.compact
    def __call__(self, x, bias, train: bool):
        x = BertAttention(self.c, self.dropout, name="attention")(x, bias, train)
        hidden = BertIntermediate(self.c, name="intermediate")(x)
        return BertResidual(self.c, self.dropout, name="output")(hidden, x, train)


class BertIntermediate(nn.Module):
    c: dict

    @nn.compact
    def __call__(self, x):
        return nn.gelu(nn.Dense(self.c["intermediate_size"], name="dense")(x), approximate=False)  # exact GELU


class BertPooler(nn.Module):
    c: dict

    @nn.compact
    def __call__(self, x):
        return jnp.tanh(nn.Dense(self.c["hidden_size"], name="dense")(x[:, 0]))


class BertLayerCollection(nn.Module):
    c: dict
    dropout: float

    @nn.compact
    def __call__(self, x, bias, train: bool):
        for i in range(self.c["num_hidden_layers"]):
            x = BertLayer(self.c, self.dropout, name=str(i))(x, bias, train)
        return x


class BertModel(nn.Module):
    c: dict
    dropout: float

    @nn.compact
    def __call__(self, input_ids, token_type_ids, attention_mask, train: bool):
        x = BertEmbeddings(self.c, self.dropout, name="embeddings")(input_ids, token_type_ids, train)
        bias = (1.0 - attention_mask[:, None, None, :].astype(x.dtype)) * jnp.finfo(x.dtype).min
        x = BertEncoder(self.c, self.dropout, name="encoder")(x, bias, train)
        return BertPooler(self.c, name="pooler")(x)


class BertEncoder(nn.Module):
    c: dict
    dropout: float

    @nn.compact
    def __call__(self, x, bias, train: bool):
        return BertLayerCollection(self.c, self.dropout, name="layer")(x, bias, train)


class Bert(nn.Module):
    """FlaxBertForSequenceClassification's structure: BERT, dropout on the pooled output, a Dense classifier."""

    dropout: float = 0.1
    c: dict = dataclasses.field(default_factory=lambda: BERT_TINY)

    @nn.compact
    def __call__(self, input_ids, token_type_ids, attention_mask, train: bool = True):
        pooled = BertModel(self.c, self.dropout, name="bert")(input_ids, token_type_ids, attention_mask, train)
        pooled = nn.Dropout(self.dropout, deterministic=not train)(pooled)
        return nn.Dense(self.c["num_labels"], name="classifier")(pooled)


CRITEO_FIELDS = (1460, 583, 10131, 2202, 305, 24, 12517, 633, 3, 93145, 5683, 8351, 3194, 27, 14992, 5461, 10,
                 5652, 2173, 4, 7046, 18, 15, 28656, 105, 22166)


class DeepMLP(nn.Module):
    """400-400-400 ReLU with dropout, then one logit; Dense layers named by their torch ``nn.Sequential`` index."""

    hidden: int
    dropout: float

    @nn.compact
    def __call__(self, x, train: bool):
        for index in (0, 3, 6):
            x = nn.relu(nn.Dense(self.hidden, name=str(index))(x))
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(1, name="9")(x)


class DeepFM(nn.Module):
    """Guo et al.'s DeepFM: per-id first-order weights plus a Dense of the dense features, the FM's pairwise term
    over the field embeddings, and an MLP over [embeddings, dense]; one logit per example."""

    fields: tuple[int, ...] = CRITEO_FIELDS
    dim: int = 10
    hidden: int = 400
    dropout: float = 0.2

    @nn.compact
    def __call__(self, dense, sparse, train: bool = True):
        ids = sparse + jnp.asarray(np.cumsum((0, *self.fields[:-1])), sparse.dtype)
        v = nn.Embed(sum(self.fields), self.dim, name="embeddings")(ids)
        first = nn.Embed(sum(self.fields), 1, name="field_bias")(ids).sum(1) + nn.Dense(1, name="dense_linear")(dense)
        fm = 0.5 * (v.sum(1) ** 2 - (v ** 2).sum(1)).sum(1, keepdims=True)
        deep = DeepMLP(self.hidden, self.dropout, name="mlp")(jnp.concatenate([v.reshape(len(v), -1), dense], 1),
                                                             train)
        return (first + fm + deep)[:, 0]


MODELS = {"mlp": MLP, "cnn": CNN, "resnet20": ResNet20, "lstm": LSTMClassifier, "bert": Bert, "deepfm": DeepFM}


class TrainState(train_state.TrainState):
    batch_stats: Any = None  # BatchNorm's running statistics; None for models without BatchNorm
    dropout_key: Any = None  # models with dropout: folded with the step for each step's masks


def params_from_torch(model: str, state: dict[str, np.ndarray], dtype=jnp.float32) -> tuple[dict, dict | None]:
    """Canonical (torch) weights -> this module's (params, batch_stats): kernels transposed, NHWC flatten order."""
    if model == "resnet20":
        return tuple(_cast(tree, dtype) for tree in _resnet_from_torch(state))
    if model in ("bert", "lstm", "deepfm"):
        convert = {"bert": _bert_from_torch, "lstm": _lstm_from_torch, "deepfm": _deepfm_from_torch}[model]
        return _cast(convert(state), dtype), None
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


def _nest(flat: dict[tuple, np.ndarray]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return tree


def _bert_from_torch(state: dict[str, np.ndarray]) -> dict:
    """Same module paths (``bert.encoder.layer.0.attention.self.query``): linear weight -> kernel (transposed),
    embedding weight -> embedding, LayerNorm weight -> scale."""
    flat = {}
    for key, value in state.items():
        *path, name = key.split(".")
        if name == "bias":
            flat[(*path, "bias")] = value
        elif path[-1].endswith("_embeddings"):
            flat[(*path, "embedding")] = value
        elif path[-1] == "LayerNorm":
            flat[(*path, "scale")] = value
        else:
            flat[(*path, "kernel")] = value.T
    return _nest(flat)


def _lstm_from_torch(state: dict[str, np.ndarray]) -> dict:
    """``lstm.weight_ih_l0`` -> ``lstm_l0/ih/kernel`` (transposed; gates i, f, g, o in the same columns),
    ``lstm.bias_hh_l1`` -> ``lstm_l1/hh/bias``; ``fc`` as a Dense."""
    flat = {}
    for key, value in state.items():
        module, name = key.split(".")
        if module == "fc":
            flat[("fc", "kernel" if name == "weight" else "bias")] = value.T if name == "weight" else value
            continue
        kind, part, layer = re.fullmatch(r"(weight|bias)_(ih|hh)_l(\d+)", name).groups()
        leaf, value = ("kernel", value.T) if kind == "weight" else ("bias", value)
        flat[(f"lstm_l{layer}", part, leaf)] = value
    return _nest(flat)


def _deepfm_from_torch(state: dict[str, np.ndarray]) -> dict:
    """Same names (``mlp.3.weight`` -> ``mlp/3/kernel``, transposed); the two tables' ``weight`` -> ``embedding``."""
    flat = {}
    for key, value in state.items():
        *path, name = key.split(".")
        if path[0] in ("field_bias", "embeddings"):
            flat[(*path, "embedding")] = value
        else:
            flat[(*path, "kernel" if name == "weight" else "bias")] = value.T if name == "weight" else value
    return _nest(flat)


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


def create_state(model: str, state: dict[str, np.ndarray], optimizer, dtype=jnp.float32,
                 **kwargs) -> TrainState:
    """``kwargs`` go to the model (``dropout=0.0`` in the parity test)."""
    params, batch_stats = params_from_torch(model, state, dtype)
    module = MODELS[model](**kwargs)
    key = jax.random.key(0) if getattr(module, "dropout", 0) else None
    return TrainState.create(apply_fn=module.apply, params=params, batch_stats=batch_stats, dropout_key=key,
                             tx=make_tx(optimizer))


def _loss_and_metrics(state, params, inputs, labels):
    """``inputs``: the model's inputs, a tuple (BERT's three in the spec's order) or one array."""
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    rngs = {} if state.dropout_key is None else {"rngs": {"dropout": jax.random.fold_in(state.dropout_key,
                                                                                         state.step)}}
    if state.batch_stats is None:
        logits, batch_stats = state.apply_fn({"params": params}, *inputs, **rngs), None
    else:  # train mode: normalize with the batch's statistics and update the running ones
        logits, updates = state.apply_fn({"params": params, "batch_stats": state.batch_stats}, *inputs, train=True,
                                         mutable=["batch_stats"])
        batch_stats = updates["batch_stats"]
    return _loss(logits, labels), (_hits(logits, labels), batch_stats)


def _loss(logits, labels):
    """Cross-entropy over class logits [N, C]; binary cross-entropy for one logit per example [N]."""
    if logits.ndim == 1:
        return optax.sigmoid_binary_cross_entropy(logits, labels).mean()
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def _hits(logits, labels):
    """Correct predictions: the argmax against class ids, or the logit's sign against 0/1 labels."""
    predicted = (logits > 0).astype(labels.dtype) if logits.ndim == 1 else logits.argmax(-1)
    return (predicted == labels).sum()


def _update(state, inputs, labels):
    grad_fn = jax.value_and_grad(lambda p: _loss_and_metrics(state, p, inputs, labels), has_aux=True)
    (loss, (correct, batch_stats)), grads = grad_fn(state.params)
    return state.apply_gradients(grads=grads, batch_stats=batch_stats), loss, correct


@functools.partial(jax.jit, donate_argnums=0)
def train_step(state, x_all, y_all, index):
    """Gathers the batch on the device (each input, for a model with several), then one optimizer step."""
    return _update(state, jax.tree.map(lambda a: a[index], x_all), y_all[index])


@functools.partial(jax.jit, donate_argnums=0)
def train_step_host(state, inputs, labels):
    """One optimizer step on a batch passed from the host."""
    return _update(state, inputs, labels)


def model_inputs(inputs, dtype) -> np.ndarray | tuple:
    """The bench's inputs as a Flax user feeds them: images NCHW -> NHWC, floats in ``dtype``, ids int32
    (int64 where float64 is on); a tuple for several inputs."""
    def one(a):
        if a.ndim == 4:
            a = a.transpose(0, 2, 3, 1)
        return np.ascontiguousarray(a, dtype if a.dtype.kind == "f" else jnp.asarray(a[:0]).dtype)
    return tuple(map(one, inputs)) if isinstance(inputs, tuple) else one(inputs)


class Trainer:
    """Holds the state and the data; ``train(batches)`` runs one step per index batch."""

    def __init__(self, model: str, inputs, labels: np.ndarray, state: dict[str, np.ndarray],
                 optimizer, mode: str = "device", batch_size: int = 64, dtype=jnp.float32, **kwargs):
        """``inputs``: the bench's (images NCHW, frames, or a tuple of BERT's three); ``dtype``: of the weights,
        the float inputs and the computation (float64 in the parity test); ``kwargs`` go to the model."""
        self.mode, self.state = mode, create_state(model, state, optimizer, dtype, **kwargs)
        x, labels = model_inputs(inputs, dtype), labels.astype(np.int32 if labels.dtype.kind == "i" else dtype)
        if mode == "device":
            self.x, self.y = jax.device_put(x), jax.device_put(labels)
        else:
            self.x, self.y = x, labels
        self.compile_seconds = self._compile(batch_size)

    def _compile(self, batch_size: int) -> float:
        start = time.perf_counter()
        if self.mode == "device":
            index = jax.ShapeDtypeStruct((batch_size,), jnp.int32)
            self._step = train_step.lower(self.state, self.x, self.y, index).compile()
        else:
            inputs = jax.tree.map(lambda a: jax.ShapeDtypeStruct((batch_size, *a.shape[1:]), a.dtype), self.x)
            labels = jax.ShapeDtypeStruct((batch_size,), jnp.int32)
            self._step = train_step_host.lower(self.state, inputs, labels).compile()
        return time.perf_counter() - start

    def train(self, batches) -> tuple[float, float, int]:
        loss_sum = correct = 0
        seen = 0
        for index in batches:
            if self.mode == "device":
                self.state, loss, hits = self._step(self.state, self.x, self.y, index)
            else:
                inputs = jax.tree.map(lambda a: a[index], self.x)
                self.state, loss, hits = self._step(self.state, inputs, self.y[index])
            loss_sum, correct, seen = loss_sum + loss * len(index), correct + hits, seen + len(index)
        return float(loss_sum) / seen, float(correct) / seen, seen
